"""Operator controls on real parts: replay, pause/resume, consumer-aware retries, rotation, producers."""

import asyncio
import json
import time
import uuid
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookline.core.config import Settings
from hookline.core.temporal import connect_temporal
from hookline.producer import Producer
from tests.harness import (
    FAR_OFF_RETRY, KEEPS_RETRYING, SLOW_RETRY, ApiClient, Receiver, Stack, holds_for, wait_for, wait_until,
)


def statuses(event: dict) -> list[str]:
    return [d["status"] for d in event["deliveries"]]


async def test_replay_dead_letter_after_consumer_is_fixed(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 500)
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    [dead] = (await api.wait_event(app_id, event["id"]))["deliveries"]
    assert dead["status"] == "dead_lettered"

    receiver.set(path, 200)
    r = await api.http.post(f"/v1/apps/{app_id}/deliveries/{dead['id']}/replay")
    assert r.status_code == 202, r.text
    done = await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["succeeded"])
    [delivery] = done["deliveries"]
    assert delivery["id"] == dead["id"] and delivery["workflow_id"] == event["workflow_id"]
    hits = receiver.at(path)
    assert len(hits) == 4 and {h.headers["webhook-id"] for h in hits} == {event["id"]}
    attempts = await api.attempts(app_id, delivery["id"])
    assert [a["status_code"] for a in attempts] == [500, 500, 500, 200]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]


async def test_replay_succeeded_delivery_sends_again_and_event_replay_picks_endpoints(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app()
    one = await api.create_endpoint(app_id, receiver.url(path + "/one"))
    two = await api.create_endpoint(app_id, receiver.url(path + "/two"))
    event = await api.publish(app_id, "invoice.paid", {"n": 2})
    await api.wait_event(app_id, event["id"])

    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay", json={"endpoint_id": two["id"]})
    assert r.status_code == 202 and r.json() == {"replayed": 1}
    await wait_for(lambda: len(receiver.at(path + "/two")) == 2)
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay")
    assert r.status_code == 202 and r.json() == {"replayed": 2}
    await wait_for(lambda: len(receiver.at(path + "/one")) == 2 and len(receiver.at(path + "/two")) == 3)
    done = await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["succeeded", "succeeded"])
    by_endpoint = {d["endpoint_id"]: d for d in done["deliveries"]}
    assert by_endpoint[one["id"]]["attempts"] == 2 and by_endpoint[two["id"]]["attempts"] == 3
    bodies = {h.body for h in receiver.at(path + "/one") + receiver.at(path + "/two")}
    assert len(bodies) == 1  # a replay sends the very same envelope

    other = await api.create_endpoint(app_id, receiver.url(path + "/three"))
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay", json={"endpoint_id": other["id"]})
    assert r.status_code == 404


async def test_bulk_dead_letter_replay_counts_and_delivers(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path + "/a", 500)
    receiver.set(path + "/b", 500)
    app_id = await api.create_app()
    a = await api.create_endpoint(app_id, receiver.url(path + "/a"))
    b = await api.create_endpoint(app_id, receiver.url(path + "/b"))
    events = [await api.publish(app_id, "order.created", {"n": i}) for i in range(3)]
    for e in events:
        await api.wait_event(app_id, e["id"])
    r = await api.http.get(f"/v1/apps/{app_id}/deliveries", params={"status": "dead_lettered"})
    assert len(r.json()["data"]) == 6

    receiver.set(path + "/a", 200)
    r = await api.http.post(f"/v1/apps/{app_id}/dead-letters/replay", json={"endpoint_id": a["id"]})
    assert r.status_code == 202 and r.json() == {"replayed": 3}
    await wait_until(
        lambda: api.http.get(f"/v1/apps/{app_id}/deliveries", params={"endpoint_id": a["id"], "status": "succeeded"}),
        lambda resp: len(resp.json()["data"]) == 3,
    )
    dead_b = (await api.http.get(f"/v1/apps/{app_id}/deliveries", params={"endpoint_id": b["id"]})).json()["data"]
    assert {d["status"] for d in dead_b} == {"dead_lettered"}

    receiver.set(path + "/b", 200)
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    r = await api.http.post(f"/v1/apps/{app_id}/dead-letters/replay", json={"since": future})
    assert r.json() == {"replayed": 0}
    r = await api.http.post(f"/v1/apps/{app_id}/dead-letters/replay", json={})
    assert r.json() == {"replayed": 3}
    await wait_until(
        lambda: api.http.get(f"/v1/apps/{app_id}/deliveries", params={"status": "succeeded"}),
        lambda resp: len(resp.json()["data"]) == 6,
    )
    assert len({h.headers["webhook-id"] for h in receiver.at(path + "/b")}) == 3


