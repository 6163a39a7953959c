"""Who is calling, and may they: credentials, the API-key format, the route table, request budgets.

Every request to a /v1 route passes `Gatekeeper.check` (from the middleware in api.main) before
its body is read: authenticate (401, or 429 after too many failures from one address), spend
the credential's budget (429), then authorize against ACCESS, the one table that says which
scope each route needs. A route missing from ACCESS is refused (and tests/test_auth_matrix.py
fails); an app-bound key gets 404 for any other application's resources.
"""

import hashlib
import hmac
import logging
import math
import re
import secrets
import string
import time
import zlib
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response
from starlette.routing import Match

from hookline.core.config import Settings
from hookline.store import keys
from hookline.store.tables import utcnow

log = logging.getLogger("hookline.api.auth")

# --- scopes ------------------------------------------------------------------------------------

ADMIN = "admin"
APP_READ = "app:read"
APP_WRITE = "app:write"
EVENTS_PUBLISH = "events:publish"
APP_SCOPES = (APP_READ, APP_WRITE, EVENTS_PUBLISH)
SCOPES = (ADMIN, *APP_SCOPES)
# Anyone, no credential: liveness, metrics, the OpenAPI document and its viewers.
PUBLIC = "public"

# What holding a scope lets one do, the scope itself included.
_GRANTS: dict[str, frozenset[str]] = {
    ADMIN: frozenset(SCOPES),
    APP_WRITE: frozenset({APP_WRITE, APP_READ, EVENTS_PUBLISH}),
    APP_READ: frozenset({APP_READ}),
    EVENTS_PUBLISH: frozenset({EVENTS_PUBLISH}),
}

# Every route: (method, path template) -> the scope it needs. HEAD is checked as GET.
APPS = "/v1/apps/{app_id}"
ENDPOINT = f"{APPS}/endpoints/{{endpoint_id}}"
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # The subscriber portal's page and script: static, no data; it calls /v1 with its own token.
    ("GET", "/portal"): PUBLIC,
    ("GET", "/portal/portal.js"): PUBLIC,
    ("GET", "/portal/portal.css"): PUBLIC,
    # Applications: an app-bound key lists and reads only its own; the rest is the operator's.
    ("GET", "/v1/apps"): APP_READ,
    ("POST", "/v1/apps"): ADMIN,
    ("GET", APPS): APP_READ,
    ("PATCH", APPS): ADMIN,
    ("DELETE", APPS): ADMIN,
    # The event-type catalog is shared by all applications: anyone with app:read reads it.
    ("GET", "/v1/event-types"): APP_READ,
    ("POST", "/v1/event-types"): ADMIN,
    ("GET", "/v1/event-types/{name}"): APP_READ,
    ("PATCH", "/v1/event-types/{name}"): ADMIN,
    ("DELETE", "/v1/event-types/{name}"): ADMIN,
    ("GET", "/v1/event-types/asyncapi"): APP_READ,
    ("POST", "/v1/event-types/{name}/versions"): ADMIN,
    ("GET", "/v1/event-types/{name}/versions/{version}"): APP_READ,
    ("PATCH", "/v1/event-types/{name}/versions/{version}"): ADMIN,
    # Counts endpoints of every application: the operator's.
    ("GET", "/v1/event-types/{name}/usage"): ADMIN,
    ("GET", f"{APPS}/endpoints"): APP_READ,
    ("POST", f"{APPS}/endpoints"): APP_WRITE,
    ("GET", ENDPOINT): APP_READ,
    ("PATCH", ENDPOINT): APP_WRITE,
    ("DELETE", ENDPOINT): APP_WRITE,
    # The one GET that needs app:write: the signing secret lets its holder forge webhooks.
    ("GET", f"{ENDPOINT}/secret"): APP_WRITE,
    ("POST", f"{ENDPOINT}/secret/rotate"): APP_WRITE,
    ("POST", f"{ENDPOINT}/pause"): APP_WRITE,
    ("POST", f"{ENDPOINT}/resume"): APP_WRITE,
    ("POST", f"{ENDPOINT}/test"): APP_WRITE,
    ("POST", f"{APPS}/portal-access"): APP_WRITE,
    ("GET", f"{APPS}/events"): APP_READ,
    ("POST", f"{APPS}/events"): EVENTS_PUBLISH,
    ("GET", f"{APPS}/events/{{event_id}}"): APP_READ,
    ("POST", f"{APPS}/events/{{event_id}}/replay"): APP_WRITE,
    ("GET", f"{APPS}/deliveries"): APP_READ,
    ("GET", f"{APPS}/deliveries/{{delivery_id}}"): APP_READ,
    ("GET", f"{APPS}/deliveries/{{delivery_id}}/attempts"): APP_READ,
    ("POST", f"{APPS}/deliveries/{{delivery_id}}/replay"): APP_WRITE,
    ("POST", f"{APPS}/dead-letters/replay"): APP_WRITE,
    ("POST", "/v1/api-keys"): ADMIN,
    ("GET", "/v1/api-keys"): ADMIN,
    ("GET", "/v1/api-keys/{key_id}"): ADMIN,
    ("DELETE", "/v1/api-keys/{key_id}"): ADMIN,
    # The audit trail: an app-bound key reads its own application's entries only (api/routes/audit.py).
    ("GET", "/v1/audit-log"): APP_READ,
}


