"""Outbound HTTP: the sharded client pool and how a receiver's answer is read."""

import asyncio
import email.utils
import socket
import zlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from core.targets import is_private_address

RESPONSE_BODY_LIMIT = 4096


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # IPv4 first: the addresses are tried one after another, and a host whose IPv6 route is
    # broken would otherwise cost a connect timeout on every new connection.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PublicOnlyBackend(httpcore.AsyncNetworkBackend):
    """Connects only to public addresses, and to the very address it checked.

    The activity checks an endpoint's host before each attempt, but the HTTP client would resolve
    it again to connect: a DNS server answering a public address first and a private one next
    (DNS rebinding) would slip past the check. Here one lookup serves both the check and the
    connection. The URL keeps its host name, so TLS verifies the certificate against it.
    """

    def __init__(
        self, inner: httpcore.AsyncNetworkBackend, resolve: Callable[[str, int], Awaitable[list[str]]] | None = None
    ) -> None:
        self._inner = inner
        self._resolve = resolve or _resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._resolve(host, port)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}: no address")
        refused = [a for a in addresses if is_private_address(a)]
        if is_private_address(host) or refused:
            raise httpcore.ConnectError(f"refused: {host} resolves to a private address ({', '.join(refused) or host})")
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not delivery targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class ClientPool:
    """A few httpx clients, chosen by endpoint URL (one endpoint always uses the same one).

    One shared httpx client loses throughput as concurrency grows: its connection pool is
    scanned on every request, and its lock is contended. Spreading endpoints over several clients
    keeps each pool small, also when many endpoints share one host, and keeps a slow receiver
    from queueing the others. With `public_only`, every connection goes through PublicOnlyBackend.
    """

    def __init__(self, size: int = 8, *, public_only: bool = False) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
        self._clients = [
            # No timeout of httpx's own (its default is 5 s per read): the delivery activity gives
            # each attempt one deadline, `delivery_timeout_s`, for connect, send and response.
            httpx.AsyncClient(
                transport=self._transport(limits, public_only), follow_redirects=False, trust_env=False, timeout=None
            )
            for _ in range(size)
        ]

    @staticmethod
    def _transport(limits: httpx.Limits, public_only: bool) -> httpx.AsyncHTTPTransport:
        transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
        if public_only:
            # httpx takes no network backend; its connection pool does (httpx 0.28, httpcore 1.x).
            pool = transport._pool
            assert isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend")
            pool._network_backend = PublicOnlyBackend(pool._network_backend)
        return transport

    def for_url(self, url: str) -> httpx.AsyncClient:
        return self._clients[zlib.crc32(url.encode()) % len(self._clients)]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients))


async def resolves_to_private(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if is_private_address(host):
        return True
    try:
        addresses = await _resolve(host, 0)
    except socket.gaierror:
        return False  # the POST will fail with a connection error and be retried
    return any(is_private_address(a) for a in addresses)


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
