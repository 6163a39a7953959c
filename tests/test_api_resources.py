"""The happy paths of the HTTP API: CRUD of every resource, and lists that page newest first."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from standardwebhooks import Webhook

from hookline.core.config import Settings
from hookline.core.retry import effective_schedule
from tests.harness import FAST_RETRY, ApiClient, Receiver

# The stack runs with the default retry settings: an endpoint without an override shows these.
DEFAULT_RETRY = {
    key: Settings.model_fields[f"retry_{key}"].default
    for key in ("max_attempts", "initial_interval_s", "backoff_coefficient", "max_interval_s")
}


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:500]}"
    return r.json() if r.content else None


def utc(ts: str) -> datetime:
    """An RFC 3339 timestamp in UTC."""
    parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0), ts
    return parsed


def assert_recent(ts: str) -> None:
    assert abs(datetime.now(timezone.utc) - utc(ts)) < timedelta(minutes=5), ts


async def assert_global_list_pages(api: ApiClient, url: str, newest_first: list[str], key: str) -> None:
    """Apps and event types are global: the seven just made are the newest, then everything else, each once."""
    pages = await api.pages(url, 3)
    assert all(len(p) == 3 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 3
    flat = [item[key] for page in pages for item in page]
    assert flat[:7] == newest_first
    assert len(flat) == len(set(flat))
    created = [item["created_at"] for page in pages for item in page]
    assert created == sorted(created, key=utc, reverse=True)


def assert_pages_of_seven(pages: list[list[dict]], newest_first: list[str], key: str = "id") -> None:
    assert [len(p) for p in pages] == [3, 3, 1]
    flat = [item[key] for page in pages for item in page]
    assert flat == newest_first
    assert len(set(flat)) == 7


# --- applications --------------------------------------------------------------------------------

async def test_app_create_get_list_patch(api: ApiClient) -> None:
    created = ok(await api.http.post("/v1/apps", json={"name": "  Acme Corp  "}), 201)
    assert set(created) == {"id", "name", "created_at", "updated_at"}
    assert created["id"].startswith("app_") and created["name"] == "Acme Corp"  # surrounding spaces trimmed
    assert_recent(created["created_at"])
    assert created["created_at"] == created["updated_at"]

    assert ok(await api.http.get(f"/v1/apps/{created['id']}")) == created
    listed = ok(await api.http.get("/v1/apps", params={"limit": 5}))["data"]
    assert listed[0] == created  # newest first

    patched = ok(await api.http.patch(f"/v1/apps/{created['id']}", json={"name": "Acme Inc"}))
    assert patched["id"] == created["id"] and patched["name"] == "Acme Inc"
    assert patched["created_at"] == created["created_at"]
    assert utc(patched["updated_at"]) > utc(created["updated_at"])
    assert ok(await api.http.get(f"/v1/apps/{created['id']}")) == patched

    # An empty patch changes nothing but is fine.
    assert ok(await api.http.patch(f"/v1/apps/{created['id']}", json={}))["name"] == "Acme Inc"


async def test_app_delete_takes_its_endpoints_events_and_deliveries(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app("doomed")
    other = await api.create_app("survivor")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    kept_endpoint = await api.create_endpoint(other, receiver.url(path + "/other"))
    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    [delivery] = (await api.wait_event(app_id, event["id"]))["deliveries"]
    kept_event = await api.publish(other, "invoice.paid", {"n": 2})
    await api.wait_event(other, kept_event["id"])

    r = await api.http.delete(f"/v1/apps/{app_id}")
    assert r.status_code == 204 and r.content == b""

    for url in [
        f"/v1/apps/{app_id}",
        f"/v1/apps/{app_id}/endpoints",
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}",
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret",
        f"/v1/apps/{app_id}/events",
        f"/v1/apps/{app_id}/events/{event['id']}",
        f"/v1/apps/{app_id}/deliveries",
        f"/v1/apps/{app_id}/deliveries/{delivery['id']}",
        f"/v1/apps/{app_id}/deliveries/{delivery['id']}/attempts",
    ]:
        r = await api.http.get(url)
        assert r.status_code == 404, (url, r.text)
    assert app_id not in {a["id"] for a in ok(await api.http.get("/v1/apps", params={"limit": 250}))["data"]}
    assert (await api.http.delete(f"/v1/apps/{app_id}")).status_code == 404

    # The other tenant is untouched.
    assert ok(await api.http.get(f"/v1/apps/{other}"))["name"] == "survivor"
    assert [e["id"] for e in ok(await api.http.get(f"/v1/apps/{other}/endpoints"))["data"]] == [kept_endpoint["id"]]
    assert [e["id"] for e in ok(await api.http.get(f"/v1/apps/{other}/events"))["data"]] == [kept_event["id"]]
    assert len(ok(await api.http.get(f"/v1/apps/{other}/deliveries"))["data"]) == 1


# --- event types ---------------------------------------------------------------------------------

async def test_event_type_crud_with_schema_round_trip(api: ApiClient) -> None:
    name = f"invoice{uuid.uuid4().hex[:8]}.paid.v2"
    schema = {
        "type": "object",
        "required": ["amount"],
        "properties": {"amount": {"type": "integer", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]}},
    }
    created = ok(await api.http.post("/v1/event-types", json={"name": name, "description": "paid", "schema": schema}), 201)
    # `latest_version` and `versions`: the catalog's versions (docs/event-types.md); one here, v1.
    assert set(created) == {"name", "description", "schema", "created_at", "updated_at", "latest_version", "versions"}
    assert created["latest_version"] == "v1" and [v["version"] for v in created["versions"]] == ["v1"]
    assert created["name"] == name and created["description"] == "paid" and created["schema"] == schema
    assert_recent(created["created_at"])
    assert ok(await api.http.get(f"/v1/event-types/{name}")) == created
    assert ok(await api.http.get("/v1/event-types", params={"limit": 1}))["data"] == [created]

    # Description only: the schema stays.
    patched = ok(await api.http.patch(f"/v1/event-types/{name}", json={"description": "invoice paid"}))
    assert patched["description"] == "invoice paid" and patched["schema"] == schema
    assert utc(patched["updated_at"]) > utc(created["updated_at"])

    # The schema is enforced on publish, and a new one replaces it.
    app_id = await api.create_app()
    r = await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"amount": "ten"}})
    assert r.status_code == 422 and "amount" in r.json()["detail"]
    new_schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
    patched = ok(await api.http.patch(f"/v1/event-types/{name}", json={"schema": new_schema}))
    assert patched["schema"] == new_schema and patched["description"] == "invoice paid"
    assert ok(await api.http.get(f"/v1/event-types/{name}"))["schema"] == new_schema
    await api.publish(app_id, name, {"id": "in_1"})
    assert (await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"amount": 1}})).status_code == 422

    # null removes the schema: anything goes.
    assert ok(await api.http.patch(f"/v1/event-types/{name}", json={"schema": None}))["schema"] is None
    await api.publish(app_id, name, {"amount": "ten"})

    r = await api.http.delete(f"/v1/event-types/{name}")
    assert r.status_code == 204 and r.content == b""
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404
    assert (await api.http.delete(f"/v1/event-types/{name}")).status_code == 404
    assert name not in {t["name"] for t in ok(await api.http.get("/v1/event-types", params={"limit": 250}))["data"]}
    # The name is free again.
    ok(await api.http.post("/v1/event-types", json={"name": name}), 201)


async def test_event_type_without_description_or_schema(api: ApiClient) -> None:
    name = f"user{uuid.uuid4().hex[:8]}.created"
    created = ok(await api.http.post("/v1/event-types", json={"name": name}), 201)
    assert created["description"] is None and created["schema"] is None
    app_id = await api.create_app()
    await api.publish(app_id, name, {"anything": ["goes"]})


async def test_event_types_page_newest_first_exactly_once(api: ApiClient) -> None:
    names = [f"page{uuid.uuid4().hex[:8]}.e{i}" for i in range(7)]
    for name in names:
        ok(await api.http.post("/v1/event-types", json={"name": name}), 201)
    await assert_global_list_pages(api, "/v1/event-types", names[::-1], key="name")


# --- endpoints -----------------------------------------------------------------------------------

async def test_endpoint_create_generates_a_secret_that_is_never_listed(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app()
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path)})
    created = ok(r, 201)
    assert created["id"].startswith("ep_") and created["app_id"] == app_id
    assert created["url"] == receiver.url(path)
    assert created["status"] == "active" and created["disabled_reason"] is None
    assert created["description"] is None and created["event_types"] is None and created["header_names"] == []
    assert created["retry"] == DEFAULT_RETRY
    assert_recent(created["created_at"])

    secret = await api.secret(app_id, created["id"])
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) <= 64
    assert ok(await api.http.get(f"/v1/apps/{app_id}/endpoints/{created['id']}/secret")) == {"secret": secret}

    got = await api.http.get(f"/v1/apps/{app_id}/endpoints/{created['id']}")
    listed = await api.http.get(f"/v1/apps/{app_id}/endpoints")
    for response in (r, got, listed):
        assert secret not in response.text and "whsec_" not in response.text
    for body in (created, got.json(), *listed.json()["data"]):
        assert not {"secret", "previous_secret"} & set(body)
    assert got.json() == created and listed.json() == {"data": [created], "next_cursor": None}

    # Every endpoint gets its own secret.
    second = await api.create_endpoint(app_id, receiver.url(path))
    assert await api.secret(app_id, second["id"]) != secret


async def test_endpoint_create_with_every_field(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = {
        "url": receiver.url(path),
        "description": "billing system",
        "event_types": ["invoice.*", "user.created"],
        "secret": secret,
        "retry": {"max_attempts": 5, "backoff_coefficient": 2},
        "headers": {"X-Tenant": "acme", "Authorization": "Bearer downstream"},
    }
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json=body)
    created = ok(r, 201)
    assert secret not in r.text
    assert created["description"] == "billing system"
    assert created["event_types"] == ["invoice.*", "user.created"]
    # Reads name the headers and never show a value.
    assert created["header_names"] == ["X-Tenant", "Authorization"] and "downstream" not in r.text
    assert created["retry"] == {**DEFAULT_RETRY, "max_attempts": 5, "backoff_coefficient": 2.0}
    assert await api.secret(app_id, created["id"]) == secret
    assert ok(await api.http.get(f"/v1/apps/{app_id}/endpoints/{created['id']}")) == created

    # The extra headers and the given secret are what the subscriber sees.
    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    await api.wait_event(app_id, event["id"])
    [got] = receiver.at(path)
    assert got.headers["x-tenant"] == "acme" and got.headers["authorization"] == "Bearer downstream"
    Webhook(secret).verify(got.body, got.headers)


async def test_endpoint_patch_url_event_types_and_retry(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), description="first")
    ep_url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    secret = await api.secret(app_id, endpoint["id"])
    assert endpoint["retry"] == {**FAST_RETRY, "max_interval_s": 1.0}

    patched = ok(await api.http.patch(ep_url, json={"url": receiver.url(path + "/moved")}))
    assert patched["url"] == receiver.url(path + "/moved")
    assert patched["description"] == "first" and patched["retry"] == endpoint["retry"]  # the rest is kept
    assert utc(patched["updated_at"]) > utc(endpoint["updated_at"])

    patched = ok(await api.http.patch(ep_url, json={"event_types": ["order.*"], "description": None}))
    assert patched["event_types"] == ["order.*"] and patched["description"] is None

    # A partial override is filled in with the defaults.
    patched = ok(await api.http.patch(ep_url, json={"retry": {"max_attempts": 4}}))
    assert patched["retry"] == {**DEFAULT_RETRY, "max_attempts": 4}
    patched = ok(await api.http.patch(ep_url, json={"retry": {"initial_interval_s": 1.5, "max_interval_s": 2}}))
    assert patched["retry"] == {**DEFAULT_RETRY, "initial_interval_s": 1.5, "max_interval_s": 2.0}
    patched = ok(await api.http.patch(ep_url, json={"retry": None}))
    assert patched["retry"] == DEFAULT_RETRY

    patched = ok(await api.http.patch(ep_url, json={"headers": {"X-A": "1"}, "event_types": None}))
    assert patched["header_names"] == ["X-A"] and patched["event_types"] is None

    assert ok(await api.http.get(ep_url)) == patched
    assert await api.secret(app_id, endpoint["id"]) == secret  # a patch never touches the secret
    assert patched["status"] == "active" and patched["id"] == endpoint["id"]


async def test_endpoint_patch_takes_effect_for_the_next_event(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path + "/old"), event_types=["order.*"])
    # A catch-all endpoint shows when an event's fan-out has run.
    witness = await api.create_endpoint(app_id, receiver.url(path + "/all"))
    ok(await api.http.patch(
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}",
        json={"url": receiver.url(path + "/new"), "event_types": ["invoice.*"]},
    ))
    order = await api.publish(app_id, "order.created", {"n": 0})
    invoice = await api.publish(app_id, "invoice.paid", {"n": 1})
    order_done = await api.wait_event(app_id, order["id"])
    invoice_done = await api.wait_event(app_id, invoice["id"], lambda e: len(e["deliveries"]) == 2 and all(
        d["status"] == "succeeded" for d in e["deliveries"]))
    assert [d["endpoint_id"] for d in order_done["deliveries"]] == [witness["id"]]
    assert {d["endpoint_id"] for d in invoice_done["deliveries"]} == {witness["id"], endpoint["id"]}
    assert receiver.at(path + "/old") == []
    assert [h.json()["id"] for h in receiver.at(path + "/new")] == [invoice["id"]]


async def test_endpoint_delete(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    gone = await api.create_endpoint(app_id, receiver.url(path + "/gone"))
    kept = await api.create_endpoint(app_id, receiver.url(path + "/kept"))
    r = await api.http.delete(f"/v1/apps/{app_id}/endpoints/{gone['id']}")
    assert r.status_code == 204 and r.content == b""
    for suffix in ("", "/secret"):
        assert (await api.http.get(f"/v1/apps/{app_id}/endpoints/{gone['id']}{suffix}")).status_code == 404
    assert (await api.http.delete(f"/v1/apps/{app_id}/endpoints/{gone['id']}")).status_code == 404
    assert ok(await api.http.get(f"/v1/apps/{app_id}/endpoints")) == {"data": [kept], "next_cursor": None}

    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    done = await api.wait_event(app_id, event["id"])
    assert [d["endpoint_id"] for d in done["deliveries"]] == [kept["id"]]
    assert receiver.at(path + "/gone") == []


# --- lists ---------------------------------------------------------------------------------------

async def test_apps_list_pages_newest_first_exactly_once(api: ApiClient) -> None:
    ids = [await api.create_app(f"paged-{i}") for i in range(7)]
    await assert_global_list_pages(api, "/v1/apps", ids[::-1], key="id")


async def test_endpoints_list_pages_newest_first_exactly_once(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    ids = [(await api.create_endpoint(app_id, receiver.url(f"{path}/{i}")))["id"] for i in range(7)]
    pages = await api.pages(f"/v1/apps/{app_id}/endpoints", 3)
    assert_pages_of_seven(pages, ids[::-1])
    assert [e["url"] for p in pages for e in p] == [receiver.url(f"{path}/{i}") for i in reversed(range(7))]
    whole = ok(await api.http.get(f"/v1/apps/{app_id}/endpoints"))
    assert [e["id"] for e in whole["data"]] == ids[::-1] and whole["next_cursor"] is None
    exact = ok(await api.http.get(f"/v1/apps/{app_id}/endpoints", params={"limit": 7}))
    assert len(exact["data"]) == 7 and exact["next_cursor"] is None


async def test_events_list_pages_newest_first_exactly_once(api: ApiClient) -> None:
    app_id = await api.create_app()
    events = [await api.publish(app_id, "order.created", {"i": i}) for i in range(7)]
    pages = await api.pages(f"/v1/apps/{app_id}/events", 3)
    assert_pages_of_seven(pages, [e["id"] for e in reversed(events)])
    flat = [e for p in pages for e in p]
    assert [e["data"] for e in flat] == [{"i": i} for i in reversed(range(7))]
    for listed, published in zip(flat, reversed(events), strict=True):
        assert listed["id"].startswith("evt_") and listed["workflow_id"] == published["workflow_id"]
        assert listed["type"] == "order.created" and listed["created_at"] == published["created_at"]
    # An event read by id carries its deliveries inline (none here: no endpoints).
    assert (await api.event(app_id, events[0]["id"]))["deliveries"] == []


async def test_deliveries_list_pages_newest_first_exactly_once(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoints = [await api.create_endpoint(app_id, receiver.url(f"{path}/{i}")) for i in range(7)]
    event = await api.publish(app_id, "order.created", {"n": 1})
    done = await api.wait_event(app_id, event["id"], lambda e: len(e["deliveries"]) == 7 and all(
        d["status"] == "succeeded" for d in e["deliveries"]))
    pages = await api.pages(f"/v1/apps/{app_id}/deliveries", 3)
    # One fan-out makes all seven within a few milliseconds: newest first is by the time-sortable id.
    assert_pages_of_seven(pages, sorted((d["id"] for d in done["deliveries"]), reverse=True))
    flat = [d for p in pages for d in p]
    assert {d["endpoint_id"] for d in flat} == {e["id"] for e in endpoints}
    for d in flat:
        assert d["id"].startswith("dlv_") and d["event_id"] == event["id"] and d["workflow_id"] == event["workflow_id"]
        assert d["attempts"] == 1 and d["last_status_code"] == 200


async def test_attempts_list_is_in_attempt_order(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 500, 503, 200)
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    [delivery] = (await api.wait_event(app_id, event["id"]))["deliveries"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    url = f"/v1/apps/{app_id}/deliveries/{delivery['id']}/attempts"

    whole = ok(await api.http.get(url))
    assert whole["next_cursor"] is None
    attempts = whole["data"]
    assert [(a["number"], a["status_code"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert attempts[0]["error"] and attempts[1]["error"] and attempts[2]["error"] is None
    assert [a["response_body"] for a in attempts] == ["ok", "ok", "ok"]
    starts = [utc(a["started_at"]) for a in attempts]
    assert starts == sorted(starts)
    assert all(isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in attempts)

    pages = await api.pages(url, 1)
    assert [[a["number"] for a in p] for p in pages] == [[1], [2], [3]]
    pages = await api.pages(url, 2)
    assert [[a["number"] for a in p] for p in pages] == [[1, 2], [3]]


async def test_deliveries_filter_by_status_and_endpoint(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path + "/bad", 500)
    app_id = await api.create_app()
    good = await api.create_endpoint(app_id, receiver.url(path + "/good"))
    bad = await api.create_endpoint(app_id, receiver.url(path + "/bad"), retry={"max_attempts": 1})
    events = [await api.publish(app_id, "invoice.paid", {"i": i}) for i in range(2)]
    for event in events:
        await api.wait_event(app_id, event["id"], lambda e: len(e["deliveries"]) == 2 and all(
            d["status"] in ("succeeded", "dead_lettered") for d in e["deliveries"]))
    url = f"/v1/apps/{app_id}/deliveries"

    async def listed(**params: str) -> list[dict]:
        return await api.every(url, **params)

    everything = await listed()
    assert len(everything) == 4
    succeeded = await listed(status="succeeded")
    dead = await listed(status="dead_lettered")
    assert {d["endpoint_id"] for d in succeeded} == {good["id"]} and len(succeeded) == 2
    assert {d["endpoint_id"] for d in dead} == {bad["id"]} and len(dead) == 2
    assert all(d["status"] == "succeeded" for d in succeeded) and all(d["status"] == "dead_lettered" for d in dead)
    for status in ("pending", "retrying", "paused"):
        assert await listed(status=status) == []

    by_good = await listed(endpoint_id=good["id"])
    assert [d["id"] for d in by_good] == [d["id"] for d in succeeded]
    assert {d["event_id"] for d in by_good} == {e["id"] for e in events}
    assert await listed(endpoint_id=bad["id"], status="succeeded") == []
    assert [d["id"] for d in await listed(endpoint_id=bad["id"], status="dead_lettered")] == [d["id"] for d in dead]
    assert await listed(endpoint_id="ep_unknown") == []
    # Filters and paging together: each page filtered, every item once.
    pages = await api.pages(url, 1, status="dead_lettered")
    assert [d["id"] for p in pages for d in p] == [d["id"] for d in dead]
    # Newest first.
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    assert sorted(d["id"] for d in everything) == sorted(d["id"] for d in succeeded + dead)


def test_an_override_saved_before_the_1s_floor_loads_with_the_floor() -> None:
    """Rows written when 0.5 s was allowed still load (GET, new deliveries) instead of failing validation."""
    schedule = effective_schedule({"initial_interval_s": 0.2, "max_attempts": 3}, Settings())
    assert schedule.initial_interval_s == 1.0 and schedule.max_attempts == 3