async def test_pause_holds_everything_and_resume_sends_it_promptly(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 503)
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), retry=SLOW_RETRY)
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    caught = await api.publish(app_id, "invoice.paid", {"n": "caught-in-retries"})
    await api.wait_event(app_id, caught["id"], lambda e: statuses(e) == ["retrying"])
    assert len(receiver.at(path)) == 1

    r = await api.http.post(base + "/pause")
    assert r.status_code == 200 and r.json()["status"] == "paused"
    # The delivery waiting out its 30 s backoff is held, not left to fire.
    await api.wait_event(app_id, caught["id"], lambda e: statuses(e) == ["paused"], timeout=15)
    held = [await api.publish(app_id, "invoice.paid", {"n": i}) for i in range(25)]
    for e in held[:3] + held[-3:]:
        await api.wait_event(app_id, e["id"], lambda e: statuses(e) == ["paused"])
    await holds_for(lambda: len(receiver.at(path)) == 1, 2)  # nothing reaches the endpoint while paused
    [delivery] = (await api.event(app_id, caught["id"]))["deliveries"]
    assert delivery["attempts"] == 1  # and no attempt was burned

    receiver.set(path, 200)
    resumed_at = time.monotonic()
    r = await api.http.post(base + "/resume")
    assert r.status_code == 200 and r.json()["status"] == "active"
    wanted = {caught["id"]} | {e["id"] for e in held}
    await wait_for(lambda: {h.headers["webhook-id"] for h in receiver.at(path)} >= wanted, timeout=20)
    assert time.monotonic() - resumed_at < 20  # seconds, not the 30 s backoff step
    for e in [caught, *held]:
        await api.wait_event(app_id, e["id"], lambda e: statuses(e) == ["succeeded"])
    assert [a["status_code"] for a in await api.attempts(app_id, delivery["id"])] == [503, 200]


async def test_patch_status_pauses_and_resumes_too(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    assert (await api.http.patch(base, json={"status": "paused"})).json()["status"] == "paused"
    event = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["paused"])
    assert (await api.http.patch(base, json={"status": "active"})).json()["status"] == "active"
    await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["succeeded"])
    assert len(receiver.at(path)) == 1


async def test_retry_after_sets_the_next_delay(api: ApiClient, receiver: Receiver, path: str) -> None:
    # Backoff alone would wait 30 s; the receiver asks for 1 s and then for an HTTP date ~2 s out.
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path), retry=SLOW_RETRY)
    receiver.set(path, 429, headers={"Retry-After": "1"})
    event = await api.publish(app_id, "invoice.paid", {})
    await wait_for(lambda: len(receiver.at(path)) == 1)
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=3), usegmt=True)
    receiver.set(path, 503, 200, headers={"Retry-After": when})
    await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["succeeded"], timeout=20)
    hits = receiver.at(path)
    assert len(hits) == 3
    assert 0.8 <= hits[1].at - hits[0].at < 6
    assert 1.0 <= hits[2].at - hits[1].at < 8


async def test_410_gone_disables_the_endpoint_until_reenabled(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 410)
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), retry=SLOW_RETRY)
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    event = await api.publish(app_id, "invoice.paid", {})
    done = await api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "dead_lettered" and delivery["attempts"] == 1 and delivery["last_status_code"] == 410
    got = (await api.http.get(base)).json()
    assert got["status"] == "disabled" and "410" in got["disabled_reason"]
    details = set()
    for refused in (api.http.post(base + "/pause"), api.http.post(base + "/resume"),
                    api.http.patch(base, json={"status": "paused", "description": "changed?"})):
        answer = await refused
        assert answer.status_code == 409
        details.add(answer.json()["detail"])
    assert details == {"endpoint is disabled; PATCH status to active to re-enable it"}  # one message for all
    assert (await api.http.get(base)).json() == got  # a refused request changes nothing

    later = await api.publish(app_id, "invoice.paid", {})

    async def nothing_for_the_disabled_endpoint() -> bool:
        return (await api.event(app_id, later["id"]))["deliveries"] == [] and len(receiver.at(path)) == 1

    await holds_for(nothing_for_the_disabled_endpoint, 1.5)

    receiver.set(path, 200)
    assert (await api.http.patch(base, json={"status": "active"})).json()["status"] == "active"
    again = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, again["id"], lambda e: statuses(e) == ["succeeded"])


