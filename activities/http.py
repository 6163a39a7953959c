"""Outbound HTTP: the sharded client pool and how a receiver's answer is read."""

import asyncio
import email.utils
import socket
import zlib
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx

from core.targets import is_private_address

RESPONSE_BODY_LIMIT = 4096


class ClientPool:
    """A few httpx clients, chosen by destination host.

    One shared httpx client loses throughput as concurrency grows (its pool lock is contended);
    spreading hosts over several clients keeps a slow receiver from queueing the others.
    """

    def __init__(self, size: int = 8) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
        self._clients = [
            httpx.AsyncClient(limits=limits, follow_redirects=False, trust_env=False) for _ in range(size)
        ]

    def for_url(self, url: str) -> httpx.AsyncClient:
        host = urlsplit(url).hostname or ""
        return self._clients[zlib.crc32(host.encode()) % len(self._clients)]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients))


async def resolves_to_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if is_private_address(host):
        return True
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False  # the POST will fail with a connection error and be retried
    return any(is_private_address(str(info[4][0])) for info in infos)


def retry_after_seconds(response: httpx.Response, now: datetime) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())