def required_scope(method: str, path: str) -> str | None:
    """The scope a route needs; None when the route is not classified (it is then refused)."""
    return ACCESS.get(("GET" if method == "HEAD" else method, path))


def app_routes(app: FastAPI) -> list[Any]:
    """Every route of the app, flat, each with its full path template and `matches`.

    Recent FastAPI versions keep an included router as one entry of `app.routes` and offer
    `iter_route_contexts` to see through it; before, `app.routes` was flat already.
    """
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def unclassified_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) of the app that ACCESS does not classify."""
    return [
        (method, route.path)
        for route in app_routes(app)
        for method in sorted(getattr(route, "methods", None) or ())
        if method != "HEAD" and required_scope(method, route.path) is None
    ]


@dataclass(frozen=True)
class Credential:
    """Who a request acts as: `id` is "admin" for the bootstrap token, else the API key's id."""

    id: str
    scopes: frozenset[str]
    app_id: str | None = None

    def may(self, scope: str) -> bool:
        return any(scope in _GRANTS[s] for s in self.scopes)


BOOTSTRAP_ADMIN = Credential(id="admin", scopes=frozenset({ADMIN}))


# --- the key format ------------------------------------------------------------------------------
# hlk_<28 hex: the key id's, for the lookup><32 base62: the secret><6 base62: CRC32 of the rest>.
# A fixed prefix and a checksum let secret scanners find leaked keys, and a mistyped key is refused
# without a database read.

KEY_PREFIX = "hlk_"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SECRET_LEN = 32
_CHECK_LEN = 6  # 62**6 > 2**32
_KEY_RE = re.compile(rf"{KEY_PREFIX}([0-9a-f]{{28}})([0-9A-Za-z]{{{_SECRET_LEN}}})([0-9A-Za-z]{{{_CHECK_LEN}}})")


def _base62(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, d = divmod(n, 62)
        digits.append(_BASE62[d])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LEN)


def new_key(key_id: str) -> str:
    """A fresh key for the id `key_<28 hex>`; shown once, never stored."""
    body = KEY_PREFIX + key_id.removeprefix("key_") + "".join(secrets.choice(_BASE62) for _ in range(_SECRET_LEN))
    return body + _checksum(body)


def key_prefix(key: str) -> str:
    """The part of a key that is not secret (prefix and lookup id): what lists show."""
    return key[: len(KEY_PREFIX) + 28]


