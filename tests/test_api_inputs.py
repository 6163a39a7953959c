"""Bad input gets a clear 4xx and changes nothing.

Every input the HTTP API takes — body fields, path ids, query parameters, the Idempotency-Key
and Authorization headers — is tried with malformed, oversized and hostile values against the
real API process. Each test checks the status code, that the error is JSON with a readable
`detail`, and that the store reads back exactly as before.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.harness import FAST_RETRY, TOKEN, ApiClient, Receiver

MAX_BODY = 256 * 1024


# --- helpers -------------------------------------------------------------------------------------

def assert_error(r: httpx.Response, status: int) -> dict:
    """`status`, a JSON body, and a human-readable string `detail`."""
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:500]}"
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    return body


async def get_ok(api: ApiClient, url: str, **params: Any) -> Any:
    r = await api.http.get(url, params=params or None)
    assert r.status_code == 200, f"GET {url} -> {r.status_code} {r.text[:300]}"
    return r.json()


async def newest_app(api: ApiClient) -> str | None:
    data = (await get_ok(api, "/v1/apps", limit=1))["data"]
    return data[0]["id"] if data else None


async def newest_event_type(api: ApiClient) -> str | None:
    data = (await get_ok(api, "/v1/event-types", limit=1))["data"]
    return data[0]["name"] if data else None


async def snapshot(api: ApiClient, app_id: str) -> dict:
    """Everything the application owns, as the API reads it back (secrets included)."""
    endpoints = await api.every(f"/v1/apps/{app_id}/endpoints")
    events = await api.every(f"/v1/apps/{app_id}/events")
    deliveries = await api.every(f"/v1/apps/{app_id}/deliveries")
    return {
        "app": await get_ok(api, f"/v1/apps/{app_id}"),
        "endpoints": endpoints,
        "secrets": {ep["id"]: await api.secret(app_id, ep["id"]) for ep in endpoints},
        "events": [await api.event(app_id, e["id"]) for e in events],
        "deliveries": deliveries,
        "attempts": {d["id"]: await api.attempts(app_id, d["id"]) for d in deliveries},
    }


def b64secret(n: int) -> str:
    return "whsec_" + base64.b64encode(bytes(range(n))).decode()


@dataclass
class World:
    """An application with one endpoint and one delivered event, plus an event type."""

    app_id: str
    endpoint: dict
    event: dict
    delivery: dict
    event_type: str
    path: str

    def fill(self, template: str) -> str:
        return template.format(
            app=self.app_id, ep=self.endpoint["id"], evt=self.event["id"], dlv=self.delivery["id"], etype=self.event_type
        )


async def make_world(api: ApiClient, receiver: Receiver, path: str) -> World:
    event_type = f"t{uuid.uuid4().hex[:8]}.created"
    r = await api.http.post("/v1/event-types", json={"name": event_type, "description": "original"})
    assert r.status_code == 201, r.text
    app_id = await api.create_app("world")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    event = await api.publish(app_id, event_type, {"n": 1})
    done = await api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "succeeded"
    return World(app_id, endpoint, event, delivery, event_type, path)


def anonymous(api: ApiClient, authorization: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.AsyncClient(base_url=str(api.http.base_url), headers=headers, timeout=30)


# --- authentication ------------------------------------------------------------------------------

# Every /v1 route, each with a body that would succeed (and change something) if the caller got in.
V1_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/apps", None),
    ("POST", "/v1/apps", {"name": "intruder"}),
    ("GET", "/v1/apps/{app}", None),
    ("PATCH", "/v1/apps/{app}", {"name": "hacked"}),
    ("DELETE", "/v1/apps/{app}", None),
    ("GET", "/v1/event-types", None),
    ("POST", "/v1/event-types", {"name": "intruder.created"}),
    ("GET", "/v1/event-types/{etype}", None),
    ("PATCH", "/v1/event-types/{etype}", {"description": "hacked"}),
    ("DELETE", "/v1/event-types/{etype}", None),
    ("GET", "/v1/apps/{app}/endpoints", None),
    ("POST", "/v1/apps/{app}/endpoints", {"url": "https://attacker.example/hook"}),
    ("GET", "/v1/apps/{app}/endpoints/{ep}", None),
    ("PATCH", "/v1/apps/{app}/endpoints/{ep}", {"url": "https://attacker.example/hook"}),
    ("DELETE", "/v1/apps/{app}/endpoints/{ep}", None),
    ("GET", "/v1/apps/{app}/endpoints/{ep}/secret", None),
    ("POST", "/v1/apps/{app}/endpoints/{ep}/secret/rotate", None),
    ("POST", "/v1/apps/{app}/endpoints/{ep}/pause", None),
    ("POST", "/v1/apps/{app}/endpoints/{ep}/resume", None),
    ("GET", "/v1/apps/{app}/events", None),
    ("POST", "/v1/apps/{app}/events", {"type": "invoice.paid", "data": {"n": 2}}),
    ("GET", "/v1/apps/{app}/events/{evt}", None),
    ("POST", "/v1/apps/{app}/events/{evt}/replay", None),
    ("GET", "/v1/apps/{app}/deliveries", None),
    ("GET", "/v1/apps/{app}/deliveries/{dlv}", None),
    ("GET", "/v1/apps/{app}/deliveries/{dlv}/attempts", None),
    ("POST", "/v1/apps/{app}/deliveries/{dlv}/replay", None),
    ("POST", "/v1/apps/{app}/dead-letters/replay", None),
    ("GET", "/v1/no-such-route", None),
]

BAD_CREDENTIALS = {
    "missing": None,
    "wrong-token": "Bearer not-the-token",
    "token-prefix": f"Bearer {TOKEN[:-1]}",
    "token-with-suffix": f"Bearer {TOKEN}x",
    "basic-scheme": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode(),
    "token-scheme": f"Token {TOKEN}",
    "no-scheme": TOKEN,
    "bearer-without-token": "Bearer",
    "empty-header": "",
    "huge-token": "Bearer " + "x" * 6000,
}


async def test_healthz_needs_no_auth(api: ApiClient) -> None:
    async with anonymous(api) as client:
        r = await client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await client.get("/healthz", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 200


@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS), ids=list(BAD_CREDENTIALS))
async def test_every_v1_route_refuses_bad_credentials_and_changes_nothing(
    api: ApiClient, receiver: Receiver, path: str, credential: str
) -> None:
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    app_before = await newest_app(api)
    etype_before = await get_ok(api, f"/v1/event-types/{world.event_type}")
    hits_before = len(receiver.at(path))

    async with anonymous(api, BAD_CREDENTIALS[credential]) as client:
        for method, template, body in V1_ROUTES:
            r = await client.request(method, world.fill(template), json=body)
            assert_error(r, 401)
            assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), (method, template)
            assert "secret" not in r.json()

    assert await snapshot(api, world.app_id) == before
    assert await newest_app(api) == app_before
    assert await get_ok(api, f"/v1/event-types/{world.event_type}") == etype_before
    assert (await api.http.get("/v1/event-types/intruder.created")).status_code == 404
    assert len(receiver.at(path)) == hits_before  # no replay went out


async def test_unauthenticated_malformed_or_invalid_body_gets_401_not_422(api: ApiClient) -> None:
    app_id = await api.create_app()
    before = await newest_app(api)
    async with anonymous(api) as client:
        for url, content in [
            ("/v1/apps", b'{"name": '),
            ("/v1/apps", b'{"name": "x", "unknown": 1}'),
            (f"/v1/apps/{app_id}/endpoints", b'{"url": "ftp://x"}'),
            (f"/v1/apps/{app_id}/events", b"not json at all"),
            ("/v1/event-types", b'{"name": "has space"}'),
        ]:
            r = await client.post(url, content=content, headers={"content-type": "application/json"})
            assert_error(r, 401)
            assert "errors" not in r.json()  # no validation detail leaks to a stranger
    assert await newest_app(api) == before
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []


async def test_bearer_scheme_is_case_insensitive_but_token_is_exact(api: ApiClient) -> None:
    async with anonymous(api, f"bearer {TOKEN}") as client:
        assert (await client.get("/v1/apps", params={"limit": 1})).status_code == 200
    async with anonymous(api, f"Bearer {TOKEN.upper()}") as client:
        assert_error(await client.get("/v1/apps"), 401)


# --- malformed bodies ----------------------------------------------------------------------------

async def test_malformed_json_is_422_on_every_body_route(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    app_before = await newest_app(api)
    etype_before = await newest_event_type(api)
    routes = [
        ("POST", "/v1/apps"),
        ("PATCH", "/v1/apps/{app}"),
        ("POST", "/v1/event-types"),
        ("PATCH", "/v1/event-types/{etype}"),
        ("POST", "/v1/apps/{app}/endpoints"),
        ("PATCH", "/v1/apps/{app}/endpoints/{ep}"),
        ("POST", "/v1/apps/{app}/endpoints/{ep}/secret/rotate"),
        ("POST", "/v1/apps/{app}/events"),
        ("POST", "/v1/apps/{app}/events/{evt}/replay"),
        ("POST", "/v1/apps/{app}/dead-letters/replay"),
    ]
    bad_bodies = [b'{"name": ', b"{'name': 'x'}", b"{name: 1}", b'{"a": 1,}', b"not json", b"\xff\xfe{}", b"{}}"]
    for method, template in routes:
        for content in bad_bodies:
            r = await api.http.request(
                method, world.fill(template), content=content, headers={"content-type": "application/json"}
            )
            assert_error(r, 422)
    assert await snapshot(api, world.app_id) == before
    assert await newest_app(api) == app_before
    assert await newest_event_type(api) == etype_before
    assert (await get_ok(api, f"/v1/event-types/{world.event_type}"))["description"] == "original"


@pytest.mark.parametrize("body", [[], ["name"], "app", 5, None, True], ids=["list", "list-of-str", "str", "int", "null", "bool"])
async def test_body_that_is_not_an_object_is_422(api: ApiClient, body: Any) -> None:
    app_id = await api.create_app()
    before = await newest_app(api)
    for url in ("/v1/apps", f"/v1/apps/{app_id}/endpoints", f"/v1/apps/{app_id}/events", "/v1/event-types"):
        assert_error(await api.http.post(url, json=body), 422)
    assert_error(await api.http.patch(f"/v1/apps/{app_id}", json=body if body is not None else []), 422)
    assert await newest_app(api) == before
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []


async def test_missing_or_empty_body_is_422_where_a_body_is_required(api: ApiClient) -> None:
    app_id = await api.create_app()
    before = await newest_app(api)
    for url in ("/v1/apps", f"/v1/apps/{app_id}/endpoints", f"/v1/apps/{app_id}/events", "/v1/event-types"):
        assert_error(await api.http.post(url), 422)
        assert_error(await api.http.post(url, json={}), 422)
        assert_error(await api.http.post(url, content=b"", headers={"content-type": "application/json"}), 422)
    assert await newest_app(api) == before
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []


async def test_unknown_fields_are_422_on_every_body(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    app_before = await newest_app(api)
    etype_before = await newest_event_type(api)
    url = receiver.url(path)
    cases = [
        ("POST", "/v1/apps", {"name": "x", "id": "app_chosen"}),
        ("POST", "/v1/apps", {"name": "x", "created_at": "2000-01-01T00:00:00Z"}),
        ("PATCH", "/v1/apps/{app}", {"name": "renamed", "id": "app_other"}),
        ("PATCH", "/v1/apps/{app}", {"nmae": "typo"}),
        ("POST", "/v1/event-types", {"name": "fresh.type", "json_schema": {}}),
        ("POST", "/v1/event-types", {"name": "fresh.type", "schema_": {}}),
        ("PATCH", "/v1/event-types/{etype}", {"name": "renamed.type"}),
        ("PATCH", "/v1/event-types/{etype}", {"description": "changed", "extra": 1}),
        ("POST", "/v1/apps/{app}/endpoints", {"url": url, "status": "active"}),
        ("POST", "/v1/apps/{app}/endpoints", {"url": url, "app_id": "app_other"}),
        ("POST", "/v1/apps/{app}/endpoints", {"url": url, "eventTypes": ["a"]}),
        # A typo inside the retry override must not be silently dropped.
        ("POST", "/v1/apps/{app}/endpoints", {"url": url, "retry": {"max_atempts": 2}}),
        ("PATCH", "/v1/apps/{app}/endpoints/{ep}", {"retry": {"max_attempts": 2, "jitter": True}}),
        ("PATCH", "/v1/apps/{app}/endpoints/{ep}", {"secret": b64secret(32)}),
        ("PATCH", "/v1/apps/{app}/endpoints/{ep}", {"app_id": "app_other"}),
        ("POST", "/v1/apps/{app}/endpoints/{ep}/secret/rotate", {"secret": b64secret(32), "grace_s": 0}),
        ("POST", "/v1/apps/{app}/events", {"type": "invoice.paid", "data": {}, "id": "evt_chosen"}),
        ("POST", "/v1/apps/{app}/events", {"type": "invoice.paid", "data": {}, "idempotency_key": "k"}),
        ("POST", "/v1/apps/{app}/events/{evt}/replay", {"endpoint": "{ep}"}),
        ("POST", "/v1/apps/{app}/dead-letters/replay", {"endpoint": "{ep}"}),
    ]
    for method, template, body in cases:
        if isinstance(body, dict):
            body = {k: world.fill(v) if isinstance(v, str) else v for k, v in body.items()}
        assert_error(await api.http.request(method, world.fill(template), json=body), 422)
    assert await snapshot(api, world.app_id) == before
    assert await newest_app(api) == app_before
    assert await newest_event_type(api) == etype_before
    assert (await api.http.get("/v1/event-types/fresh.type")).status_code == 404
    assert (await get_ok(api, f"/v1/event-types/{world.event_type}"))["description"] == "original"


# --- applications --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 257, 5, None, ["acme"], {"n": "acme"}, True],
    ids=["empty", "blank", "too-long", "int", "null", "list", "object", "bool"],
)
async def test_bad_app_name_is_422_and_creates_nothing(api: ApiClient, name: Any) -> None:
    app_id = await api.create_app("keep-me")
    before = await newest_app(api)
    assert_error(await api.http.post("/v1/apps", json={"name": name}), 422)
    assert await newest_app(api) == before
    if name is not None:  # null on PATCH means "leave as is"
        assert_error(await api.http.patch(f"/v1/apps/{app_id}", json={"name": name}), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}"))["name"] == "keep-me"


async def test_hostile_but_valid_app_names_round_trip_verbatim(api: ApiClient) -> None:
    for name in ["<script>alert(1)</script>", "Robert'); DROP TABLE applications;--", "名前 ✓ €", "x" * 256]:
        r = await api.http.post("/v1/apps", json={"name": name})
        assert r.status_code == 201, r.text
        assert (await get_ok(api, f"/v1/apps/{r.json()['id']}"))["name"] == name


async def test_lone_surrogate_in_a_string_is_refused_cleanly(api: ApiClient, receiver: Receiver, path: str) -> None:
    """`\\ud800` is legal JSON syntax but no Unicode text: a 422, not a crash after recording."""
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    before = await newest_app(api)
    json_ct = {"content-type": "application/json"}
    for body in [b'{"name": "a\\ud800b"}', b'{"name": "x", "\\ud800": 1}']:
        assert_error(await api.http.post("/v1/apps", content=body, headers=json_ct), 422)
    assert await newest_app(api) == before
    for data in [b'{"k": "\\udfff"}', b'{"\\udfff": 1}', b'{"k": [{"deep": "\\ud800"}]}']:
        r = await api.http.post(
            f"/v1/apps/{app_id}/events", content=b'{"type": "invoice.paid", "data": %s}' % data, headers=json_ct
        )
        assert_error(r, 422)
    name = f"t{uuid.uuid4().hex[:8]}.x"
    r = await api.http.post(
        "/v1/event-types", content=b'{"name": "%s", "schema": {"title": "\\ud800"}}' % name.encode(), headers=json_ct
    )
    assert_error(r, 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    assert receiver.at(path) == []


def nested(levels: int) -> dict:
    doc: dict = {"leaf": 1}
    for _ in range(levels - 1):
        doc = {"a": doc}
    return doc


async def test_nesting_too_deep_is_422_and_the_limit_round_trips(api: ApiClient, receiver: Receiver, path: str) -> None:
    """A document too deep to read back must be refused up front, not recorded, sent, and then 500 forever."""
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    for levels in (101, 300, 900):
        r = await api.http.post(f"/v1/apps/{app_id}/events", json={"type": "invoice.paid", "data": nested(levels)})
        assert_error(r, 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    name = f"t{uuid.uuid4().hex[:8]}.x"
    assert_error(await api.http.post("/v1/event-types", json={"name": name, "schema": nested(101)}), 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404
    assert receiver.at(path) == []

    deepest = nested(100)
    event = await api.publish(app_id, "invoice.paid", deepest)
    assert event["data"] == deepest
    done = await api.wait_event(app_id, event["id"])
    assert done["data"] == deepest and [d["status"] for d in done["deliveries"]] == ["succeeded"]
    assert [e["data"] for e in (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"]] == [deepest]
    [got] = receiver.at(path)
    assert got.json()["data"] == deepest


# --- endpoints -----------------------------------------------------------------------------------

BAD_URLS = {
    "ftp": "ftp://files.example.com/hook",
    "javascript": "javascript:alert(1)",
    "file": "file:///etc/passwd",
    "data": "data:text/plain,hello",
    "mailto": "mailto:ops@example.com",
    "ws": "ws://example.com/socket",
    "no-scheme": "example.com/hook",
    "scheme-relative": "//example.com/hook",
    "no-host": "http://",
    "just-scheme": "https:",
    "empty": "",
    "spaces": "   ",
    "overlong": "https://example.com/" + "a" * 2100,
    "not-a-string": 12345,
    "list": ["https://example.com"],
    "null": None,
}


@pytest.mark.parametrize("url", list(BAD_URLS.values()), ids=list(BAD_URLS))
async def test_endpoint_url_must_be_http_or_https(api: ApiClient, receiver: Receiver, path: str, url: Any) -> None:
    app_id = await api.create_app()
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
    assert_error(r, 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []

    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", json={"url": url})
    assert_error(r, 422)
    assert await get_ok(api, f"/v1/apps/{app_id}/endpoints/{endpoint['id']}") == endpoint


async def test_endpoint_url_at_the_length_limit_is_accepted(api: ApiClient) -> None:
    app_id = await api.create_app()
    url = "https://example.com/" + "a" * (2048 - len("https://example.com/"))
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
    assert r.status_code == 201, r.text
    assert r.json()["url"] == url


BAD_HEADERS = {
    "webhook-id": {"webhook-id": "msg_forged"},
    "webhook-signature": {"Webhook-Signature": "v1,forged"},
    "webhook-timestamp": {"WEBHOOK-TIMESTAMP": "0"},
    "content-type": {"Content-Type": "text/plain"},
    "host": {"Host": "internal.example"},
    "content-length": {"content-length": "0"},
    "transfer-encoding": {"Transfer-Encoding": "chunked"},
    "user-agent": {"User-Agent": "evil"},
    "name-with-space": {"X Bad": "v"},
    "name-with-colon": {"x-a:b": "v"},
    "empty-name": {"": "v"},
    "crlf-in-value": {"X-Inject": "v\r\nX-Evil: 1"},
    "lf-in-value": {"X-Inject": "v\nX-Evil: 1"},
    "nul-in-value": {"X-Inject": "v\x00"},
    "value-not-string": {"X-Count": 5},
    "value-too-long": {"X-Long": "v" * 4097},
    "name-too-long": {"X-" + "n" * 200: "v"},
    "too-many": {f"X-H{i}": "v" for i in range(21)},
    "not-an-object": ["X-A: b"],
}


@pytest.mark.parametrize("headers", list(BAD_HEADERS.values()), ids=list(BAD_HEADERS))
async def test_endpoint_headers_refuse_reserved_and_malformed(
    api: ApiClient, receiver: Receiver, path: str, headers: Any
) -> None:
    app_id = await api.create_app()
    url = receiver.url(path)
    assert_error(await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url, "headers": headers}), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []

    endpoint = await api.create_endpoint(app_id, url, headers={"X-Tenant": "acme"})
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", json={"headers": headers})
    assert_error(r, 422)
    assert await get_ok(api, f"/v1/apps/{app_id}/endpoints/{endpoint['id']}") == endpoint


BAD_SECRETS = {
    "no-prefix": base64.b64encode(bytes(32)).decode(),
    "prefix-only": "whsec_",
    "wrong-prefix": "whsk_" + base64.b64encode(bytes(32)).decode(),
    "not-base64": "whsec_" + "!" * 40,
    "base64-with-space": "whsec_" + base64.b64encode(bytes(32)).decode()[:20] + " " + "A" * 24,
    "too-short": b64secret(16),
    "too-long": b64secret(100),
    "huge": "whsec_" + "A" * 10_000,
    "int": 12345,
    "empty": "",
}


@pytest.mark.parametrize("secret", list(BAD_SECRETS.values()), ids=list(BAD_SECRETS))
async def test_bad_secret_is_422_on_create_and_rotate(api: ApiClient, receiver: Receiver, path: str, secret: Any) -> None:
    app_id = await api.create_app()
    url = receiver.url(path)
    assert_error(await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url, "secret": secret}), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []

    endpoint = await api.create_endpoint(app_id, url)
    old = await api.secret(app_id, endpoint["id"])
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret/rotate", json={"secret": secret})
    assert_error(r, 422)
    assert await api.secret(app_id, endpoint["id"]) == old


async def test_secret_at_the_size_limits_is_accepted(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    for n in (24, 64):
        endpoint = await api.create_endpoint(app_id, receiver.url(path), secret=b64secret(n))
        assert await api.secret(app_id, endpoint["id"]) == b64secret(n)


BAD_EVENT_TYPE_FILTERS = {
    "space": ["invoice paid"],
    "empty": [""],
    "dot-dot-slash": ["../x"],
    "slash": ["invoice/paid"],
    "leading-dot": [".invoice"],
    "trailing-dot": ["invoice."],
    "double-dot": ["invoice..paid"],
    "question-mark": ["invoice.?"],
    "newline": ["invoice\n.paid"],
    "too-long": ["a" * 257],
    "too-many": [f"t{i}" for i in range(101)],
    "not-a-list": "invoice.*",
    "number-in-list": [5],
    "null-in-list": [None],
}


@pytest.mark.parametrize("event_types", list(BAD_EVENT_TYPE_FILTERS.values()), ids=list(BAD_EVENT_TYPE_FILTERS))
async def test_bad_event_type_filters_are_422(api: ApiClient, receiver: Receiver, path: str, event_types: Any) -> None:
    app_id = await api.create_app()
    url = receiver.url(path)
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url, "event_types": event_types})
    assert_error(r, 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []

    endpoint = await api.create_endpoint(app_id, url, event_types=["invoice.*"])
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", json={"event_types": event_types})
    assert_error(r, 422)
    assert await get_ok(api, f"/v1/apps/{app_id}/endpoints/{endpoint['id']}") == endpoint


BAD_RETRIES = {
    "max-attempts-0": {"max_attempts": 0},
    "max-attempts-negative": {"max_attempts": -1},
    "max-attempts-101": {"max_attempts": 101},
    "max-attempts-fraction": {"max_attempts": 2.5},
    "max-attempts-str": {"max_attempts": "many"},
    "initial-0": {"initial_interval_s": 0},
    "initial-negative": {"initial_interval_s": -5},
    "initial-below-the-1s-floor": {"initial_interval_s": 0.5},
    "initial-over-a-day": {"initial_interval_s": 86401},
    "backoff-below-1": {"backoff_coefficient": 0.5},
    "backoff-over-10": {"backoff_coefficient": 11},
    "max-interval-0": {"max_interval_s": 0},
    "max-interval-over-a-week": {"max_interval_s": 7 * 86400 + 1},
    "unknown-field": {"max_atempts": 3},
    "not-an-object": "fast",
    "list": [3],
}


@pytest.mark.parametrize("retry", list(BAD_RETRIES.values()), ids=list(BAD_RETRIES))
async def test_retry_values_out_of_range_are_422(api: ApiClient, receiver: Receiver, path: str, retry: Any) -> None:
    app_id = await api.create_app()
    url = receiver.url(path)
    assert_error(await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url, "retry": retry}), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"] == []

    endpoint = await api.create_endpoint(app_id, url)  # FAST_RETRY
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", json={"retry": retry})
    assert_error(r, 422)
    got = await get_ok(api, f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")
    assert got == endpoint and got["retry"] == FAST_RETRY


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"], ids=["nan", "inf", "-inf", "overflow"]
)
async def test_non_finite_numbers_are_refused_everywhere(
    api: ApiClient, receiver: Receiver, path: str, literal: bytes
) -> None:
    """Python's JSON parser accepts NaN/Infinity (and 1e999 overflows to inf); JSON has no such numbers."""
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    json_ct = {"content-type": "application/json"}
    name = f"t{uuid.uuid4().hex[:8]}.x"

    r = await api.http.patch(
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", content=b'{"retry": {"max_interval_s": %s}}' % literal, headers=json_ct
    )
    assert_error(r, 422)
    assert await get_ok(api, f"/v1/apps/{app_id}/endpoints/{endpoint['id']}") == endpoint

    r = await api.http.post(
        f"/v1/apps/{app_id}/events", content=b'{"type": "invoice.paid", "data": {"amount": %s}}' % literal, headers=json_ct
    )
    assert_error(r, 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []

    r = await api.http.post(
        "/v1/event-types", content=b'{"name": "%s", "schema": {"maximum": %s}}' % (name.encode(), literal), headers=json_ct
    )
    assert_error(r, 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404
    assert receiver.at(path) == []


async def test_endpoint_patch_refuses_null_url_and_unknown_status(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    ep_url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    for body in [{"url": None}, {"status": "deleted"}, {"status": "PAUSED"}, {"status": ""}, {"status": 1},
                 {"description": "d" * 2049}, {"description": 5}, {"event_types": {"a": 1}}]:
        assert_error(await api.http.patch(ep_url, json=body), 422)
    assert await get_ok(api, ep_url) == endpoint
    assert_error(
        await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path), "description": "d" * 2049}), 422
    )
    assert [e["id"] for e in (await get_ok(api, f"/v1/apps/{app_id}/endpoints"))["data"]] == [endpoint["id"]]


