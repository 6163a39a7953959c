"""Event types as versioned contracts (docs/event-types.md), on the real stack: dual publish,
transformations delivered or dead-lettered, deprecation and sunset, usage, the catalog export."""

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pydantic_asyncapi import AsyncAPIV3
from standardwebhooks import Webhook

from tests.harness import ApiClient, Receiver, Stack, wait_until

V1_SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {"amount": {"type": "integer"}},
    "additionalProperties": False,
}
V2_SCHEMA = {
    "type": "object",
    "required": ["amount_cents", "currency"],
    "properties": {"amount_cents": {"type": "integer"}, "currency": {"type": "string", "minLength": 3}},
}
V2_DATA = {"amount_cents": 4200, "currency": "EUR"}


def type_name() -> str:
    return f"invoice.paid.t{uuid.uuid4().hex[:10]}"


async def register(api: ApiClient, name: str, *, v1_transform: str | None = None) -> None:
    """The type with v1 (V1_SCHEMA) and v2 (V2_SCHEMA, the latest); v1 optionally derived from v2."""
    r = await api.http.post("/v1/event-types", json={"name": name, "description": "paid", "schema": V1_SCHEMA})
    assert r.status_code == 201, r.text
    r = await api.http.post(
        f"/v1/event-types/{name}/versions",
        json={"description": "paid, in cents", "schema": V2_SCHEMA, "example": V2_DATA},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == "v2"
    if v1_transform is not None:
        r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"transforms": {"v2": v1_transform}})
        assert r.status_code == 200, r.text


async def publish(api: ApiClient, app_id: str, body: dict) -> httpx.Response:
    return await api.http.post(f"/v1/apps/{app_id}/events", json=body)


async def verified(api: ApiClient, app_id: str, endpoint: dict, receiver: Receiver, path: str) -> tuple[dict, dict]:
    """The one delivery at `path`, its signature checked with the endpoint's secret: (body, headers)."""
    [got] = receiver.at(path)
    body = Webhook(await api.secret(app_id, endpoint["id"])).verify(got.body, got.headers)
    return body, {k.lower(): v for k, v in got.headers.items()}


def paths() -> list[str]:
    return [f"/hook/{uuid.uuid4().hex[:12]}" for _ in range(4)]


async def test_dual_publish_delivers_each_endpoint_its_version(any_api: ApiClient, receiver: Receiver) -> None:
    api = any_api
    name = type_name()
    await register(api, name)
    app_id = await api.create_app()
    p1, p2, latest, unpinned = paths()
    ep1 = await api.create_endpoint(app_id, receiver.url(p1), event_types=[f"{name}@v1"])
    ep2 = await api.create_endpoint(app_id, receiver.url(p2), event_types=[f"{name}@v2"])
    ep_latest = await api.create_endpoint(app_id, receiver.url(latest), event_types=[f"{name}@latest"])
    ep_unpinned = await api.create_endpoint(app_id, receiver.url(unpinned), event_types=["invoice.*"])

    r = await publish(api, app_id, {"type": name, "data": V2_DATA, "versions": {"v1": {"amount": 42}}})
    assert r.status_code == 202, r.text
    event = r.json()
    done = await api.wait_event(app_id, event["id"])
    assert sorted(d["status"] for d in done["deliveries"]) == ["succeeded"] * 4

    body, headers = await verified(api, app_id, ep1, receiver, p1)
    assert body == {"id": event["id"], "type": name, "version": "v1", "timestamp": event["created_at"], "data": {"amount": 42}}
    assert headers["webhook-version"] == "v1" and headers["webhook-id"] == event["id"]
    for endpoint, path in ((ep2, p2), (ep_latest, latest), (ep_unpinned, unpinned)):
        body, headers = await verified(api, app_id, endpoint, receiver, path)
        assert body["version"] == "v2" and body["data"] == V2_DATA
        assert headers["webhook-version"] == "v2"
        assert "webhook-deprecation" not in headers
    # The application goes with its events' versions and delivery counts.
    assert (await api.http.delete(f"/v1/apps/{app_id}")).status_code == 204
    assert (await api.http.get(f"/v1/apps/{app_id}/events/{event['id']}")).status_code == 404


