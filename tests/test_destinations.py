"""Destinations (PRODUCT "Safe by default"): the address table, the name rules, the API and the worker.

The table cases are the regression list of issue 9: every range and metadata address the contract
names, every IPv6 form that carries a blocked IPv4 inside, the special names, and public controls
that must stay allowed.
"""

import ipaddress
import sqlite3
from collections.abc import AsyncIterator

import pytest

from hookline.activities.http import ClientPool, DestinationBlocked, destination_refusal
from hookline.core.destinations import host_refusal
from tests.harness import ApiClient, Receiver, Stack, StackFactory, api_client

BLOCKED = {
    # IPv4 ranges
    "this-network": "0.0.0.0",
    "this-network-other": "0.1.2.3",
    "loopback": "127.0.0.1",
    "loopback-other": "127.255.0.9",
    "private-10": "10.1.2.3",
    "private-172": "172.16.5.4",
    "private-172-top": "172.31.255.254",
    "private-192-168": "192.168.1.1",
    "link-local": "169.254.1.1",
    "cgnat": "100.64.0.1",
    "cgnat-top": "100.127.255.254",
    "ietf-192-0-0": "192.0.0.8",
    "oracle-metadata-192-0-0-192": "192.0.0.192",
    "benchmarking": "198.18.0.1",
    "benchmarking-top": "198.19.255.254",
    "multicast": "224.0.0.1",
    "multicast-top": "239.255.255.250",
    "reserved": "240.0.0.1",
    "broadcast": "255.255.255.255",
    "documentation-1": "192.0.2.10",
    "documentation-2": "198.51.100.10",
    "documentation-3": "203.0.113.10",
    # cloud metadata
    "metadata-aws-gcp": "169.254.169.254",
    "metadata-alibaba": "100.100.100.200",
    "metadata-azure": "168.63.129.16",
    "metadata-aws-ipv6": "fd00:ec2::254",
    # IPv6 ranges
    "v6-unspecified": "::",
    "v6-loopback": "::1",
    "v6-unique-local": "fc00::1",
    "v6-unique-local-fd": "fd12:3456::1",
    "v6-link-local": "fe80::1",
    "v6-link-local-zone": "fe80::1%eth0",
    "v6-site-local": "fec0::1",
    "v6-multicast": "ff02::1",
    "v6-documentation": "2001:db8::1",
    "v6-outside-global-unicast": "4000::1",
    # IPv6 forms with a blocked IPv4 inside
    "mapped-alibaba-metadata": "::ffff:100.100.100.200",
    "mapped-192-0-0-192": "::ffff:192.0.0.192",
    "mapped-loopback": "::ffff:127.0.0.1",
    "mapped-hex": "::ffff:a9fe:a9fe",
    "compatible-private": "::10.0.0.1",
    "translated-loopback": "::ffff:0:127.0.0.1",
    "nat64-metadata": "64:ff9b::169.254.169.254",
    "nat64-azure": "64:ff9b::a83f:8110",
    "nat64-local-use-96": "64:ff9b:1::a9fe:a9fe",
    "nat64-local-use-48": "64:ff9b:1:7f00:0:100::",
    "6to4-metadata": "2002:a9fe:a9fe::1",
    "6to4-private": "2002:c0a8:0101::",
    "teredo-client-documentation": "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # client 192.0.2.45
    "teredo-client-loopback": "2001:0:4136:e378::80ff:fffe",  # client 127.0.0.1
    "teredo-server-private": "2001:0:a00:1::",  # server 10.0.0.1
    # legacy numeric IPv4 forms a resolver accepts
    "short-loopback": "127.1",
    "hex-loopback": "0x7f000001",
    "decimal-loopback": "2130706433",
    # names
    "localhost": "localhost",
    "localhost-upper-trailing-dot": "LocalHost.",
    "sub-localhost": "api.localhost",
    "mdns": "printer.local",
    "internal": "metadata.google.internal",
    "internal-trailing-dot": "db.corp.internal.",
    "single-label": "intranet",
    "single-label-trailing-dot": "metadata.",
}