# --- event types ---------------------------------------------------------------------------------

BAD_TYPE_NAMES = {
    "space": "invoice paid",
    "empty": "",
    "dot-dot-slash": "../x",
    "slash": "invoice/paid",
    "leading-dot": ".invoice",
    "trailing-dot": "invoice.",
    "double-dot": "invoice..paid",
    "wildcard": "invoice.*",
    "unicode": "facturé.payée",
    "newline": "invoice\npaid",
    "too-long": "a" * 257,
    "int": 42,
    "null": None,
    "list": ["invoice.paid"],
}


@pytest.mark.parametrize("name", list(BAD_TYPE_NAMES.values()), ids=list(BAD_TYPE_NAMES))
async def test_bad_event_type_name_is_422_on_register_and_publish(api: ApiClient, name: Any) -> None:
    before = await newest_event_type(api)
    assert_error(await api.http.post("/v1/event-types", json={"name": name}), 422)
    assert await newest_event_type(api) == before

    app_id = await api.create_app()
    assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {}}), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []


BAD_SCHEMAS = {
    "type-unknown": {"type": "nonsense"},
    "type-int": {"type": 5},
    "properties-not-object": {"properties": 5},
    "required-not-list": {"required": "amount"},
    "minimum-str": {"minimum": "zero"},
    "nested-bad": {"type": "object", "properties": {"amount": {"type": "money"}}},
    "list": [{"type": "object"}],
    "str": "object",
    "bool": True,
}


