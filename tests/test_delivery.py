"""The core flow on both databases: publish → signed POST, retries, dead letters, idempotency, fan-out."""

import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.harness import ApiClient, Receiver, wait_for


async def test_signed_delivery_verifies_with_standardwebhooks(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await any_api.create_app()
    endpoint = await any_api.create_endpoint(app_id, receiver.url(path))
    event = await any_api.publish(app_id, "invoice.paid", {"amount": 4200, "currency": "EUR", "note": "€ ✓"})

    done = await any_api.wait_event(app_id, event["id"])
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]
    [got] = receiver.at(path)
    secret = await any_api.secret(app_id, endpoint["id"])
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload == {"id": event["id"], "type": "invoice.paid", "timestamp": event["created_at"], "data": event["data"]}
    assert got.headers["webhook-id"] == event["id"]
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Hookline/")
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").verify(got.body, got.headers)


async def test_retry_then_success_keeps_the_attempt_log(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 500, 502, 200)
    app_id = await any_api.create_app()
    await any_api.create_endpoint(app_id, receiver.url(path))
    event = await any_api.publish(app_id, "order.created", {"n": 1})

    done = await any_api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3
    attempts = await any_api.attempts(app_id, delivery["id"])
    assert [(a["number"], a["status_code"]) for a in attempts] == [(1, 500), (2, 502), (3, 200)]
    assert attempts[0]["error"] == "HTTP 500" and attempts[2]["error"] is None
    hits = receiver.at(path)
    assert len(hits) == 3
    assert {h.headers["webhook-id"] for h in hits} == {event["id"]}
    assert len({h.body for h in hits}) == 1  # the same bytes on every try


async def test_exhausted_attempts_dead_letter(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 503)
    app_id = await any_api.create_app()
    await any_api.create_endpoint(app_id, receiver.url(path))
    event = await any_api.publish(app_id, "order.created", {"n": 2})

    done = await any_api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "dead_lettered"
    assert delivery["attempts"] == 3 and delivery["last_status_code"] == 503
    assert len(receiver.at(path)) == 3
    listed = (await any_api.http.get(f"/v1/apps/{app_id}/deliveries", params={"status": "dead_lettered"})).json()
    assert [d["id"] for d in listed["data"]] == [delivery["id"]]


async def test_idempotency_key_returns_the_same_event_without_second_fan_out(
    any_api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await any_api.create_app()
    await any_api.create_endpoint(app_id, receiver.url(path))
    first = await any_api.publish(app_id, "invoice.paid", {"n": 1}, key="order-1")
    again = await any_api.publish(app_id, "invoice.paid", {"n": 1}, key="order-1")
    other = await any_api.publish(app_id, "invoice.paid", {"n": 2}, key="order-2")

    assert again["id"] == first["id"] and again["workflow_id"] == first["workflow_id"]
    assert other["id"] != first["id"]
    await any_api.wait_event(app_id, first["id"])
    await any_api.wait_event(app_id, other["id"])
    listed = (await any_api.http.get(f"/v1/apps/{app_id}/events")).json()["data"]
    assert sorted(e["id"] for e in listed) == sorted([first["id"], other["id"]])
    assert sorted(json.loads(h.body)["id"] for h in receiver.at(path)) == sorted([first["id"], other["id"]])


async def test_fan_out_follows_type_filters_and_tenants(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await any_api.create_app("tenant-a")
    other_app = await any_api.create_app("tenant-b")
    targets = {
        "all": await any_api.create_endpoint(app_id, receiver.url(path + "/all")),
        "invoice-wild": await any_api.create_endpoint(app_id, receiver.url(path + "/inv"), event_types=["invoice.*"]),
        "exact": await any_api.create_endpoint(app_id, receiver.url(path + "/exact"), event_types=["invoice.paid"]),
        "users": await any_api.create_endpoint(app_id, receiver.url(path + "/users"), event_types=["user.created"]),
        "other-tenant": await any_api.create_endpoint(other_app, receiver.url(path + "/other")),
    }
    disabled = await any_api.create_endpoint(app_id, receiver.url(path + "/disabled"))
    r = await any_api.http.patch(f"/v1/apps/{app_id}/endpoints/{disabled['id']}", json={"status": "disabled"})
    assert r.status_code == 200 and r.json()["status"] == "disabled"

    event = await any_api.publish(app_id, "invoice.paid", {"n": 3})
    done = await any_api.wait_event(app_id, event["id"])
    reached = {d["endpoint_id"] for d in done["deliveries"]}
    assert reached == {targets[k]["id"] for k in ("all", "invoice-wild", "exact")}
    await wait_for(lambda: len(receiver.at(path + "/exact")) == 1)
    for quiet in ("/users", "/other", "/disabled"):
        assert receiver.at(path + quiet) == []

    refund = await any_api.publish(app_id, "invoice.refund.created", {"n": 4})
    done = await any_api.wait_event(app_id, refund["id"])
    assert {d["endpoint_id"] for d in done["deliveries"]} == {targets["all"]["id"], targets["invoice-wild"]["id"]}


async def test_schema_violation_is_refused_and_records_nothing(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    import uuid

    name = f"payment.{uuid.uuid4().hex[:8]}"
    schema = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer", "minimum": 0}}}
    r = await any_api.http.post("/v1/event-types", json={"name": name, "schema": schema})
    assert r.status_code == 201, r.text
    assert r.json()["schema"] == schema
    app_id = await any_api.create_app()
    await any_api.create_endpoint(app_id, receiver.url(path))

    bad = await any_api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"amount": -5}})
    assert bad.status_code == 422
    assert "amount" in bad.json()["detail"]
    missing = await any_api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {}})
    assert missing.status_code == 422
    assert (await any_api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []

    good = await any_api.publish(app_id, name, {"amount": 5})
    await any_api.wait_event(app_id, good["id"])
    assert [json.loads(h.body)["data"] for h in receiver.at(path)] == [{"amount": 5}]