async def test_endpoint_retry_policy_overrides_the_default(api: ApiClient, receiver: Receiver, path: str) -> None:
    receiver.set(path, 500)
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(
        app_id, receiver.url(path), retry={"max_attempts": 4, "initial_interval_s": 1, "backoff_coefficient": 2}
    )
    assert endpoint["retry"]["max_attempts"] == 4
    assert endpoint["retry"]["max_interval_s"] == Settings().retry_max_interval_s  # unset: the default
    event = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, event["id"])
    hits = receiver.at(path)
    assert len(hits) == 4
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
    # 1, 2, 4 s (Temporal schedules retries in whole seconds): it backs off.
    assert gaps[0] < 2 and gaps[2] > gaps[0] + 1.5


async def test_secret_rotation_signs_with_both_during_grace(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    old = await api.secret(app_id, endpoint["id"])
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret/rotate")
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert await api.secret(app_id, endpoint["id"]) == new

    during = await api.publish(app_id, "invoice.paid", {"when": "grace"})
    await api.wait_event(app_id, during["id"])
    [hit] = receiver.at(path)
    assert len(hit.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(hit.body, hit.headers)
    Webhook(new).verify(hit.body, hit.headers)

    await asyncio.sleep(4.5)  # the test stack's grace period is 4 s
    after = await api.publish(app_id, "invoice.paid", {"when": "after"})
    await api.wait_event(app_id, after["id"])
    hit = receiver.at(path)[-1]
    assert len(hit.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(hit.body, hit.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(hit.body, hit.headers)


async def test_producer_publishes_without_http_and_shares_idempotency(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    settings = Settings(
        temporal_address=sqlite_stack.temporal.address,
        database_url=sqlite_stack.database_url,
        task_queue=sqlite_stack.task_queue,
        data_dir=sqlite_stack.work_dir,
    )
    key = uuid.uuid4().hex
    async with Producer.from_settings(settings) as producer:
        event = await producer.publish(app_id, "invoice.paid", {"from": "producer"}, idempotency_key=key)
        again = await producer.publish(app_id, "invoice.paid", {"from": "producer"}, idempotency_key=key)
    assert again.id == event.id
    via_http = await api.publish(app_id, "invoice.paid", {"from": "producer"}, key=key)
    assert via_http["id"] == event.id
    done = await api.wait_event(app_id, event.id)
    assert statuses(done) == ["succeeded"]
    await holds_for(lambda: [json.loads(h.body)["data"] for h in receiver.at(path)] == [{"from": "producer"}], 1)


@pytest.mark.parametrize("held", ["paused", "waiting_retry"])
@pytest.mark.parametrize("closing", ["disable", "delete"])
async def test_disabling_or_deleting_an_endpoint_dead_letters_its_open_deliveries_at_once(
    api: ApiClient, receiver: Receiver, path: str, held: str, closing: str
) -> None:
    """Neither the hour a paused delivery waits between re-checks nor a ten-minute backoff delays it."""
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), retry=FAR_OFF_RETRY)
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    if held == "paused":
        await api.http.post(base + "/pause")
    else:
        receiver.set(path, 500)
    event = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["paused" if held == "paused" else "retrying"])

    if closing == "disable":
        r = await api.http.patch(base, json={"status": "disabled"})
        assert r.status_code == 200 and r.json()["status"] == "disabled", r.text
    else:
        assert (await api.http.delete(base)).status_code == 204
    done = await api.wait_event(app_id, event["id"], lambda e: statuses(e) == ["dead_lettered"], timeout=20)
    [delivery] = done["deliveries"]
    assert ("disabled" if closing == "disable" else "deleted") in delivery["last_error"]
    assert len(receiver.at(path)) == (0 if held == "paused" else 1)  # no attempt beyond the one that failed


async def test_replay_leaves_out_deliveries_to_deleted_endpoints(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    kept = await api.create_endpoint(app_id, receiver.url(path + "/kept"))
    gone = await api.create_endpoint(app_id, receiver.url(path + "/gone"))
    event = await api.publish(app_id, "invoice.paid", {})
    done = await api.wait_event(app_id, event["id"])
    gone_delivery = next(d for d in done["deliveries"] if d["endpoint_id"] == gone["id"])
    assert (await api.http.delete(f"/v1/apps/{app_id}/endpoints/{gone['id']}")).status_code == 204

    r = await api.http.post(f"/v1/apps/{app_id}/deliveries/{gone_delivery['id']}/replay")
    assert r.status_code == 409 and "deleted" in r.json()["detail"], r.text
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay", json={"endpoint_id": gone["id"]})
    assert r.status_code == 404, r.text
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay")
    assert r.status_code == 202 and r.json() == {"replayed": 1}, r.text

    await wait_for(lambda: len(receiver.at(path + "/kept")) == 2)
    await holds_for(lambda: len(receiver.at(path + "/gone")) == 1, 1)
    after = await api.event(app_id, event["id"])
    assert next(d for d in after["deliveries"] if d["endpoint_id"] == gone["id"]) == gone_delivery
    assert kept["id"] in {d["endpoint_id"] for d in after["deliveries"]}


async def test_resume_reaches_more_held_deliveries_than_one_sweep_page(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    """The resume is a durable sweep that walks the held deliveries page by page (200 a page)."""
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    assert (await api.http.post(base + "/pause")).status_code == 200
    gate = asyncio.Semaphore(8)

    async def publish(i: int) -> str:
        async with gate:
            return (await api.publish(app_id, "invoice.paid", {"n": i}))["id"]

    ids = set(await asyncio.gather(*(publish(i) for i in range(230))))
    await wait_until(
        lambda: api.http.get(f"/v1/apps/{app_id}/deliveries", params={"status": "paused", "limit": 250}),
        lambda r: len(r.json()["data"]) == 230,
        timeout=90,
    )
    assert receiver.at(path) == []

    assert (await api.http.post(base + "/resume")).status_code == 200
    await wait_for(lambda: {h.headers["webhook-id"] for h in receiver.at(path)} == ids, timeout=90)
    assert len(receiver.at(path)) == 230  # each once

    client = await connect_temporal(Settings(temporal_address=sqlite_stack.temporal.address))
    [sweep_id] = {w.id async for w in client.list_workflows(f"WorkflowId STARTS_WITH 'sweep-resume-{endpoint['id']}'")}
    assert await client.get_workflow_handle(sweep_id).result() == 230  # every held delivery reached


async def test_live_read_asks_the_workflow_what_each_open_delivery_is_doing(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app()
    slow = await api.create_endpoint(app_id, receiver.url(path + "/slow"), retry=KEEPS_RETRYING)
    waiting = await api.create_endpoint(app_id, receiver.url(path + "/waiting"), retry=FAR_OFF_RETRY)
    held = await api.create_endpoint(app_id, receiver.url(path + "/held"))
    done = await api.create_endpoint(app_id, receiver.url(path + "/done"))
    receiver.set(path + "/slow", 200, delay=5)  # beyond the stack's 2 s attempt deadline: always sending
    receiver.set(path + "/waiting", 500)
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{held['id']}/pause")).status_code == 200
    event = await api.publish(app_id, "invoice.paid", {})

    expected = {slow["id"]: "sending", waiting["id"]: "waiting_retry", held["id"]: "paused", done["id"]: None}

    async def read_live() -> dict:
        r = await api.http.get(f"/v1/apps/{app_id}/events/{event['id']}", params={"live": "true"})
        assert r.status_code == 200, r.text
        return r.json()

    state = await wait_until(
        read_live, lambda e: {d["endpoint_id"]: d["live"] for d in e["deliveries"]} == expected, timeout=20
    )
    by_endpoint = {d["endpoint_id"]: d for d in state["deliveries"]}
    assert by_endpoint[done["id"]]["status"] == "succeeded" and by_endpoint[waiting["id"]]["status"] == "retrying"

    plain = await api.event(app_id, event["id"])  # without live=true the workflow is not asked
    assert {d["live"] for d in plain["deliveries"]} == {None}
    r = await api.http.get(f"/v1/apps/{app_id}/events/{event['id']}", params={"live": "perhaps"})
    assert r.status_code == 422, r.text

    # Closed: nothing is open any more, and the read does not replay the finished run.
    for endpoint in (slow, waiting, held):
        assert (await api.http.delete(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}")).status_code == 204
    await api.wait_event(app_id, event["id"], timeout=30)
    await wait_until(read_live, lambda e: {d["live"] for d in e["deliveries"]} == {None}, timeout=10)