async def test_a_declared_transformation_derives_the_old_version(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    api = any_api
    name = type_name()
    await register(api, name, v1_transform="{amount: amount_cents}")
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), event_types=[f"{name}@v1"])

    event = await api.publish(app_id, name, V2_DATA)  # the latest, v2, only
    done = await api.wait_event(app_id, event["id"])
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]
    body, headers = await verified(api, app_id, endpoint, receiver, path)
    assert body["version"] == "v1" and headers["webhook-version"] == "v1"
    assert body["data"] == {"amount": 4200}
    # The event itself keeps what was published.
    assert done["data"] == V2_DATA


async def test_a_failing_transformation_dead_letters_without_sending(any_api: ApiClient, receiver: Receiver) -> None:
    api = any_api
    name = type_name()
    # Gives {"amount": "EUR"}: a string where v1's schema wants an integer.
    await register(api, name, v1_transform="{amount: currency}")
    app_id = await api.create_app()
    old, new, *_ = paths()
    await api.create_endpoint(app_id, receiver.url(old), event_types=[f"{name}@v1"])
    await api.create_endpoint(app_id, receiver.url(new), event_types=[f"{name}@v2"])

    event = await api.publish(app_id, name, V2_DATA)
    done = await api.wait_event(app_id, event["id"])
    by_status = {d["status"]: d for d in done["deliveries"]}
    assert set(by_status) == {"dead_lettered", "succeeded"}
    reason = by_status["dead_lettered"]["last_error"]
    assert "transformation to v1 does not match its schema" in reason and "amount" in reason
    assert "EUR" not in reason  # reasons name places and rules, never the payload's values
    assert receiver.at(old) == []
    assert len(receiver.at(new)) == 1
    assert await api.attempts(app_id, by_status["dead_lettered"]["id"]) == []  # no HTTP attempt was made

    # Fixed and replayed, the dead letter goes out derived by the new transformation.
    r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"transforms": {"v2": "{amount: amount_cents}"}})
    assert r.status_code == 200, r.text
    r = await api.http.post(f"/v1/apps/{app_id}/deliveries/{by_status['dead_lettered']['id']}/replay")
    assert r.status_code == 202, r.text
    await api.wait_event(app_id, event["id"], lambda e: all(d["status"] == "succeeded" for d in e["deliveries"]))
    [got] = receiver.at(old)
    assert got.json()["data"] == {"amount": 4200} and got.json()["version"] == "v1"


async def test_a_version_without_data_or_transformation_dead_letters(api: ApiClient, receiver: Receiver, path: str) -> None:
    name = type_name()
    await register(api, name)
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path), event_types=[f"{name}@v1"])
    event = await api.publish(app_id, name, V2_DATA)
    done = await api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "dead_lettered"
    assert "no data for v1" in delivery["last_error"]
    assert receiver.at(path) == []