def key_hash(key: str) -> str:
    # A key holds 190 random bits: a fast hash is enough, no salt or slow hash needed.
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id a well-formed key with a valid checksum names, else None."""
    m = _KEY_RE.fullmatch(token)
    if m is None or not hmac.compare_digest(_checksum(token[: -_CHECK_LEN]), m.group(3)):
        return None
    return f"key_{m.group(1)}"


# --- budgets -----------------------------------------------------------------------------------

def request_budget(settings: Settings) -> RateLimitItem | None:
    """Per credential: `burst` requests at once, `per_s` a second on average; None when off.

    A moving window of `burst` requests over burst/per_s seconds: a full burst empties it, and it
    refills at no more than per_s. A burst below the rate counts as the rate.
    """
    per_s, burst = settings.api_rate_limit_per_s, settings.api_rate_limit_burst
    if per_s == 0:
        return None
    burst = max(burst, per_s)
    return RateLimitItemPerSecond(burst, max(1, math.ceil(burst / per_s)))


class Gatekeeper:
    """Authentication, budgets and authorization for one API process (budgets are per process)."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._routes: list[Any] | None = None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.budget = request_budget(settings)
        per_min = settings.auth_failures_per_min
        self.failures = RateLimitItemPerMinute(per_min) if per_min > 0 else None

    async def check(self, request: Request) -> JSONResponse | None:
        """None to let the request through, else the refusal to send."""
        route, params = self._match(request)
        scope = required_scope(request.method, route.path) if route is not None else None
        if scope == PUBLIC or (route is None and not request.url.path.startswith("/v1")):
            return None
        credential = await self.authenticate(request)
        if credential is None:
            return self._failed_authentication(request)
        request.state.credential = credential
        request.state.credential_id = credential.id
        if self.budget is not None and not self.limiter.hit(self.budget, "credential", credential.id):
            return self._over_budget(self.budget, "credential", credential.id)
        if route is None:
            return None  # the router answers 404 or 405
        if scope is None:
            log.error("route %s %s has no access rule in api.auth.ACCESS: refused", request.method, route.path)
            return _refuse(status.HTTP_403_FORBIDDEN, "this route has no access rule; it is refused to everyone")
        app_id = params.get("app_id")
        if credential.app_id is not None and app_id is not None and app_id != credential.app_id:
            return _refuse(status.HTTP_404_NOT_FOUND, f"application {app_id} not found")
        if not credential.may(scope):
            return _refuse(status.HTTP_403_FORBIDDEN, f"this credential lacks the {scope} scope this route needs")
        return None

    async def middleware(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """The check as HTTP middleware: it runs before the body is parsed, so an unauthenticated or
        unauthorized caller learns nothing from a 422 (see `check` for the order of the checks)."""
        refusal = await self.check(request)
        return refusal if refusal is not None else await call_next(request)

    def _match(self, request: Request) -> tuple[Any, dict]:
        if self._routes is None:  # routes are all added once the app serves
            self._routes = app_routes(self.app)
        for route in self._routes:
            match, child = route.matches(request.scope)
            if match == Match.FULL:
                return route, child.get("path_params", {})
        return None, {}

    async def authenticate(self, request: Request) -> Credential | None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        admin = self.settings.admin_token
        if admin is not None and secrets.compare_digest(token.encode(), admin.encode()):
            return BOOTSTRAP_ADMIN
        key_id = key_id_of(token)
        if key_id is None:
            return None
        return await self._key_credential(request, key_id, token)

    async def _key_credential(self, request: Request, key_id: str, token: str) -> Credential | None:
        # Read on every request, never cached: a revoked key is refused from the next request on,
        # by every API process.
        async with request.app.state.sessions() as session:
            row = await keys.key_for_auth(session, key_id=key_id)
            now = utcnow()
            if row is None or not hmac.compare_digest(row.key_hash, key_hash(token)):
                return None
            if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
                return None
            if row.last_used_at is None or now - row.last_used_at >= keys.LAST_USED_EVERY:
                await keys.touch_last_used(session, key_id=key_id, now=now)
        return Credential(id=row.id, scopes=frozenset(row.scopes), app_id=row.app_id)

    def _failed_authentication(self, request: Request) -> JSONResponse:
        address = request.client.host if request.client else "unknown"
        if self.failures is not None and not self.limiter.hit(self.failures, "auth-failures", address):
            return self._over_budget(self.failures, "auth-failures", address, detail="too many failed authentications")
        return _refuse(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})

    def _over_budget(
        self, item: RateLimitItem, *identifiers: str, detail: str = "request budget exceeded, slow down"
    ) -> JSONResponse:
        reset_at = self.limiter.get_window_stats(item, *identifiers).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return _refuse(status.HTTP_429_TOO_MANY_REQUESTS, detail, {"Retry-After": str(retry_after)})


def _refuse(code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def credential_of(request: Request) -> Credential | None:
    return getattr(request.state, "credential", None)
