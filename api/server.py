"""The API's HTTP server: uvicorn with a front door that bounds what a client may hold open.

uvicorn's httptools protocol buffers a request's headers without limit and waits for them
without a deadline: one client could hold the process's memory or its connections. The
protocol here counts header bytes and headers as they arrive, refuses (431, then closes) as
soon as either is over its bound, and cuts off a client whose headers are not complete within
`HOOKLINE_HEADER_TIMEOUT_S`. It parses like its parent, so requests cost what they did.
"""

import asyncio

import httptools
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hookline.core.config import Settings


class HeadersRefused(Exception):
    """Raised from a parser callback to stop parsing the rest of what was received."""


class FrontDoorProtocol(HttpToolsProtocol):
    max_header_bytes = 32 * 1024
    max_headers = 100
    header_timeout_s = 10.0

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._pending_bytes = 0  # received since the current request began, until its headers end
        self._header_bytes = 0  # request line and headers, as parsed
        self._header_count = 0
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._awaiting_headers:
            self._arm_header_deadline()  # a kept-alive connection's next request starts its clock here
            self._pending_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadersRefused):
                self._refuse()
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # The parser keeps an unfinished header line in memory: bound what it may hold.
        if self._awaiting_headers and self._pending_bytes > self.max_header_bytes:
            self._refuse()

    # Parser callbacks: count before the parent stores anything.

    def on_message_begin(self) -> None:
        self._header_bytes = self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            raise HeadersRefused
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._pending_bytes = 0
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._awaiting_headers = True
        super().on_message_complete()

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes:
            raise HeadersRefused

    # Refusals

    def _refuse(self) -> None:
        msg = f"request headers are over {self.max_header_bytes} bytes or {self.max_headers} fields"
        self._answer_and_close(b"HTTP/1.1 431 Request Header Fields Too Large\r\n", msg)

    def _bad_request(self) -> None:
        self.logger.warning("Invalid HTTP request received.")
        self._answer_and_close(b"HTTP/1.1 400 Bad Request\r\n", "invalid HTTP request")

    def _answer_and_close(self, status_line: bytes, detail: str) -> None:
        self._disarm_header_deadline()
        if self.transport.is_closing():
            return
        body = ('{"detail": "' + detail + '"}').encode()
        self.transport.write(
            status_line
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()

    # The header deadline

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            # No answer: a client this slow is not reading one either.
            self.transport.close()


def front_door_protocol(settings: Settings) -> type[FrontDoorProtocol]:
    """The protocol class with this deployment's bounds (uvicorn instantiates it per connection)."""
    return type(
        "HooklineHttpProtocol",
        (FrontDoorProtocol,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "max_headers": settings.max_headers,
            "header_timeout_s": settings.header_timeout_s,
        },
    )


def serve(app: ASGIApp, settings: Settings) -> None:
    """Run the API until it is stopped: `hookline api`."""
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=front_door_protocol(settings),
        limit_concurrency=settings.max_connections,
        # uvicorn believes X-Forwarded-* from 127.0.0.1 unless told otherwise: here only from the
        # proxies configured, so a client cannot pick the address its failed logins count against.
        proxy_headers=bool(settings.forwarded_allow_ips.strip()),
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="warning",
        # The process's logging is set up already (core/logs.py): uvicorn's records go through it.
        log_config=None,
        timeout_graceful_shutdown=10,
    )