async def test_deprecation_is_announced_then_publishing_after_sunset_is_refused(
    api: ApiClient, receiver: Receiver
) -> None:
    name = type_name()
    await register(api, name, v1_transform="{amount: amount_cents}")
    app_id = await api.create_app()
    before, after, *_ = paths()
    endpoint = await api.create_endpoint(app_id, receiver.url(before), event_types=[f"{name}@v1"])
    sunset = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=30)

    r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"sunset_at": sunset.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["deprecated"] is True and r.json()["sunset"] is False
    read = (await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")).json()
    assert read["version_notices"] == [
        {"entry": f"{name}@v1", "event_type": name, "version": "v1",
         "sunset_at": sunset.isoformat().replace("+00:00", "Z"), "state": "deprecated"}
    ]
    # Before the sunset, v1 is still published and delivered, with the deprecation headers.
    r = await publish(api, app_id, {"type": name, "version": "v1", "data": {"amount": 7}})
    assert r.status_code == 202, r.text
    await api.wait_event(app_id, r.json()["id"])
    body, headers = await verified(api, app_id, endpoint, receiver, before)
    assert body["data"] == {"amount": 7} and headers["webhook-version"] == "v1"
    assert headers["webhook-deprecation"] == "true"
    assert datetime.strptime(headers["sunset"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=timezone.utc) == sunset

    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"sunset_at": past.isoformat()})
    assert r.status_code == 200 and r.json()["sunset"] is True
    events_before = (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"]
    for refused in (
        {"type": name, "version": "v1", "data": {"amount": 7}},
        {"type": name, "data": V2_DATA, "versions": {"v1": {"amount": 7}}},
    ):
        r = await publish(api, app_id, refused)
        assert r.status_code == 422, r.text
        assert "reached its sunset" in r.json()["detail"]
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == events_before
    # Subscriptions to it are reported, and still receive what the transformation derives.
    read = (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"]
    assert [n["state"] for n in read[0]["version_notices"]] == ["sunset"]
    await api.create_endpoint(app_id, receiver.url(after), event_types=[f"{name}@v1"])
    event = await api.publish(app_id, name, V2_DATA)
    await api.wait_event(app_id, event["id"])
    [got] = receiver.at(after)
    assert got.json()["data"] == {"amount": 4200} and got.headers["webhook-deprecation"] == "true"


async def test_usage_counts_endpoints_and_deliveries_per_version(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver
) -> None:
    name = type_name()
    await register(api, name, v1_transform="{amount: amount_cents}")
    # Other tests' endpoints subscribed to everything count as unpinned subscribers too.
    unpinned_before = (await api.http.get(f"/v1/event-types/{name}/usage")).json()["unpinned_endpoints"]
    app_id = await api.create_app()
    p1, p2, p3, p4 = paths()
    await api.create_endpoint(app_id, receiver.url(p1), event_types=[f"{name}@v1"])
    await api.create_endpoint(app_id, receiver.url(p2), event_types=[f"{name}@v1"])
    await api.create_endpoint(app_id, receiver.url(p3), event_types=[f"{name}@latest"])
    await api.create_endpoint(app_id, receiver.url(p4), event_types=[name])
    for n in range(2):
        event = await api.publish(app_id, name, {**V2_DATA, "amount_cents": n})
        await api.wait_event(app_id, event["id"])

    r = await api.http.get(f"/v1/event-types/{name}/usage")
    assert r.status_code == 200, r.text
    usage = r.json()
    assert usage["unpinned_endpoints"] - unpinned_before in (1, 2)  # 2 if another test added one meanwhile
    assert [(v["version"], v["endpoints"], v["deliveries_last_day"]) for v in usage["versions"]] == [
        ("v1", 2, 4), ("v2", 1, 4),
    ]
    labels = f'type="{name}",version="v1"'

    async def scrape() -> str:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{sqlite_stack.worker_metrics_port}/metrics")).text

    text = await wait_until(scrape, lambda t: f"hookline_version_deliveries_total{{{labels}}} 4.0" in t, timeout=10)
    assert f'hookline_version_deliveries_total{{type="{name}",version="v2"}} 4.0' in text


async def test_the_catalog_lists_versions_and_exports_asyncapi(api: ApiClient) -> None:
    name = type_name()
    await register(api, name, v1_transform="{amount: amount_cents}")
    r = await api.http.get(f"/v1/event-types/{name}")
    assert r.status_code == 200
    read = r.json()
    assert read["latest_version"] == "v2" and read["schema"] == V2_SCHEMA  # the type's fields are its latest's
    assert [(v["version"], v["schema"], v["example"], v["deprecated"]) for v in read["versions"]] == [
        ("v1", V1_SCHEMA, None, False), ("v2", V2_SCHEMA, V2_DATA, False),
    ]
    assert read["versions"][0]["transforms"] == {"v2": "{amount: amount_cents}"}
    listed = (await api.http.get("/v1/event-types", params={"limit": 250})).json()["data"]
    assert [t["versions"] for t in listed if t["name"] == name] == [read["versions"]]
    # The type's own fields are its latest version's, both ways.
    patched = (await api.http.patch(f"/v1/event-types/{name}", json={"description": "paid, cents"})).json()
    assert [v["description"] for v in patched["versions"]] == ["paid", "paid, cents"]

    r = await api.http.get("/v1/event-types/asyncapi")
    assert r.status_code == 200, r.text
    document = r.json()
    parsed = AsyncAPIV3.model_validate(document)
    assert parsed.asyncapi == "3.0.0"
    messages = document["components"]["messages"]
    for version, schema in (("v1", V1_SCHEMA), ("v2", V2_SCHEMA)):
        message = messages[f"{name}.{version}"]
        assert message["payload"]["properties"]["data"] == schema
        assert message["payload"]["properties"]["version"] == {"const": version}
    assert messages[f"{name}.v2"]["examples"][0]["payload"]["data"] == V2_DATA
    # Every reference points at something in the document.
    def resolve(ref: str) -> Any:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    channel = document["channels"]["webhooks"]
    for ref in channel["messages"].values():
        assert resolve(ref["$ref"])["name"] in {m["name"] for m in messages.values()}
    operation = document["operations"]["sendWebhook"]
    assert operation["action"] == "send" and resolve(operation["channel"]["$ref"]) is channel
    assert len(operation["messages"]) == len(messages)
    for ref in operation["messages"]:
        resolve(ref["$ref"])


async def test_a_type_without_versions_is_delivered_as_before(api: ApiClient, receiver: Receiver) -> None:
    name = type_name()
    r = await api.http.post("/v1/event-types", json={"name": name, "schema": V1_SCHEMA})
    assert r.status_code == 201
    read = r.json()
    assert read["latest_version"] == "v1" and [v["version"] for v in read["versions"]] == ["v1"]
    app_id = await api.create_app()
    plain, pinned_v1, pinned_v2, _ = paths()
    await api.create_endpoint(app_id, receiver.url(plain), event_types=[name])
    await api.create_endpoint(app_id, receiver.url(pinned_v1), event_types=[f"{name}@v1"])
    await api.create_endpoint(app_id, receiver.url(pinned_v2), event_types=[f"{name}@v2"])
    event = await api.publish(app_id, name, {"amount": 1})
    done = await api.wait_event(app_id, event["id"])
    assert sorted(d["status"] for d in done["deliveries"]) == ["dead_lettered", "succeeded", "succeeded"]
    for path in (plain, pinned_v1):
        [got] = receiver.at(path)
        assert json.loads(got.body) == {"id": event["id"], "type": name, "timestamp": event["created_at"], "data": {"amount": 1}}
        assert got.headers["webhook-version"] == "v1"
    assert receiver.at(pinned_v2) == []
    r = await publish(api, app_id, {"type": name, "version": "v2", "data": {"amount": 1}})
    assert r.status_code == 422 and "has one version, v1" in r.json()["detail"]


# --- hostile input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"transforms": {"v1": "{amount: "}},  # not JMESPath
        {"transforms": {"v1": "a" * 5000}},  # over the length limit
        {"transforms": {"v7": "@"}},  # no such version
        {"transforms": {"v3": "@"}},  # itself
        {"transforms": {"latest": "@"}},
        {"transforms": {"v1": "@\u0000"}},
        {"transforms": {f"v{n}": "@" for n in range(1, 30)}},  # too many
        {"schema": {"$ref": "https://example.com/x.json"}},  # remote ref
        {"schema": {"type": "object"}, "example": []},
        {"schema": {"type": "object", "required": ["a"]}, "example": {"b": 1}},  # example breaks the schema
        {"description": "x" * 5000},
        {"unknown": 1},
    ],
)
async def test_hostile_version_definitions_are_refused_and_change_nothing(api: ApiClient, body: dict) -> None:
    name = type_name()
    await register(api, name)
    before = (await api.http.get(f"/v1/event-types/{name}")).json()
    r = await api.http.post(f"/v1/event-types/{name}/versions", json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json=body)
    assert r.status_code == 422, r.text
    assert (await api.http.get(f"/v1/event-types/{name}")).json() == before


