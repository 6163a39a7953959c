"""Which destination addresses a delivery may reach."""

import ipaddress


def is_private_address(host: str) -> bool:
    """True for loopback, private, link-local and other non-public addresses."""
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global