@pytest.mark.parametrize("schema", list(BAD_SCHEMAS.values()), ids=list(BAD_SCHEMAS))
async def test_invalid_json_schema_is_422_and_registers_nothing(api: ApiClient, schema: Any) -> None:
    name = f"t{uuid.uuid4().hex[:8]}.created"
    assert_error(await api.http.post("/v1/event-types", json={"name": name, "schema": schema}), 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404

    good = {"type": "object", "required": ["n"]}
    r = await api.http.post("/v1/event-types", json={"name": name, "description": "d", "schema": good})
    assert r.status_code == 201, r.text
    before = await get_ok(api, f"/v1/event-types/{name}")
    assert_error(await api.http.patch(f"/v1/event-types/{name}", json={"schema": schema, "description": "changed"}), 422)
    assert await get_ok(api, f"/v1/event-types/{name}") == before


async def test_duplicate_event_type_is_409_and_keeps_the_original(api: ApiClient) -> None:
    name = f"t{uuid.uuid4().hex[:8]}.created"
    schema = {"type": "object"}
    r = await api.http.post("/v1/event-types", json={"name": name, "description": "first", "schema": schema})
    assert r.status_code == 201, r.text
    before = await get_ok(api, f"/v1/event-types/{name}")
    r = await api.http.post("/v1/event-types", json={"name": name, "description": "second", "schema": {"type": "array"}})
    body = assert_error(r, 409)
    assert name in body["detail"]
    assert await get_ok(api, f"/v1/event-types/{name}") == before
    assert [t["name"] for t in await api.every("/v1/event-types")].count(name) == 1


async def test_event_type_description_too_long_is_422(api: ApiClient) -> None:
    name = f"t{uuid.uuid4().hex[:8]}.created"
    assert_error(await api.http.post("/v1/event-types", json={"name": name, "description": "d" * 2049}), 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404
    assert (await api.http.post("/v1/event-types", json={"name": name, "description": "ok"})).status_code == 201
    assert_error(await api.http.patch(f"/v1/event-types/{name}", json={"description": "d" * 2049}), 422)
    assert_error(await api.http.patch(f"/v1/event-types/{name}", json={"description": 7}), 422)
    assert (await get_ok(api, f"/v1/event-types/{name}"))["description"] == "ok"


# --- events --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "body",
    [
        {"type": "invoice.paid", "data": [1, 2]},
        {"type": "invoice.paid", "data": "paid"},
        {"type": "invoice.paid", "data": 5},
        {"type": "invoice.paid", "data": None},
        {"type": "invoice.paid", "data": True},
        {"type": "invoice.paid"},
        {"data": {"n": 1}},
        {"type": "invoice.paid", "data": {"n": 1}, "extra": True},
    ],
    ids=["list", "str", "int", "null", "bool", "no-data", "no-type", "extra"],
)
async def test_event_data_must_be_an_object(api: ApiClient, receiver: Receiver, path: str, body: dict) -> None:
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json=body), 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    assert (await get_ok(api, f"/v1/apps/{app_id}/deliveries"))["data"] == []
    assert receiver.at(path) == []