@pytest.mark.parametrize("version", ["v0", "v99999", "V1", "1", "v1%2F..", "latest", "v1 ", "%00"])
async def test_malformed_version_paths_are_422(api: ApiClient, version: str) -> None:
    name = type_name()
    await register(api, name)
    for method in ("GET", "PATCH"):
        r = await api.http.request(method, f"/v1/event-types/{name}/versions/{version}", json={} if method == "PATCH" else None)
        assert r.status_code in (404, 422), (method, version, r.status_code, r.text)
        assert r.status_code == 422 or "%" in version  # a mangled path may match no route at all
    assert (await api.http.get(f"/v1/event-types/{name}/versions/v3")).status_code == 404
    assert (await api.http.get(f"/v1/event-types/no.such.{uuid.uuid4().hex}/versions/v1")).status_code == 404


@pytest.mark.parametrize(
    "extra",
    [
        {"version": "v3"},  # unknown
        {"version": "v0"},
        {"version": "latest"},
        {"version": "v1'; --"},
        {"version": 2},
        {"versions": {"v7": {"amount": 1}}},  # unknown
        {"versions": {"v1": {"amount": "x"}}},  # breaks v1's schema
        {"versions": {"v1": [1]}},
        {"versions": {"../v1": {}}},
        {"versions": {f"v{n}": {} for n in range(1, 30)}},
        {"data": {"amount": 1}},  # v1 data published as the latest, v2
    ],
)
async def test_hostile_publishes_are_refused_and_record_nothing(api: ApiClient, extra: dict) -> None:
    name = type_name()
    await register(api, name)
    app_id = await api.create_app()
    r = await publish(api, app_id, {"type": name, "data": V2_DATA, **extra})
    assert r.status_code == 422, r.text
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []


