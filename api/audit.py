"""The access log line of every request, and the audit entry of every change made through the API.

One ASGI middleware, outside the others, so that it sees every answer (401 and 413 included)
and, after routing, the route template and path parameters FastAPI leaves in the scope.

What it never keeps: a header value, the query string, the raw path, a body value. The audit
entry holds the NAMES of the request body's top-level fields; the access log not even those.
"""

import json
import logging
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hookline.store import audit

access_log = logging.getLogger("hookline.access")
log = logging.getLogger("hookline.audit")

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Publishing is the hot path and is recorded as events already: never audited, body never kept.
PUBLISH = "POST /v1/apps/{app_id}/events"
_PUBLISH_PATH = re.compile(r"/v1/apps/[^/]+/events/?")
# Reading a secret changes nothing, but it hands out what signs the webhooks: audited too.
SECRET_READ = "secret.read"
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
MAX_FIELDS = 50
MAX_FIELD_NAME = 64


def _ensure_output() -> None:
    """`hookline api` runs uvicorn at log level warning and configures no root handler: without
    one, Python would print only warnings. A deployment that configures logging keeps its own."""
    if access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)
    if not access_log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        access_log.addHandler(handler)


def field_names(body: bytes) -> list[str] | None:
    """The top-level keys of a JSON object body, sorted; never a value. None if it is not one."""
    if not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    return sorted(str(key)[:MAX_FIELD_NAME] for key in parsed)[:MAX_FIELDS]


def created_id(body: bytes) -> str | None:
    """The id (or an event type's name) in a 201 answer: what a create made. Nothing else is read."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    found = parsed.get("id", parsed.get("name"))
    return found if isinstance(found, str) else None


def audit_action(method: str, template: str) -> str | None:
    """The action an audit entry names for a request, or None when it is not audited."""
    if not template.startswith("/v1/"):
        return None
    if method == "GET" and template.endswith("/secret"):
        return SECRET_READ
    action = f"{method} {template}"
    if method not in MUTATING or action == PUBLISH:
        return None
    return action


def path_ids(template: str, path_params: dict[str, Any]) -> tuple[str | None, str | None]:
    """(app_id, target_id): the target is the last id in the path, e.g. the endpoint of an endpoint route."""
    names = _PARAM.findall(template)
    app_id = path_params.get("app_id")
    target = path_params.get(names[-1]) if names else None
    return (str(app_id) if app_id is not None else None, str(target) if target is not None else None)


def credential_of(scope: Scope, status: int | None) -> str:
    """Set by the authentication in front of the routes. Before API keys, the admin token is the
    only credential, so a /v1 request that was not refused was made with it."""
    found = scope.get("state", {}).get("credential_id")
    if found:
        return str(found)
    if scope["path"].startswith("/v1/") and status not in (None, 401):
        return "admin"
    return "-"


class AuditTrail:
    def __init__(self, app: ASGIApp, *, access_log_on: bool = True) -> None:
        self.app = app
        self.access_log_on = access_log_on
        if access_log_on:
            _ensure_output()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        maybe_audited = (method in MUTATING and not (method == "POST" and _PUBLISH_PATH.fullmatch(scope["path"]))) or (
            method == "GET" and scope["path"].endswith("/secret")
        )
        request_body: list[bytes] = []
        status: int | None = None
        held: list[Message] | None = None

        async def receive_keeping_body() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def send_after_audit(message: Message) -> None:
            nonlocal status, held
            if message["type"] == "http.response.start":
                status = message["status"]
                if maybe_audited and 200 <= status < 300 and self._action(scope) is not None:
                    held = [message]  # the client sees its success only once the change is on record
                    return
            elif held is not None and message["type"] == "http.response.body":
                held.append(message)
                if message.get("more_body", False):
                    return
                await self._record(scope, status or 0, b"".join(request_body), held)
                to_send, held = held, None
                for m in to_send:
                    await send(m)
                return
            await send(message)

        try:
            await self.app(scope, receive_keeping_body if maybe_audited else receive, send_after_audit)
        finally:
            if self.access_log_on:
                self._log_access(scope, status, started)

    @staticmethod
    def _action(scope: Scope) -> str | None:
        route = scope.get("route")
        template = getattr(route, "path", None)
        return audit_action(scope["method"], template) if template else None

    async def _record(self, scope: Scope, status: int, request_body: bytes, response: list[Message]) -> None:
        action = self._action(scope)
        assert action is not None
        template = scope["route"].path
        app_id, target_id = path_ids(template, scope.get("path_params", {}))
        if status == 201:
            made = created_id(b"".join(m.get("body", b"") for m in response[1:]))
            if made is not None:
                target_id = made
                if template == "/v1/apps":
                    app_id = made
        try:
            async with scope["app"].state.sessions() as session:
                await audit.record(
                    session, credential_id=credential_of(scope, status), action=action, app_id=app_id,
                    target_id=target_id, status_code=status,
                    fields=field_names(request_body) if action != SECRET_READ else None,
                )
        except Exception:
            # The change is made and committed: answering 500 would invite a retry of it.
            log.exception("audit entry NOT recorded: %s app=%s target=%s", action, app_id, target_id)

    @staticmethod
    def _log_access(scope: Scope, status: int | None, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "-"  # never the raw path: it may carry anything
        duration_ms = (time.perf_counter() - started) * 1000
        shown = status if status is not None else 500
        credential = credential_of(scope, status)
        access_log.info(
            "%s %s %d %.1fms credential=%s", scope["method"], template, shown, duration_ms, credential,
            extra={"method": scope["method"], "route": template, "status": shown,
                   "duration_ms": round(duration_ms, 1), "credential_id": credential},
        )