ALLOWED = {
    "cloudflare": "1.1.1.1",
    "google": "8.8.8.8",
    "just-outside-cgnat": "100.128.0.1",
    "just-outside-172-16": "172.32.0.1",
    "just-outside-benchmarking": "198.20.0.1",
    "azure-neighbour": "168.63.129.17",
    "google-v6": "2001:4860:4860::8888",
    "nat64-public": "64:ff9b::8.8.8.8",
    "mapped-public": "::ffff:8.8.8.8",
    "6to4-public": "2002:808:808::1",
    "teredo-public": "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # server 65.54.227.120, client 8.8.8.8
    "name": "hooks.example.com",
    "name-trailing-dot": "hooks.example.com.",
    "name-like-local": "localization.example.com",
}


@pytest.mark.parametrize("host", list(BLOCKED.values()), ids=list(BLOCKED))
def test_blocked_destinations(host: str) -> None:
    assert host_refusal(host) is not None


@pytest.mark.parametrize("host", list(ALLOWED.values()), ids=list(ALLOWED))
def test_public_destinations_are_allowed(host: str) -> None:
    assert host_refusal(host) is None


@pytest.mark.parametrize(
    "host, reason",
    [
        ("169.254.169.254", "cloud metadata"),
        ("168.63.129.16", "cloud metadata (Azure)"),
        ("::ffff:100.100.100.200", "IPv4-mapped form of 100.100.100.200: cloud metadata (Alibaba)"),
        ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254: cloud metadata"),
        ("2001:0:4136:e378::80ff:fffe", "Teredo form of 127.0.0.1: loopback"),
        ("printer.local", "mDNS (.local)"),
        ("intranet", "single-label host name"),
    ],
)
def test_the_reason_names_what_was_matched(host: str, reason: str) -> None:
    assert host_refusal(host) == reason


def test_the_table_does_not_read_pythons_address_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """is_global/is_private changed between patch releases (CVE-2024-4032): the verdicts must not move."""
    before = {host: host_refusal(host) for host in [*BLOCKED.values(), *ALLOWED.values()]}

    def unavailable(self: object) -> bool:
        raise AssertionError("the destination table read an ipaddress flag")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Network, ipaddress.IPv6Network):
        for flag in ("is_global", "is_private", "is_reserved", "is_loopback", "is_link_local", "is_multicast"):
            monkeypatch.setattr(cls, flag, property(unavailable))
    assert {host: host_refusal(host) for host in before} == before


async def test_the_delivery_check_looks_at_every_resolved_answer() -> None:
    async def dns(host: str, port: int) -> list[str]:
        return {"good.example.com": ["8.8.8.8", "2001:4860:4860::8888"], "mixed.example.com": ["8.8.8.8", "::ffff:10.0.0.1"]}[host]

    assert await destination_refusal("https://good.example.com/in", dns) is None
    assert await destination_refusal("https://mixed.example.com/in", dns) == (
        "mixed.example.com resolves to ::ffff:10.0.0.1, a private address (IPv4-mapped form of 10.0.0.1: private)"
    )
    assert await destination_refusal("https://[64:ff9b::a9fe:a9fe]/x") is not None  # a literal: no lookup
    assert await destination_refusal("https://metadata.google.internal/x") == "metadata.google.internal is a private name (internal name)"


# --- the connect-time guard, with a real receiver --------------------------------------------------


async def test_the_connect_guard_refuses_a_name_resolving_inside_and_makes_no_connection(
    receiver: Receiver, path: str
) -> None:
    async def dns(host: str, port: int) -> list[str]:
        assert host == "hooks.example.com"
        return ["8.8.8.8", "127.0.0.1"]  # one answer inside is enough to refuse

    url = f"http://hooks.example.com:{receiver.port}{path}"
    guarded = ClientPool(1, public_only=True, resolve=dns)
    try:
        with pytest.raises(DestinationBlocked, match=r"resolves to 127\.0\.0\.1, a private address \(loopback\)"):
            await guarded.for_url(url).post(url, content=b"{}")
        with pytest.raises(DestinationBlocked, match="private address"):  # a literal address: no lookup needed
            await guarded.for_url(receiver.url(path)).post(receiver.url(path), content=b"{}")
    finally:
        await guarded.aclose()
    assert receiver.at(path) == []

    # The same transport without the guard does reach the receiver: the guard, not a broken
    # client, is what stopped the requests above.
    plain = ClientPool(1)
    try:
        response = await plain.for_url(receiver.url(path)).post(receiver.url(path), content=b"{}")
    finally:
        await plain.aclose()
    assert response.status_code == 200 and len(receiver.at(path)) == 1