@pytest.mark.parametrize("key", ["k" * 257, "k" * 5000, ""], ids=["257", "5000", "empty"])
async def test_bad_idempotency_key_is_422_and_publishes_nothing(
    api: ApiClient, receiver: Receiver, path: str, key: str
) -> None:
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    r = await api.http.post(
        f"/v1/apps/{app_id}/events", json={"type": "invoice.paid", "data": {}}, headers={"idempotency-key": key}
    )
    assert_error(r, 422)
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    assert receiver.at(path) == []


async def test_idempotency_key_at_the_limit_is_accepted(api: ApiClient) -> None:
    app_id = await api.create_app()
    first = await api.publish(app_id, "invoice.paid", {"n": 1}, key="k" * 256)
    again = await api.publish(app_id, "invoice.paid", {"n": 1}, key="k" * 256)
    assert again["id"] == first["id"] and first["idempotency_key"] == "k" * 256


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_limit_is_413_and_changes_nothing(
    api: ApiClient, receiver: Receiver, path: str, chunked: bool
) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    ep_url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    before = await newest_app(api)
    pad = b"x" * (MAX_BODY + 1)
    cases = [
        ("POST", f"/v1/apps/{app_id}/events", event_body(MAX_BODY + 1)),
        ("POST", "/v1/apps", b'{"name": "%s"}' % pad),
        ("PATCH", ep_url, b'{"description": "%s"}' % pad),
        # Routes that take no body must not act on an oversized one either.
        ("POST", f"{ep_url}/pause", b" " * (MAX_BODY + 1)),
        ("DELETE", ep_url, b" " * (MAX_BODY + 1)),
    ]
    for method, url, payload in cases:
        body = assert_error(await send_body(api, method, url, payload, chunked), 413)
        assert str(MAX_BODY) in body["detail"]
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    assert await newest_app(api) == before
    assert await get_ok(api, ep_url) == endpoint and endpoint["status"] == "active"
    assert receiver.at(path) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_just_under_the_limit_is_accepted(
    api: ApiClient, receiver: Receiver, path: str, chunked: bool
) -> None:
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    payload = event_body(MAX_BODY)
    r = await send_body(api, "POST", f"/v1/apps/{app_id}/events", payload, chunked)
    assert r.status_code == 202, r.text[:300]
    done = await api.wait_event(app_id, r.json()["id"])
    assert done["data"] == json.loads(payload)["data"]
    [got] = receiver.at(path)
    assert got.json()["data"] == done["data"]


