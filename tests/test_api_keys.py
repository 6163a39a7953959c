"""API keys on the real API: shown once, stored as a hash only, scoped, expiring and revocable."""

from __future__ import annotations

import glob
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from hookline.api.auth import new_key
from tests.harness import ApiClient, Receiver, Stack, wait_until

KEY_FIELDS = {"id", "prefix", "name", "scopes", "app_id", "created_at", "expires_at", "last_used_at"}


async def create_key(api: ApiClient, scopes: list[str], app_id: str | None = None, **extra: Any) -> dict:
    r = await api.http.post("/v1/api-keys", json={"name": "svc", "scopes": scopes, "app_id": app_id, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def as_key(api: ApiClient, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(api.http.base_url), headers={"authorization": f"Bearer {key}"}, timeout=30)


def in_future(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


async def test_create_shows_the_key_once_then_list_get_revoke(api: ApiClient) -> None:
    app_id = await api.create_app()
    created = await create_key(api, ["app:write"], app_id, expires_at=in_future(3600))
    assert set(created) == KEY_FIELDS | {"key"}
    key = created["key"]
    assert created["id"].startswith("key_") and key.startswith("hlk_") and len(key) == 70
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < len(key) - 30
    assert created["scopes"] == ["app:write"] and created["app_id"] == app_id and created["last_used_at"] is None

    got = (await api.http.get(f"/v1/api-keys/{created['id']}")).json()
    assert set(got) == KEY_FIELDS and got["id"] == created["id"]
    newer = await create_key(api, ["admin"])
    page = (await api.http.get("/v1/api-keys", params={"limit": 2})).json()
    assert set(page) == {"data", "next_cursor"} and [k["id"] for k in page["data"]] == [newer["id"], created["id"]]
    assert all(set(k) == KEY_FIELDS for k in page["data"]) and key not in str(page)

    async with as_key(api, key) as client:
        assert (await client.get(f"/v1/apps/{app_id}/endpoints")).status_code == 200
        assert (await api.http.delete(f"/v1/api-keys/{created['id']}")).status_code == 204
        r = await client.get(f"/v1/apps/{app_id}/endpoints")  # the very next request
        assert r.status_code == 401 and r.headers["www-authenticate"].lower().startswith("bearer")
    assert (await api.http.get(f"/v1/api-keys/{created['id']}")).status_code == 404
    assert (await api.http.delete(f"/v1/api-keys/{created['id']}")).status_code == 404
    ids = [k["id"] for k in (await api.http.get("/v1/api-keys", params={"limit": 250})).json()["data"]]
    assert created["id"] not in ids and newer["id"] in ids


async def test_the_store_holds_no_usable_key(api: ApiClient, sqlite_stack: Stack) -> None:
    app_id = await api.create_app()
    created = await create_key(api, ["app:read"], app_id)
    async with as_key(api, created["key"]) as client:
        assert (await client.get(f"/v1/apps/{app_id}")).status_code == 200
    secret_part = created["key"][len(created["prefix"]):]
    files = glob.glob(str(sqlite_stack.work_dir / "hookline.db*"))  # the database and its WAL
    assert files
    for name in files:
        with open(name, "rb") as f:
            content = f.read()
        assert created["key"].encode() not in content and secret_part.encode() not in content, name


async def test_last_used_at_is_set_by_use(api: ApiClient) -> None:
    app_id = await api.create_app()
    created = await create_key(api, ["events:publish"], app_id)
    async with as_key(api, created["key"]) as client:
        r = await client.post(f"/v1/apps/{app_id}/events", json={"type": "key.used", "data": {}})
        assert r.status_code == 202, r.text
    used = (await api.http.get(f"/v1/api-keys/{created['id']}")).json()["last_used_at"]
    assert used is not None
    assert abs(datetime.fromisoformat(used.replace("Z", "+00:00")) - datetime.now(timezone.utc)) < timedelta(minutes=1)


async def test_expired_key_gets_401(api: ApiClient) -> None:
    app_id = await api.create_app()
    created = await create_key(api, ["app:read"], app_id, expires_at=in_future(1.5))
    async with as_key(api, created["key"]) as client:
        assert (await client.get(f"/v1/apps/{app_id}")).status_code == 200
        await wait_until(lambda: client.get(f"/v1/apps/{app_id}"), lambda r: r.status_code == 401, timeout=15)


async def test_mistyped_or_forged_keys_get_401(api: ApiClient) -> None:
    app_id = await api.create_app()
    created = await create_key(api, ["app:read"], app_id)
    key = created["key"]
    swap = {k: "b" if k != "b" else "c" for k in key}
    typo = key[:40] + swap[key[40]] + key[41:]  # the checksum no longer matches
    forged = key[:40] + swap[key[40]] + key[41:-6]
    guessed = new_key(created["id"])  # well-formed, valid checksum, this key's id: the hash differs
    for bad in (typo, forged, key + "x", key.upper(), key[:-1], guessed, "hlk_", key.replace("hlk_", "hlx_")):
        async with as_key(api, bad) as client:
            assert (await client.get(f"/v1/apps/{app_id}")).status_code == 401, bad[:8]


async def test_scopes(api: ApiClient, receiver: Receiver, path: str) -> None:
    mine, theirs = await api.create_app("mine"), await api.create_app("theirs")
    endpoint = await api.create_endpoint(mine, receiver.url(path))
    reader = (await create_key(api, ["app:read"], mine))["key"]
    writer = (await create_key(api, ["app:write"], mine))["key"]
    publisher = (await create_key(api, ["events:publish"], mine))["key"]
    secret_url = f"/v1/apps/{mine}/endpoints/{endpoint['id']}/secret"

    async with as_key(api, reader) as client:
        apps = (await client.get("/v1/apps", params={"limit": 250})).json()
        assert [a["id"] for a in apps["data"]] == [mine] and apps["next_cursor"] is None
        assert (await client.get(f"/v1/apps/{mine}/endpoints/{endpoint['id']}")).status_code == 200
        assert (await client.get("/v1/event-types")).status_code == 200
        assert (await client.get(secret_url)).status_code == 403  # the secret signs: write only
        r = await client.post(f"/v1/apps/{mine}/endpoints", json={"url": receiver.url(path)})
        assert r.status_code == 403 and "app:write" in r.json()["detail"]
        assert (await client.get(f"/v1/apps/{theirs}")).status_code == 404
        assert (await client.get(f"/v1/apps/{theirs}/events")).status_code == 404
    async with as_key(api, publisher) as client:
        assert (await client.post(f"/v1/apps/{mine}/events", json={"type": "a.b", "data": {}})).status_code == 202
        assert (await client.get(f"/v1/apps/{mine}/events")).status_code == 403
        assert (await client.post(f"/v1/apps/{theirs}/events", json={"type": "a.b", "data": {}})).status_code == 404
    async with as_key(api, writer) as client:
        assert (await client.get(secret_url)).status_code == 200
        assert (await client.post(f"/v1/apps/{mine}/endpoints/{endpoint['id']}/pause")).status_code == 200
        assert (await client.post(f"/v1/apps/{mine}/events", json={"type": "a.b", "data": {}})).status_code == 202
        for method, url, body in [
            ("POST", "/v1/apps", {"name": "x"}),
            ("POST", "/v1/event-types", {"name": "by.writer"}),
            ("POST", "/v1/api-keys", {"name": "x", "scopes": ["admin"]}),
            ("GET", "/v1/api-keys", None),
            ("DELETE", f"/v1/apps/{mine}", None),
        ]:
            assert (await client.request(method, url, json=body)).status_code == 403, (method, url)
        assert (await client.get(f"/v1/apps/{theirs}/endpoints")).status_code == 404
    assert (await api.http.get(f"/v1/apps/{mine}")).status_code == 200
    assert (await api.http.get("/v1/event-types/by.writer")).status_code == 404


BAD_BODIES: dict[str, Any] = {
    "unknown-scope": {"name": "x", "scopes": ["app:delete"], "app_id": "{app}"},
    "admin-with-app": {"name": "x", "scopes": ["admin"], "app_id": "{app}"},
    "admin-and-more": {"name": "x", "scopes": ["admin", "app:read"]},
    "app-scope-without-app": {"name": "x", "scopes": ["app:read"]},
    "no-scopes": {"name": "x", "scopes": [], "app_id": "{app}"},
    "repeated-scope": {"name": "x", "scopes": ["app:read", "app:read"], "app_id": "{app}"},
    "scopes-not-a-list": {"name": "x", "scopes": "admin"},
    "expired-already": {"name": "x", "scopes": ["admin"], "expires_at": "2020-01-01T00:00:00Z"},
    "expiry-without-zone": {"name": "x", "scopes": ["admin"], "expires_at": "2999-01-01T00:00:00"},
    "expiry-garbage": {"name": "x", "scopes": ["admin"], "expires_at": "tomorrow"},
    "oversized-name": {"name": "x" * 257, "scopes": ["admin"]},
    "empty-name": {"name": "  ", "scopes": ["admin"]},
    "nul-in-name": {"name": "a\x00b", "scopes": ["admin"]},
    "no-name": {"scopes": ["admin"]},
    "unknown-field": {"name": "x", "scopes": ["admin"], "key": "hlk_chosen"},
    "oversized-app-id": {"name": "x", "scopes": ["app:read"], "app_id": "a" * 65},
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_invalid_create_body_is_422_and_creates_nothing(api: ApiClient, case: str) -> None:
    app_id = await api.create_app()
    body = {k: (v.replace("{app}", app_id) if isinstance(v, str) else v) for k, v in BAD_BODIES[case].items()}
    before = (await api.http.get("/v1/api-keys", params={"limit": 1})).json()["data"]
    r = await api.http.post("/v1/api-keys", json=body)
    assert r.status_code == 422, r.text
    assert "hlk_" not in r.text
    assert (await api.http.get("/v1/api-keys", params={"limit": 1})).json()["data"] == before


async def test_key_for_an_unknown_application_is_404(api: ApiClient) -> None:
    before = (await api.http.get("/v1/api-keys", params={"limit": 1})).json()["data"]
    r = await api.http.post("/v1/api-keys", json={"name": "x", "scopes": ["app:read"], "app_id": "app_nope"})
    assert r.status_code == 404
    assert (await api.http.get("/v1/api-keys", params={"limit": 1})).json()["data"] == before


async def test_hostile_key_ids_and_cursors(api: ApiClient) -> None:
    for key_id in ("key_nope", "x" * 300, "..%2F..%2Fapps", "key_' OR 1=1 --"):
        assert (await api.http.get(f"/v1/api-keys/{key_id}")).status_code == 404
        assert (await api.http.delete(f"/v1/api-keys/{key_id}")).status_code == 404
    for cursor in ("app_0123", "' OR 1=1", "x" * 129):
        assert (await api.http.get("/v1/api-keys", params={"cursor": cursor})).status_code == 422
    assert (await api.http.get("/v1/api-keys", params={"limit": 0})).status_code == 422


async def test_deleting_an_application_revokes_its_keys(api: ApiClient) -> None:
    app_id, other_app = await api.create_app(), await api.create_app()
    bound = await create_key(api, ["app:write"], app_id)
    other = await create_key(api, ["app:write"], other_app)
    async with as_key(api, bound["key"]) as client, as_key(api, other["key"]) as other_client:
        assert (await client.get(f"/v1/apps/{app_id}/endpoints")).status_code == 200
        assert (await api.http.delete(f"/v1/apps/{app_id}")).status_code == 204
        # Refused from the next request on, even where a missing application would answer 404.
        assert (await client.get(f"/v1/apps/{app_id}/endpoints")).status_code == 401
        assert (await client.get("/v1/apps")).status_code == 401
        assert (await api.http.get(f"/v1/api-keys/{bound['id']}")).status_code == 404
        listed = [k["id"] for k in (await api.http.get("/v1/api-keys", params={"limit": 250})).json()["data"]]
        assert bound["id"] not in listed and other["id"] in listed
        # Another application's key is untouched.
        assert (await other_client.get(f"/v1/apps/{other_app}/endpoints")).status_code == 200