@pytest.mark.parametrize("entry", ["invoice.paid@", "invoice.paid@v0", "invoice.paid@V1", "invoice.paid@v1@v2", "@v1", "a@latest2"])
async def test_malformed_version_pins_are_refused(api: ApiClient, receiver: Receiver, path: str, entry: str) -> None:
    app_id = await api.create_app()
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path), "event_types": [entry]})
    assert r.status_code == 422, r.text
    assert (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"] == []


async def test_sunset_dates_must_be_dates_and_asyncapi_is_a_reserved_name(api: ApiClient) -> None:
    name = type_name()
    await register(api, name)
    for bad in ("soon", "2026-13-45", "2026-12-31T00:00:00", 10**20, "", None):  # a time zone is required
        r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"sunset_at": bad})
        assert r.status_code == (200 if bad is None else 422), (bad, r.text)
    assert (await api.http.get(f"/v1/event-types/{name}/versions/v1")).json()["deprecated"] is False
    r = await api.http.post("/v1/event-types", json={"name": "asyncapi"})
    assert r.status_code == 422


async def test_version_routes_need_the_right_scope(api: ApiClient, sqlite_stack: Stack) -> None:
    name = type_name()
    await register(api, name)
    app_id = await api.create_app()
    r = await api.http.post("/v1/api-keys", json={"name": "reader", "scopes": ["app:read"], "app_id": app_id})
    assert r.status_code == 201, r.text
    async with httpx.AsyncClient(base_url=sqlite_stack.url, headers={"authorization": f"Bearer {r.json()['key']}"}) as reader:
        assert (await reader.get(f"/v1/event-types/{name}/versions/v2")).status_code == 200
        assert (await reader.get("/v1/event-types/asyncapi")).status_code == 200
        assert (await reader.post(f"/v1/event-types/{name}/versions", json={})).status_code == 403
        assert (await reader.patch(f"/v1/event-types/{name}/versions/v1", json={"deprecated": True})).status_code == 403
        assert (await reader.get(f"/v1/event-types/{name}/usage")).status_code == 403
    assert (await api.http.get(f"/v1/event-types/{name}/versions/v1")).json()["deprecated"] is False


