"""The authorization matrix: every route of the app, with every kind of credential, on the real API.

The routes come from the FastAPI app itself, so a route added without an access rule in
api.auth.ACCESS fails here, as does any cell that answers otherwise than its scope says.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from hookline.api.auth import (
    APP_READ, APP_WRITE, EVENTS_PUBLISH, PUBLIC, Credential, app_routes, required_scope, unclassified_routes,
)
from hookline.api.main import create_app
from hookline.core.config import Settings
from tests.harness import ApiClient, Receiver

ISOLATION = "404 for another application's resources"


def all_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(admin_token="x"))
    return sorted(
        {(m, r.path) for r in app_routes(app) for m in (getattr(r, "methods", None) or ()) if m != "HEAD"},
        # The application A itself goes last: the matrix runs on its resources.
        key=lambda mp: (mp == ("DELETE", "/v1/apps/{app_id}"), mp[1], mp[0]),
    )


def test_every_route_is_classified() -> None:
    assert unclassified_routes(create_app(Settings(admin_token="x"))) == []
    assert len(all_routes()) >= 30


def test_an_unclassified_route_is_reported() -> None:
    from fastapi import APIRouter

    app = create_app(Settings(admin_token="x"))
    router = APIRouter()
    router.get("/v1/apps/{app_id}/new-thing")(lambda app_id: {})
    app.include_router(router)
    assert unclassified_routes(app) == [("GET", "/v1/apps/{app_id}/new-thing")]


# Minimal valid bodies; a route not listed gets none (a 422 still counts as "let in").
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/apps"): lambda: {"name": "matrix"},
    ("PATCH", "/v1/apps/{app_id}"): lambda: {"name": "matrix"},
    ("POST", "/v1/event-types"): lambda: {"name": f"matrix.{uuid.uuid4().hex[:8]}"},
    ("PATCH", "/v1/event-types/{name}"): lambda: {"description": "matrix"},
    ("POST", "/v1/apps/{app_id}/endpoints"): lambda: {"url": "http://127.0.0.1:9/matrix"},
    ("PATCH", "/v1/apps/{app_id}/endpoints/{endpoint_id}"): lambda: {"description": "matrix"},
    ("POST", "/v1/apps/{app_id}/events"): lambda: {"type": "matrix.test", "data": {}},
    ("POST", "/v1/api-keys"): lambda: {"name": "matrix", "scopes": ["admin"]},
}


@dataclass
class Tenant:
    app_id: str
    endpoint_id: str
    event_id: str
    delivery_id: str


async def tenant(api: ApiClient, receiver: Receiver, path: str) -> Tenant:
    app_id = await api.create_app("matrix")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    event = await api.publish(app_id, "matrix.test", {})
    done = await api.wait_event(app_id, event["id"])
    return Tenant(app_id, endpoint["id"], event["id"], done["deliveries"][0]["id"])


async def make_key(api: ApiClient, scopes: list[str], app_id: str | None, **extra: Any) -> dict:
    r = await api.http.post("/v1/api-keys", json={"name": "matrix", "scopes": scopes, "app_id": app_id, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def expected(credential: str, scope: str, app_bound: Credential | None, url_app: str | None) -> str:
    """'401', '403', ISOLATION or 'allowed' for one cell."""
    if scope == PUBLIC:
        return "allowed"
    if credential in ("none", "wrong", "expired", "revoked"):
        return "401"
    if app_bound is None:
        return "allowed"  # admin
    if url_app is not None and url_app != app_bound.app_id:
        return ISOLATION
    return "allowed" if app_bound.may(scope) else "403"


async def victim(api: ApiClient, method: str, template: str, ids: dict[str, str]) -> dict[str, str]:
    """A DELETE that is let in destroys: give it a resource of its own."""
    if method != "DELETE":
        return ids
    last = re.findall(r"\{(\w+)\}", template)[-1]
    if last == "endpoint_id":
        return {**ids, "endpoint_id": (await api.create_endpoint(ids["app_id"], "http://127.0.0.1:9/victim"))["id"]}
    if last == "name":
        name = f"victim.{uuid.uuid4().hex[:8]}"
        assert (await api.http.post("/v1/event-types", json={"name": name})).status_code == 201
        return {**ids, "name": name}
    if last == "key_id":
        return {**ids, "key_id": (await make_key(api, ["admin"], None))["id"]}
    return ids  # the application itself: its DELETE runs last


async def test_authorization_matrix(api: ApiClient, receiver: Receiver, path: str) -> None:
    a = await tenant(api, receiver, path)
    b = await tenant(api, receiver, path)
    event_type = f"matrix.{uuid.uuid4().hex[:8]}"
    assert (await api.http.post("/v1/event-types", json={"name": event_type})).status_code == 201

    keys = {
        "app:read": await make_key(api, [APP_READ], a.app_id),
        "app:write": await make_key(api, [APP_WRITE], a.app_id),
        "events:publish": await make_key(api, [EVENTS_PUBLISH], a.app_id),
        "other-app": await make_key(api, [APP_WRITE], b.app_id),
    }
    soon = datetime.now(timezone.utc) + timedelta(seconds=2)
    expired = await make_key(api, [APP_WRITE], a.app_id, expires_at=soon.isoformat())
    revoked = await make_key(api, [APP_WRITE], a.app_id)
    assert (await api.http.delete(f"/v1/api-keys/{revoked['id']}")).status_code == 204
    spare_key = await make_key(api, [APP_READ], a.app_id)

    tokens: dict[str, str | None] = {
        "none": None,
        "wrong": "hlk_" + "0" * 66,
        "expired": expired["key"],
        "revoked": revoked["key"],
        "admin": api.http.headers["authorization"].removeprefix("Bearer "),
        **{name: key["key"] for name, key in keys.items()},
    }
    bound = {name: Credential(key["id"], frozenset(key["scopes"]), key["app_id"]) for name, key in keys.items()}
    ids = {
        "app_id": a.app_id, "endpoint_id": a.endpoint_id, "event_id": a.event_id, "delivery_id": a.delivery_id,
        "name": event_type, "key_id": spare_key["id"], "version": "v1",
    }
    await asyncio.sleep(max(0.0, (soon - datetime.now(timezone.utc)).total_seconds()) + 0.1)

    failures: list[str] = []
    base = str(api.http.base_url)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for method, template in all_routes():
            scope = required_scope(method, template)
            assert scope is not None, f"{method} {template} has no access rule"
            # Admin last: a DELETE it is let into must not take the resource from the cells after it.
            for credential in sorted(tokens, key=lambda c: c == "admin"):
                want = expected(credential, scope, bound.get(credential), a.app_id if "{app_id}" in template else None)
                cell_ids = await victim(api, method, template, ids) if want == "allowed" else ids
                url = template.format(**cell_ids)
                body = BODIES.get((method, template))
                token = tokens[credential]
                headers = {"authorization": f"Bearer {token}"} if token else {}
                r = await client.request(method, url, json=body() if body else None, headers=headers)
                got = r.status_code
                ok = {
                    "401": got == 401,
                    "403": got == 403,
                    ISOLATION: got == 404,
                    "allowed": got not in (401, 403, 404, 429) and got < 500,
                }[want]
                if not ok:
                    failures.append(f"{method} {template} as {credential}: want {want}, got {got} {r.text[:200]}")
    assert not failures, "\n".join(failures)