def event_body(size: int) -> bytes:
    """A publish body of exactly `size` bytes."""
    envelope = b'{"type": "invoice.paid", "data": {"blob": "%s"}}'
    body = envelope % (b"x" * (size - len(envelope % b"")))
    assert len(body) == size
    return body


async def _chunks(payload: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(payload), size):
        yield payload[i : i + size]


async def send_body(api: ApiClient, method: str, url: str, payload: bytes, chunked: bool) -> httpx.Response:
    """A raw JSON body, with a content-length or chunked (no length declared up front)."""
    content = _chunks(payload) if chunked else payload
    request = api.http.build_request(method, url, content=content, headers={"content-type": "application/json"})
    assert ("content-length" not in request.headers) == chunked
    assert (request.headers.get("transfer-encoding") == "chunked") == chunked
    return await api.http.send(request)


# --- unknown ids and tenant isolation ------------------------------------------------------------

async def test_unknown_ids_are_404_on_every_route(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    app_before = await newest_app(api)
    hits_before = len(receiver.at(path))
    a, ep, evt, dlv = world.app_id, world.endpoint["id"], world.event["id"], world.delivery["id"]
    # Well-formed but unknown: 404. (A malformed endpoint, event or delivery id is 422: see below.)
    ghost_app, ghost_ep, ghost_evt, ghost_dlv = (f"{kind}_{'0' * 28}" for kind in ("app", "ep", "evt", "dlv"))
    cases: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/apps/{ghost_app}", None),
        ("PATCH", f"/v1/apps/{ghost_app}", {"name": "x"}),
        ("DELETE", f"/v1/apps/{ghost_app}", None),
        ("GET", f"/v1/apps/{ghost_app}/endpoints", None),
        ("POST", f"/v1/apps/{ghost_app}/endpoints", {"url": receiver.url(path)}),
        ("GET", f"/v1/apps/{ghost_app}/events", None),
        ("POST", f"/v1/apps/{ghost_app}/events", {"type": "invoice.paid", "data": {}}),
        ("GET", f"/v1/apps/{ghost_app}/deliveries", None),
        ("POST", f"/v1/apps/{ghost_app}/dead-letters/replay", None),
        ("GET", f"/v1/apps/{ghost_app}/endpoints/{ep}", None),
        ("GET", f"/v1/apps/{ghost_app}/events/{evt}", None),
        ("GET", f"/v1/apps/{ghost_app}/deliveries/{dlv}", None),
        ("GET", f"/v1/apps/{a}/endpoints/{ghost_ep}", None),
        ("PATCH", f"/v1/apps/{a}/endpoints/{ghost_ep}", {"description": "x"}),
        ("DELETE", f"/v1/apps/{a}/endpoints/{ghost_ep}", None),
        ("GET", f"/v1/apps/{a}/endpoints/{ghost_ep}/secret", None),
        ("POST", f"/v1/apps/{a}/endpoints/{ghost_ep}/secret/rotate", None),
        ("POST", f"/v1/apps/{a}/endpoints/{ghost_ep}/pause", None),
        ("POST", f"/v1/apps/{a}/endpoints/{ghost_ep}/resume", None),
        ("GET", f"/v1/apps/{a}/events/{ghost_evt}", None),
        ("POST", f"/v1/apps/{a}/events/{ghost_evt}/replay", None),
        ("POST", f"/v1/apps/{a}/events/{evt}/replay", {"endpoint_id": ghost_ep}),
        ("GET", f"/v1/apps/{a}/deliveries/{ghost_dlv}", None),
        ("GET", f"/v1/apps/{a}/deliveries/{ghost_dlv}/attempts", None),
        ("POST", f"/v1/apps/{a}/deliveries/{ghost_dlv}/replay", None),
        ("POST", f"/v1/apps/{a}/dead-letters/replay", {"endpoint_id": ghost_ep}),
        ("GET", "/v1/event-types/no.such.type", None),
        ("PATCH", "/v1/event-types/no.such.type", {"description": "x"}),
        ("DELETE", "/v1/event-types/no.such.type", None),
        # An id of another kind, or a hostile one, where an application id goes.
        ("GET", f"/v1/apps/{ep}", None),
        ("GET", f"/v1/apps/{'a' * 5000}", None),
        ("GET", "/v1/apps/%00", None),
    ]
    # Endpoint, event and delivery ids have a documented format (OpenAPI `pattern`): anything else is 422.
    malformed: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/apps/{a}/endpoints/ep_nope", None),
        ("PATCH", f"/v1/apps/{a}/endpoints/ep_nope", {"description": "x"}),
        ("POST", f"/v1/apps/{a}/events/evt_nope/replay", None),
        ("POST", f"/v1/apps/{a}/deliveries/dlv_nope/replay", None),
        ("GET", f"/v1/apps/{a}/endpoints/{evt}", None),
        ("GET", f"/v1/apps/{a}/events/{dlv}", None),
        ("GET", f"/v1/apps/{a}/deliveries/{evt}", None),
        ("GET", f"/v1/apps/{a}/endpoints/%27%20OR%20%271%27=%271", None),
        ("GET", f"/v1/apps/{a}/events/{'e' * 5000}", None),
    ]
    for method, url, body in cases:
        assert_error(await api.http.request(method, url, json=body), 404)
    for method, url, body in malformed:
        assert_error(await api.http.request(method, url, json=body), 422)
    assert await snapshot(api, world.app_id) == before
    assert await newest_app(api) == app_before
    assert len(receiver.at(path)) == hits_before


