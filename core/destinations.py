"""Which destinations a delivery may reach: one explicit table of refused networks, and the name rules.

The table is written out rather than read from `ipaddress`'s `is_global`/`is_private` flags: those
changed between Python patch releases (CVE-2024-4032) and know nothing of cloud metadata addresses
or of IPv6 forms that carry an IPv4 address inside. Only `ip in network` and integer arithmetic are
used, so the answer is the same on every Python.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Unwrap = Callable[[ipaddress.IPv6Address], list[ipaddress.IPv4Address]]  # the IPv4 inside an IPv6 form


def _last_32_bits(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]


def _6to4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    return [ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)]  # 2002:AABB:CCDD::/48


def _teredo(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    # 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, the client address stored inverted (RFC 4380).
    server = (int(ip) >> 64) & 0xFFFFFFFF
    client = (int(ip) & 0xFFFFFFFF) ^ 0xFFFFFFFF
    return [ipaddress.IPv4Address(server), ipaddress.IPv4Address(client)]


def _local_nat64(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    # RFC 8215 lets an operator use any prefix length inside 64:ff9b:1::/48, so where the IPv4
    # sits is unknown: check the /96 place and the /48 place (bits 48-63 and 72-87, RFC 6052).
    value = int(ip)
    at_48 = (((value >> 64) & 0xFFFF) << 16) | ((value >> 40) & 0xFFFF)
    return [*_last_32_bits(ip), ipaddress.IPv4Address(at_48)]


@dataclass(frozen=True)
class Rule:
    """A network and why it is refused; with `embeds`, the IPv4 inside decides instead."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    reason: str
    embeds: Unwrap | None = None


def _rule(cidr: str, reason: str, embeds: Unwrap | None = None) -> Rule:
    return Rule(ipaddress.ip_network(cidr), reason, embeds)


# The most specific matching rule applies (a metadata /32 inside link-local names the metadata).
RULES: list[Rule] = [
    # IPv4
    _rule("0.0.0.0/8", "this network"),
    _rule("10.0.0.0/8", "private"),
    _rule("100.64.0.0/10", "carrier-grade NAT"),
    _rule("100.100.100.200/32", "cloud metadata (Alibaba)"),
    _rule("127.0.0.0/8", "loopback"),
    _rule("168.63.129.16/32", "cloud metadata (Azure)"),
    _rule("169.254.0.0/16", "link-local"),
    _rule("169.254.169.254/32", "cloud metadata"),
    _rule("172.16.0.0/12", "private"),
    _rule("192.0.0.0/24", "IETF protocol assignments"),
    _rule("192.0.2.0/24", "documentation"),
    _rule("192.88.99.0/24", "6to4 relay anycast"),
    _rule("192.168.0.0/16", "private"),
    _rule("198.18.0.0/15", "benchmarking"),
    _rule("198.51.100.0/24", "documentation"),
    _rule("203.0.113.0/24", "documentation"),
    _rule("224.0.0.0/4", "multicast"),
    _rule("240.0.0.0/4", "reserved"),
    _rule("255.255.255.255/32", "broadcast"),
    # IPv6. Only 2000::/3 is global unicast; outside it, only the embedding forms below can pass.
    _rule("::/3", "reserved (outside 2000::/3)"),
    _rule("4000::/2", "reserved (outside 2000::/3)"),
    _rule("8000::/1", "reserved (outside 2000::/3)"),
    _rule("::/128", "unspecified"),
    _rule("::1/128", "loopback"),
    _rule("::/96", "IPv4-compatible", _last_32_bits),
    _rule("::ffff:0:0/96", "IPv4-mapped", _last_32_bits),
    _rule("::ffff:0:0:0/96", "IPv4-translated", _last_32_bits),
    _rule("64:ff9b::/96", "NAT64", _last_32_bits),
    _rule("64:ff9b:1::/48", "local-use NAT64", _local_nat64),
    _rule("100::/64", "discard-only"),
    _rule("2001::/32", "Teredo", _teredo),
    _rule("2001:2::/48", "benchmarking"),
    _rule("2001:10::/28", "ORCHID"),
    _rule("2001:20::/28", "ORCHIDv2"),
    _rule("2001:db8::/32", "documentation"),
    _rule("2002::/16", "6to4", _6to4),
    _rule("3fff::/20", "documentation"),
    _rule("fc00::/7", "unique-local"),
    _rule("fd00:ec2::254/128", "cloud metadata (AWS)"),
    _rule("fe80::/10", "link-local"),
    _rule("fec0::/10", "site-local"),
    _rule("ff00::/8", "multicast"),
]

# Names that only mean something inside a machine or a network.
REFUSED_SUFFIXES = {".localhost": "localhost", ".local": "mDNS (.local)", ".internal": "internal name"}


def _most_specific(ip: IPAddress) -> Rule | None:
    matches = [rule for rule in RULES if rule.network.version == ip.version and ip in rule.network]
    return max(matches, key=lambda rule: rule.network.prefixlen, default=None)


def address_refusal(ip: IPAddress) -> str | None:
    """Why a delivery may not connect to `ip`, or None when it is public."""
    rule = _most_specific(ip)
    if rule is None:
        return None
    if rule.embeds is None or not isinstance(ip, ipaddress.IPv6Address):
        return rule.reason
    for inner in rule.embeds(ip):
        why = address_refusal(inner)
        if why is not None:
            return f"{rule.reason} form of {inner}: {why}"
    return None


def parse_address(host: str) -> IPAddress | None:
    """`host` as an IP address: literal IPv4/IPv6 (brackets, zone id allowed), or the legacy
    numeric forms a resolver reads as IPv4 (`127.1`, `0x7f.0.0.1`, `2130706433`)."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(c in "0123456789abcdefxABCDEFX." for c in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def name_refusal(name: str) -> str | None:
    """Why a host name may not be an endpoint, or None. Names are also checked once resolved."""
    name = name.lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain"):
        return "localhost"
    for suffix, reason in REFUSED_SUFFIXES.items():
        if name.endswith(suffix):
            return reason
    if "." not in name:
        return "single-label host name"
    return None


def host_refusal(host: str) -> str | None:
    """Why the host of an endpoint URL, as written, is refused; None when it may be used."""
    ip = parse_address(host)
    return address_refusal(ip) if ip is not None else name_refusal(host)


def is_private_address(host: str) -> bool:
    """True for an address or name that is not a public destination."""
    return host_refusal(host) is not None
