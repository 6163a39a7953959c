"""`hookline listen`: a receiver on 127.0.0.1 for a developer, subscribed while it runs.

It subscribes a temporary endpoint of one application to itself through the API, prints one
line per delivery (webhook-id, event type, and whether the Standard Webhooks signature verifies
with the endpoint's secret), optionally relays each delivery unchanged to a local server, always
answers 2xx, and deletes its endpoint when it stops, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

# A delivery is at most the API's body limit plus the envelope; more is not a webhook.
MAX_BODY = 64 * 1024 * 1024
# Not relayed: they describe this hop, not the delivery (httpx sets its own).
HOP_HEADERS = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
               "proxy-connection", "accept-encoding"}


class ListenError(Exception):
    """The listener could not start; the message says why in words."""


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f"HTTP {response.status_code}" + (f": {detail}" if isinstance(detail, str) else "")


class Listener:
    def __init__(
        self, *, api_url: str, token: str, app_id: str, port: int = 0, forward_to: str | None = None,
        event_types: list[str] | None = None, out: Callable[[str], None] = print,
    ) -> None:
        self.api = httpx.Client(base_url=api_url, headers={"authorization": f"Bearer {token}"}, timeout=15)
        self.app_id = app_id
        self.forward_to = forward_to
        self.event_types = event_types
        self.out = out
        self.endpoint_id: str | None = None
        self.secret: str | None = None
        self.webhook: Webhook | None = None
        self._lock = threading.Lock()  # one line at a time
        self._relay = httpx.Client(timeout=30, follow_redirects=False) if forward_to else None
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    # --- the endpoint ------------------------------------------------------------------------------

    def subscribe(self) -> None:
        body = {"url": self.url, "description": "hookline listen (temporary)", "event_types": self.event_types}
        try:
            created = self.api.post(f"/v1/apps/{self.app_id}/endpoints", json=body)
        except httpx.HTTPError as exc:
            raise ListenError(f"cannot reach the API at {self.api.base_url}: {type(exc).__name__}") from None
        if created.status_code != 201:
            hint = ""
            if created.status_code == 422:
                hint = (
                    " (the API must run with HOOKLINE_ENV=development and HOOKLINE_ALLOW_PRIVATE_TARGETS=true,"
                    " as `hookline dev` does)"
                )
            elif created.status_code == 401:
                hint = " (pass --token, or set HOOKLINE_ADMIN_TOKEN)"
            raise ListenError(f"the API refused the temporary endpoint: {_detail(created)}{hint}")
        self.endpoint_id = created.json()["id"]
        secret = self.api.get(f"/v1/apps/{self.app_id}/endpoints/{self.endpoint_id}/secret")
        if secret.status_code != 200:
            self.unsubscribe()
            raise ListenError(f"cannot read the endpoint's secret: {_detail(secret)}")
        self.secret = secret.json()["secret"]
        self.webhook = Webhook(self.secret)

    def unsubscribe(self) -> None:
        if self.endpoint_id is None:
            return
        endpoint_id, self.endpoint_id = self.endpoint_id, None
        try:
            gone = self.api.delete(f"/v1/apps/{self.app_id}/endpoints/{endpoint_id}")
            ok = gone.status_code in (204, 404)
            self._say(
                f"removed endpoint {endpoint_id}" if ok else f"could not remove endpoint {endpoint_id}: {_detail(gone)}"
            )
        except httpx.HTTPError as exc:
            self._say(f"could not remove endpoint {endpoint_id} ({type(exc).__name__}); delete it by hand")

    # --- deliveries --------------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        with self._lock:
            self.out(line)

    def receive(self, headers: dict[str, str], body: bytes) -> None:
        """Verify, relay and print one delivery."""
        verified = "verified"
        try:
            assert self.webhook is not None
            self.webhook.verify(body, headers)
        except WebhookVerificationError:
            verified = "INVALID SIGNATURE"
        try:
            event_type = str(json.loads(body).get("type", "?"))
        except (ValueError, AttributeError):
            event_type = "?"
        line = f"{datetime.now():%H:%M:%S}  {headers.get('webhook-id', '-')}  {event_type}  {verified}"
        if self.forward_to:
            line += f"  -> {self.relay(headers, body)}"
        self._say(line)

    def relay(self, headers: dict[str, str], body: bytes) -> str:
        """POST the delivery to --forward-to, headers and body unchanged; what it answered, in words."""
        assert self._relay is not None and self.forward_to is not None
        kept = {name: value for name, value in headers.items() if name.lower() not in HOP_HEADERS}
        try:
            answer = self._relay.post(self.forward_to, content=body, headers=kept)
        except httpx.HTTPError as exc:
            return f"{self.forward_to} failed: {type(exc).__name__}"
        return f"{self.forward_to} {answer.status_code}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                listener.receive({k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # one line per delivery is printed by receive()

        return Handler

    # --- running -----------------------------------------------------------------------------------

    def run(self) -> None:
        """Subscribe, serve until Ctrl-C or SIGTERM, then unsubscribe."""

        def stop(_signum: int, _frame: object) -> None:
            raise KeyboardInterrupt

        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        try:
            self.subscribe()
            relay = f", relaying to {self.forward_to}" if self.forward_to else ""
            self._say(
                f"Listening on {self.url} as endpoint {self.endpoint_id} of {self.app_id}{relay}."
                " Ctrl-C stops and removes it."
            )
            # What the developer's own server needs to verify what is relayed to it; the endpoint
            # lives only as long as this command.
            self._say(f"Signing secret: {self.secret}")
            self.server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.server.server_close()
            self.unsubscribe()
            self.api.close()
            if self._relay is not None:
                self._relay.close()