async def test_the_producer_library_publishes_versions_and_refuses_what_the_api_refuses(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    from hookline.core.config import Settings
    from hookline.producer import InvalidEvent, Producer
    from hookline.services.errors import SchemaViolation

    name = type_name()
    await register(api, name)
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), event_types=[f"{name}@v1"])
    settings = Settings(
        temporal_address=sqlite_stack.temporal.address, database_url=sqlite_stack.database_url,
        task_queue=sqlite_stack.task_queue, data_dir=sqlite_stack.work_dir,
    )
    async with Producer.from_settings(settings) as producer:
        for versions, error in (
            ({"v1": {"amount": float("nan")}}, InvalidEvent),
            (["v1"], InvalidEvent),
            ({"v0": {"amount": 1}}, SchemaViolation),
            ({"v1": {"amount": "x"}}, SchemaViolation),
        ):
            with pytest.raises(error):
                await producer.publish(app_id, name, V2_DATA, versions=versions)  # type: ignore[arg-type]
        with pytest.raises(SchemaViolation):
            await producer.publish(app_id, name, {"amount": 1}, version="v9")
        assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []
        event = await producer.publish(app_id, name, V2_DATA, versions={"v1": {"amount": 5}})
    await api.wait_event(app_id, event.id)
    body, headers = await verified(api, app_id, endpoint, receiver, path)
    assert body["data"] == {"amount": 5} and headers["webhook-version"] == "v1"


# --- the rules, without the stack ---------------------------------------------------------------


def test_pins_pick_the_version_and_do_not_change_matching() -> None:
    from hookline.core.event_types import subscribed
    from hookline.core.versions import pin_for

    assert subscribed(["invoice.paid@v1"], "invoice.paid") and not subscribed(["invoice.paid@v1"], "invoice.sent")
    assert pin_for(["order.*", "invoice.*@v1", "invoice.paid@v2"], "invoice.paid") == "v1"  # the first match
    assert pin_for(["invoice.paid"], "invoice.paid") is None and pin_for(None, "invoice.paid") is None
    assert pin_for(["invoice.paid@latest"], "invoice.paid") == "latest"


def test_transformations_chain_skip_loops_and_never_quote_values() -> None:
    from types import SimpleNamespace

    from hookline.activities.payloads import _derive
    from hookline.core.versions import TransformFailed, transform

    def version(n: int, transforms: dict | None, schema: dict | None = None) -> SimpleNamespace:
        return SimpleNamespace(version=n, json_schema=schema, transforms=transforms)

    rows = {
        1: version(1, {"v2": "{amount: total}"}, V1_SCHEMA),
        2: version(2, {"v3": "{total: price.cents}"}),
        3: version(3, None),
    }
    assert _derive(1, rows, {3: {"price": {"cents": 7}}}, 1 << 16) == {"amount": 7}
    looping = {1: version(1, {"v2": "@"}), 2: version(2, {"v1": "@"})}
    with pytest.raises(TransformFailed, match="no data for v1"):
        _derive(1, looping, {3: {}}, 1 << 16)

    secret = {"card": "4242-secret"}
    for expression, reason in (
        ("card", "gave str, not a JSON object"),
        ("{n: abs(card)}", "abs() was given a value of the wrong type"),
        ("{amount: card}", "amount breaks 'properties/amount/type'"),
    ):
        with pytest.raises(TransformFailed) as failed:
            transform(expression, secret, schema=V1_SCHEMA, target="v1", max_bytes=1 << 16)
        assert reason in str(failed.value) and "4242" not in str(failed.value)
    with pytest.raises(TransformFailed, match="over the 50-byte limit"):
        transform("{a: card, b: card, c: card, d: card, e: card}", secret, schema=None, target="v1", max_bytes=50)