async def test_ids_of_another_application_are_404(api: ApiClient, receiver: Receiver, path: str) -> None:
    """Tenant isolation: app B cannot read, change, replay or delete what belongs to app A."""
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    intruder = await api.create_app("intruder")
    hits_before = len(receiver.at(path))
    b, ep, evt, dlv = intruder, world.endpoint["id"], world.event["id"], world.delivery["id"]
    cases: list[tuple[str, str, Any]] = [
        ("GET", f"/v1/apps/{b}/endpoints/{ep}", None),
        ("PATCH", f"/v1/apps/{b}/endpoints/{ep}", {"url": "https://attacker.example/"}),
        ("DELETE", f"/v1/apps/{b}/endpoints/{ep}", None),
        ("GET", f"/v1/apps/{b}/endpoints/{ep}/secret", None),
        ("POST", f"/v1/apps/{b}/endpoints/{ep}/secret/rotate", {"secret": b64secret(32)}),
        ("POST", f"/v1/apps/{b}/endpoints/{ep}/pause", None),
        ("POST", f"/v1/apps/{b}/endpoints/{ep}/resume", None),
        ("GET", f"/v1/apps/{b}/events/{evt}", None),
        ("POST", f"/v1/apps/{b}/events/{evt}/replay", None),
        ("GET", f"/v1/apps/{b}/deliveries/{dlv}", None),
        ("GET", f"/v1/apps/{b}/deliveries/{dlv}/attempts", None),
        ("POST", f"/v1/apps/{b}/deliveries/{dlv}/replay", None),
        ("POST", f"/v1/apps/{b}/dead-letters/replay", {"endpoint_id": ep}),
    ]
    for method, url, body in cases:
        r = await api.http.request(method, url, json=body)
        assert_error(r, 404)
        assert "whsec_" not in r.text
    for listing in ("endpoints", "events", "deliveries"):
        assert (await get_ok(api, f"/v1/apps/{b}/{listing}"))["data"] == []
    assert (await get_ok(api, f"/v1/apps/{b}/deliveries", endpoint_id=ep))["data"] == []
    assert await snapshot(api, world.app_id) == before
    assert len(receiver.at(path)) == hits_before


