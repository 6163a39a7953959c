"""Outbound HTTP: the sharded client pool and how a receiver's answer is read."""

import asyncio
import base64
import contextlib
import select
import socket
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

import httpcore
import httpx

from hookline.core.destinations import address_refusal, name_refusal, parse_address
from hookline.core.outcomes import parse_retry_after

RESPONSE_BODY_LIMIT = 4096


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # IPv4 first: the addresses are tried one after another, and a host whose IPv6 route is
    # broken would otherwise cost a connect timeout on every new connection.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


Resolver = Callable[[str, int], Awaitable[list[str]]]


def _answers_refusal(host: str, addresses: list[str]) -> str | None:
    """Why `host`, resolved to `addresses`, is no destination: the name, or any one answer."""
    if parse_address(host) is None and (why := name_refusal(host)) is not None:
        return f"{host} is a private name ({why})"
    for address in addresses:
        ip = parse_address(address)
        why = "unreadable address" if ip is None else address_refusal(ip)
        if why is not None:
            where = "is" if address == host else f"resolves to {address},"
            return f"{host} {where} a private address ({why})"
    return None


class RefusedConnect(httpcore.ConnectError):
    """The connect-time guard refused the destination; no connection was made."""


class DestinationBlocked(httpx.ConnectError):
    """A delivery's destination is not public (HOOKLINE_ALLOW_PRIVATE_TARGETS=false)."""


def _readable(sock: socket.socket | None) -> bool:
    """httpcore's test of an idle connection: readable means the server closed it (or sent what it
    should not have), so the pool drops it; a closed socket counts as readable."""
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _SocketStream(httpcore.AsyncNetworkStream):
    """An httpcore stream that looks its socket up once.

    Before each request and after each response, the pool asks every idle connection whether its
    socket is readable. Through anyio, each asking builds all of the socket's attributes, a
    getpeername() system call among them: measured, a quarter of the CPU a delivery's POST costs.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _SocketStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class SocketBackend(httpcore.AnyIOBackend):
    """httpcore's anyio backend, with streams that answer the pool's readability test cheaply."""

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _SocketStream(await super().connect_tcp(*args, **kwargs))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend over another that refuses unix sockets: deliveries go over TCP only."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedConnect("refused: unix sockets are not delivery targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicOnlyBackend(_GuardedBackend):
    """Connects only to public addresses, and to the very address it checked.

    The activity checks an endpoint's host before each attempt, but the HTTP client would resolve
    it again to connect: a DNS server answering a public address first and a private one next
    (DNS rebinding) would slip past the check. Here one lookup serves both the check and the
    connection, and every answer is checked. The URL keeps its host name, so TLS verifies the
    certificate against it.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend, resolve: Resolver | None = None) -> None:
        super().__init__(inner)
        self._resolve = resolve or _resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = parse_address(host)
        if literal is not None:
            addresses = [str(literal)]  # also a legacy numeric form: connect to what was checked
        elif (refused := _answers_refusal(host, [])) is not None:
            raise RefusedConnect(f"refused: {refused}")
        else:
            try:
                addresses = await self._resolve(host, port)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}: no address")
        refused = _answers_refusal(host, addresses)
        if refused is not None:
            raise RefusedConnect(f"refused: {refused}")
        last_error: Exception = httpcore.ConnectError(f"could not connect to {host}")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error


class EgressProxyBackend(_GuardedBackend):
    """Every connection through a forward proxy's CONNECT tunnel (HOOKLINE_EGRESS_PROXY).

    The pool above asks for a connection to host:port and gets a tunnel to it instead; TLS, the
    Host header and connection reuse then work as without a proxy, against the endpoint's name.
    Under PublicOnlyBackend (the default), `host` is the address it resolved and checked, so the
    CONNECT names that address: the proxy cannot be sent elsewhere by a second DNS answer.
    """

    _MAX_ANSWER = 8192

    def __init__(self, inner: httpcore.AsyncNetworkBackend, proxy_url: str) -> None:
        proxy = httpx.URL(proxy_url)
        if proxy.scheme != "http" or not proxy.host:
            raise ValueError("the egress proxy must be an http:// URL with a host")
        super().__init__(inner)
        self._proxy = (proxy.host, proxy.port or 80)
        self._auth = b""
        if proxy.username or proxy.password:
            token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
            self._auth = f"Proxy-Authorization: Basic {token}\r\n".encode()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        stream = await self._inner.connect_tcp(*self._proxy, timeout, local_address, socket_options)
        try:
            await stream.write(
                f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + self._auth + b"\r\n", timeout
            )
            status = await self._answer_status(stream, timeout)
        except BaseException:
            await stream.aclose()
            raise
        if not 200 <= status < 300:
            await stream.aclose()
            # The proxy's own refusal (a Smokescreen deny, say): no connection to the target.
            raise httpcore.ConnectError(f"the egress proxy answered {status} to CONNECT {target}")
        return stream

    async def _answer_status(self, stream: httpcore.AsyncNetworkStream, timeout: float | None) -> int:
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = await stream.read(self._MAX_ANSWER, timeout)
            if not chunk:
                raise httpcore.ConnectError("the egress proxy closed the connection during CONNECT")
            answer += chunk
            if len(answer) > self._MAX_ANSWER:
                raise httpcore.ConnectError("the egress proxy's CONNECT answer is too long")
        head, _, rest = answer.partition(b"\r\n\r\n")
        if rest:  # bytes of the tunnel itself, before the client spoke: no HTTP or TLS server does that
            raise httpcore.ConnectError("the egress proxy sent data before the tunnel was used")
        parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise httpcore.ConnectError("the egress proxy's CONNECT answer is not HTTP")
        return int(parts[1])