# --- a stack with HOOKLINE_ALLOW_PRIVATE_TARGETS=false -----------------------------------------------


@pytest.fixture(scope="module")
def strict_stack(make_stack: StackFactory) -> Stack:
    return make_stack("destinations", HOOKLINE_ALLOW_PRIVATE_TARGETS="false")


@pytest.fixture
async def strict_api(strict_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(strict_stack):
        yield client


ATTACKER_URLS = {
    "azure-wire-server": "https://168.63.129.16/metadata/instance",
    "oracle-192-0-0-192": "https://192.0.0.192/opc/v2/instance/",
    "mapped-alibaba": "https://[::ffff:100.100.100.200]/latest/meta-data",
    "mapped-192-0-0-192": "https://[::ffff:192.0.0.192]/",
    "nat64-metadata": "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
    "6to4-metadata": "https://[2002:a9fe:a9fe::]/latest/meta-data",
    "teredo-loopback": "https://[2001:0:4136:e378::80ff:fffe]/",
    "aws-ipv6-metadata": "https://[fd00:ec2::254]/latest/meta-data",
    "cgnat": "https://100.64.1.1/hook",
    "localhost-subdomain": "https://admin.localhost/hook",
    "mdns": "https://printer.local/hook",
    "internal": "https://metadata.google.internal/computeMetadata/v1/",
    "single-label": "https://intranet/hook",
}


@pytest.mark.parametrize("url", list(ATTACKER_URLS.values()), ids=list(ATTACKER_URLS))
async def test_the_api_refuses_the_attackers_destinations(strict_api: ApiClient, url: str) -> None:
    app_id = await strict_api.create_app()
    r = await strict_api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "private" in detail and "HOOKLINE_ALLOW_PRIVATE_TARGETS" in detail
    assert (await strict_api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"] == []

    created = await strict_api.create_endpoint(app_id, "https://hooks.example.com/in")
    r = await strict_api.http.patch(f"/v1/apps/{app_id}/endpoints/{created['id']}", json={"url": url})
    assert r.status_code == 422, r.text
    assert (await strict_api.http.get(f"/v1/apps/{app_id}/endpoints/{created['id']}")).json() == created


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "https://[64:ff9b::808:808]/hook", "https://hooks.example.com./in"])
async def test_the_api_accepts_public_destinations(strict_api: ApiClient, url: str) -> None:
    app_id = await strict_api.create_app()
    r = await strict_api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
    assert r.status_code == 201, r.text


async def test_the_worker_records_a_blocked_attempt_and_sends_nothing(
    strict_api: ApiClient, strict_stack: Stack, receiver: Receiver, path: str
) -> None:
    """A stored URL that points inside now (saved before this rule, or by hand) is never sent to."""
    app_id = await strict_api.create_app()
    endpoint = await strict_api.create_endpoint(app_id, "https://hooks.example.com/in")
    with sqlite3.connect(strict_stack.sqlite_file) as db:
        db.execute("UPDATE endpoints SET url = ? WHERE id = ?", (receiver.url(path), endpoint["id"]))
    event = await strict_api.publish(app_id, "invoice.paid", {"n": 1})

    done = await strict_api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "dead_lettered"
    [attempt] = await strict_api.attempts(app_id, delivery["id"])
    assert attempt["status_code"] is None
    assert attempt["error"] == "blocked: 127.0.0.1 is a private address (loopback)"
    assert receiver.at(path) == []


async def test_the_setting_lifts_the_rules(api: ApiClient) -> None:
    """The default test stack runs with HOOKLINE_ALLOW_PRIVATE_TARGETS=true."""
    app_id = await api.create_app()
    for url in ("https://168.63.129.16/x", "https://[::ffff:100.100.100.200]/x", "https://intranet/x"):
        r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
        assert r.status_code == 201, r.text