# --- query parameters ----------------------------------------------------------------------------

LIST_ROUTES = [
    "/v1/apps",
    "/v1/event-types",
    "/v1/apps/{app}/endpoints",
    "/v1/apps/{app}/events",
    "/v1/apps/{app}/deliveries",
    "/v1/apps/{app}/deliveries/{dlv}/attempts",
]


async def test_bad_limit_is_422_on_every_list(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    for template in LIST_ROUTES:
        url = world.fill(template)
        for limit in ["0", "-1", "251", "1000", "abc", "", "1.5", "1e3", "99999999999999999999999"]:
            body = assert_error(await api.http.get(url, params={"limit": limit}), 422)
            assert "limit" in body["detail"]
        for limit in ("1", "250"):
            assert (await api.http.get(url, params={"limit": limit})).status_code == 200


FORGED_CURSORS = {
    "word": "abc",
    "negative": "-1",
    "fraction": "1.5",
    "hex": "0x10",
    "padded": " 1",
    "sql": "' OR 1=1 --",
    "unicode": "\u00e9\u2603",
    "sorts-after-every-id": "zzzzzzzz",
    "overlong": "c" * 129,
}


@pytest.mark.parametrize("template", LIST_ROUTES)
async def test_cursor_the_list_never_returned_is_422(
    api: ApiClient, receiver: Receiver, path: str, template: str
) -> None:
    """A cursor is what `next_cursor` gave: anything else, an id of another kind included, is refused."""
    world = await make_world(api, receiver, path)
    url = world.fill(template)
    other_kind = world.delivery["id"] if template.endswith("/events") else world.event["id"]
    for cursor in [*FORGED_CURSORS.values(), other_kind]:
        body = assert_error(await api.http.get(url, params={"cursor": cursor}), 422)
        assert "cursor" in body["detail"]


@pytest.mark.parametrize("status", ["done", "SUCCEEDED", "succeeded ", "", "failed", "dead-lettered", "pending,retrying"])
async def test_invalid_status_filter_is_422(api: ApiClient, receiver: Receiver, path: str, status: str) -> None:
    world = await make_world(api, receiver, path)
    url = world.fill("/v1/apps/{app}/deliveries")
    assert_error(await api.http.get(url, params={"status": status}), 422)
    assert [d["id"] for d in (await get_ok(api, url, status="succeeded"))["data"]] == [world.delivery["id"]]


async def test_overlong_endpoint_id_filter_is_422(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    url = world.fill("/v1/apps/{app}/deliveries")
    assert_error(await api.http.get(url, params={"endpoint_id": "ep_" + "x" * 100}), 422)
    assert (await get_ok(api, url, endpoint_id="ep_unknown"))["data"] == []
    assert [d["id"] for d in (await get_ok(api, url, endpoint_id=world.endpoint["id"]))["data"]] == [world.delivery["id"]]


async def test_bad_replay_bodies_are_422_and_send_nothing(api: ApiClient, receiver: Receiver, path: str) -> None:
    world = await make_world(api, receiver, path)
    before = await snapshot(api, world.app_id)
    hits = len(receiver.at(path))
    evt_replay = world.fill("/v1/apps/{app}/events/{evt}/replay")
    dl_replay = world.fill("/v1/apps/{app}/dead-letters/replay")
    for body in [{"endpoint_id": 5}, {"endpoint_id": ["ep"]}, {"endpoint_id": "e" * 65}, [], "x"]:
        assert_error(await api.http.post(evt_replay, json=body), 422)
        assert_error(await api.http.post(dl_replay, json=body), 422)
    for since in ["yesterday", "2024-13-45T00:00:00Z", 5.5e20, [], "2024-01-01T25:00:00"]:
        assert_error(await api.http.post(dl_replay, json={"since": since}), 422)
    assert await snapshot(api, world.app_id) == before
    assert len(receiver.at(path)) == hits


async def test_nul_characters_get_a_4xx_on_both_databases(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    """PostgreSQL text cannot hold NUL: in a name, id or parameter it must be refused, never a 500."""
    app_id = await any_api.create_app("keep-me")
    endpoint = await any_api.create_endpoint(app_id, receiver.url(path))
    event = await any_api.publish(app_id, "invoice.paid", {"n": 1})
    await any_api.wait_event(app_id, event["id"])
    before_app = await newest_app(any_api)
    before_endpoints = (await get_ok(any_api, f"/v1/apps/{app_id}/endpoints"))["data"]
    name = f"t{uuid.uuid4().hex[:8]}.x"
    a, ep = app_id, endpoint["id"]
    cases: list[tuple[str, str, Any, int]] = [
        ("POST", "/v1/apps", {"name": "a\x00b"}, 422),
        ("PATCH", f"/v1/apps/{a}", {"name": "\x00"}, 422),
        ("POST", f"/v1/apps/{a}/endpoints", {"url": receiver.url(path), "description": "d\x00"}, 422),
        ("PATCH", f"/v1/apps/{a}/endpoints/{ep}", {"description": "d\x00"}, 422),
        ("POST", "/v1/event-types", {"name": name, "description": "d\x00"}, 422),
        ("POST", f"/v1/apps/{a}/events/{event['id']}/replay", {"endpoint_id": "ep_\x00"}, 422),
        ("POST", f"/v1/apps/{a}/dead-letters/replay", {"endpoint_id": "ep_\x00"}, 422),
        ("GET", "/v1/apps/app_%00", None, 404),
        ("DELETE", "/v1/apps/app_%00", None, 404),
        ("GET", f"/v1/apps/{a}/endpoints/ep_%00", None, 404),
        ("POST", f"/v1/apps/{a}/endpoints/ep_%00/pause", None, 404),
        ("GET", f"/v1/apps/{a}/events/evt_%00", None, 404),
        ("GET", f"/v1/apps/{a}/deliveries/dlv_%00/attempts", None, 404),
        ("GET", "/v1/event-types/x%00", None, 404),
        ("GET", f"/v1/apps/{a}/events?cursor=evt_%00", None, 422),
        ("GET", "/v1/apps?cursor=%00", None, 422),
        ("GET", f"/v1/apps/{a}/deliveries?endpoint_id=%00", None, 422),
    ]
    for method, url, body, status in cases:
        # A fresh connection each time: a 500 would close it and hide the next case.
        async with anonymous(any_api, f"Bearer {TOKEN}") as client:
            assert_error(await client.request(method, url, json=body), status)
    assert await newest_app(any_api) == before_app
    assert (await get_ok(any_api, f"/v1/apps/{a}"))["name"] == "keep-me"
    assert (await get_ok(any_api, f"/v1/apps/{a}/endpoints"))["data"] == before_endpoints
    assert (await any_api.http.get(f"/v1/event-types/{name}")).status_code == 404

    # Inside event data a NUL is just a JSON escape, and it round-trips.
    ok = await any_api.publish(a, "invoice.paid", {"k\x00": "a\x00b"})
    assert (await any_api.event(a, ok["id"]))["data"] == {"k\x00": "a\x00b"}