# httpcore's errors as httpx's, most specific first (the attempt handles httpx.HTTPError).
_ERRORS: list[tuple[type[Exception], type[httpx.HTTPError]]] = [
    (RefusedConnect, DestinationBlocked),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
]


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = next((to for core, to in _ERRORS if isinstance(exc, core)), None)
        if mapped is None:
            raise
        raise mapped(str(exc)) from exc


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _httpx_errors():
                await close()


class PoolTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore pool whose network backend we choose.

    httpx.AsyncHTTPTransport takes no network backend; httpcore.AsyncConnectionPool does, publicly.
    This is the few lines of request/response/error translation between the two, no environment
    (the client sets trust_env=False anyway: no HTTP(S)_PROXY), HTTP/1.1. The egress proxy is a
    network backend too (EgressProxyBackend).
    """

    def __init__(self, limits: httpx.Limits, network_backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=network_backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=cast(AsyncIterable[bytes], request.stream),
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(cast(AsyncIterable[bytes], response.stream)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class ClientPool:
    """A few httpx clients, chosen by endpoint URL (one endpoint always uses the same one).

    One shared httpx client loses throughput as concurrency grows: its connection pool is
    scanned on every request, and its lock is contended. Spreading endpoints over several clients
    keeps each pool small, also when many endpoints share one host, and keeps a slow receiver
    from queueing the others. With `public_only`, every connection goes through PublicOnlyBackend;
    with `proxy`, through the egress proxy's CONNECT tunnel (to the address the guard checked).
    """

    def __init__(
        self, size: int = 8, *, public_only: bool = False, resolve: Resolver | None = None, proxy: str | None = None
    ) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30)
        self._transports = [self._transport(limits, public_only, resolve, proxy) for _ in range(size)]
        self._clients = [
            # No timeout of httpx's own (its default is 5 s per read): the delivery activity gives
            # each attempt one deadline, `delivery_timeout_s`, for connect, send and response.
            httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False, timeout=None)
            for transport in self._transports
        ]

    @staticmethod
    def _transport(
        limits: httpx.Limits, public_only: bool, resolve: Resolver | None, proxy: str | None
    ) -> PoolTransport:
        backend: httpcore.AsyncNetworkBackend = SocketBackend()
        if proxy is not None:
            backend = EgressProxyBackend(backend, proxy)
        if public_only:
            backend = PublicOnlyBackend(backend, resolve)
        return PoolTransport(limits, backend)

    def for_url(self, url: str) -> httpx.AsyncClient:
        return self._clients[self._shard(url)]

    @contextlib.asynccontextmanager
    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> AsyncIterator[httpx.Response]:
        """POST and yield the response with its body unread; it is closed on exit.

        Straight to the URL's transport, the one its client uses: a delivery needs nothing of
        httpx.AsyncClient's own (cookies, auth, redirects, default headers), and going round it
        saves about a tenth of a POST's CPU (measured).
        """
        request = httpx.Request("POST", url, content=content, headers=headers)
        response = await self._transports[self._shard(url)].handle_async_request(request)
        response.request = request
        try:
            yield response
        finally:
            await response.aclose()

    def _shard(self, url: str) -> int:
        return zlib.crc32(url.encode()) % len(self._clients)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._clients))


async def destination_refusal(url: str, resolve: Resolver | None = None) -> str | None:
    """Why the worker may not send to `url` (its host, and every address it resolves to), or None."""
    host = urlsplit(url).hostname or ""
    if parse_address(host) is not None:
        return _answers_refusal(host, [host])
    refused = _answers_refusal(host, [])  # the name itself, before any lookup
    if refused is not None:
        return refused
    try:
        addresses = await (resolve or _resolve)(host, 0)
    except socket.gaierror:
        return None  # the POST will fail with a connection error and be retried
    return _answers_refusal(host, addresses)


def retry_after_seconds(response: httpx.Response, now: datetime) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    return parse_retry_after(response.headers.get("retry-after"), now)
