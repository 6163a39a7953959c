"""Endpoint health on real parts: the circuit breaker, its probes, recovery, auto-disable, and the
operational events Hookline publishes about it to app_hookline, signed like every event."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.harness import ApiClient, Receiver, Stack, TemporalServer, api_client, isolated_stack, wait_until

FAILURES = 3
PROBE_S = 1
AUTO_DISABLE_AFTER_S = 20
# Far more attempts than the test lasts: a dead letter here can only come from the breaker.
PATIENT_RETRY = {"max_attempts": 20, "initial_interval_s": 2, "backoff_coefficient": 1.0, "max_interval_s": 2}
HOOKLINE_APP = "app_hookline"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def health_stack(request: pytest.FixtureRequest, temporal: TemporalServer, work_dir: Path) -> Iterator[Stack]:
    """Both databases (the breaker's transitions are conditional UPDATEs); on PostgreSQL, in the sandbox."""
    if request.param == "sqlite":
        url, env = f"sqlite:///{work_dir / 'endpoint-health.db'}", {}
    else:
        url, env = request.getfixturevalue("postgres").create_database(), {"HOOKLINE_WORKFLOW_SANDBOX": "true"}
    yield from isolated_stack(
        temporal,
        work_dir,
        url,
        HOOKLINE_BREAKER_FAILURES=str(FAILURES),
        HOOKLINE_BREAKER_PROBE_S=str(PROBE_S),
        HOOKLINE_AUTO_DISABLE_AFTER_S=str(AUTO_DISABLE_AFTER_S),
        **env,
    )


@pytest.fixture
async def api(health_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(health_stack):
        yield client


async def endpoint(api: ApiClient, app_id: str, endpoint_id: str) -> dict:
    r = await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def subscribe_operator(api: ApiClient, receiver: Receiver, path: str) -> Webhook:
    """An operator's endpoint on app_hookline; returns the verifier of what it receives."""
    ops = await api.create_endpoint(HOOKLINE_APP, receiver.url(path))
    return Webhook(await api.secret(HOOKLINE_APP, ops["id"]))


async def watched_failing_endpoint(
    api: ApiClient, receiver: Receiver, path: str, status: int, *, events: int
) -> tuple[Webhook, str, dict, list[dict]]:
    """An operator subscribed at path/ops, and a patient endpoint at `path` answering `status` to the
    `events` events published to it: the verifier, the app id, the endpoint and the events."""
    verifier = await subscribe_operator(api, receiver, path + "/ops")
    receiver.set(path, status)
    app_id = await api.create_app()
    ep = await api.create_endpoint(app_id, receiver.url(path), retry=PATIENT_RETRY)
    published = [await api.publish(app_id, "order.created", {"n": i}) for i in range(events)]
    return verifier, app_id, ep, published


def operational(receiver: Receiver, path: str, verifier: Webhook, endpoint_id: str) -> list[dict]:
    """The verified operational events about one endpoint (a signature that fails raises)."""
    events = [verifier.verify(r.body, r.headers) for r in receiver.at(path)]
    return [e for e in events if e["data"].get("endpoint_id") == endpoint_id]


def types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


async def test_a_failing_endpoint_gets_only_probes_then_every_event_after_recovery(
    api: ApiClient, health_stack: Stack, receiver: Receiver, path: str
) -> None:
    verifier, app_id, ep, events = await watched_failing_endpoint(api, receiver, path, 500, events=20)

    failing = await wait_until(lambda: endpoint(api, app_id, ep["id"]), lambda e: e["health"] == "failing", 60)
    assert failing["failing_since"] is not None and failing["status"] == "active"
    metrics = (await api.http.get("/metrics")).text
    assert 'hookline_endpoints{health="failing"} 1.0' in metrics

    # Once failing: one probe a second at most, where retries would have sent ten a second.
    await asyncio.sleep(1.0)  # attempts already on their way at the transition land
    before = len(receiver.at(path))
    await asyncio.sleep(6.0)
    during = len(receiver.at(path)) - before
    assert 1 <= during <= 6 / PROBE_S + 2, during
    # No retry budget was spent meanwhile: nothing dead-lettered, every delivery still open.
    for e in events:
        [delivery] = (await api.event(app_id, e["id"]))["deliveries"]
        assert delivery["status"] in ("paused", "pending", "retrying"), delivery

    receiver.set(path, 200)
    recovered_at = len(receiver.at(path))
    for e in events:
        done = await api.wait_event(app_id, e["id"], timeout=90)
        assert [d["status"] for d in done["deliveries"]] == ["succeeded"], done
    after = receiver.at(path)[recovered_at:]
    assert sorted(h.headers["webhook-id"] for h in after) == sorted(e["id"] for e in events)  # each once

    healthy = await endpoint(api, app_id, ep["id"])
    assert healthy["health"] == "healthy" and healthy["failing_since"] is None
    announced = await wait_until(
        lambda: asyncio.sleep(0, operational(receiver, path + "/ops", verifier, ep["id"])),
        lambda found: types(found) == ["endpoint.failing", "endpoint.recovered"],
    )
    assert all(e["data"]["app_id"] == app_id and e["data"]["reason"] for e in announced)

    worker_metrics = f"http://127.0.0.1:{health_stack.worker_metrics_port}/metrics"
    async with httpx.AsyncClient() as scraper:
        text = (await scraper.get(worker_metrics)).text
    assert 'hookline_endpoint_health_transitions_total{to="failing"}' in text
    assert 'hookline_endpoint_health_transitions_total{to="healthy"}' in text


async def test_auto_disable_dead_letters_and_notifies_then_replays_once_enabled(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    verifier, app_id, ep, events = await watched_failing_endpoint(api, receiver, path, 503, events=4)

    disabled = await wait_until(
        lambda: endpoint(api, app_id, ep["id"]), lambda e: e["status"] == "disabled", AUTO_DISABLE_AFTER_S + 60
    )
    assert "auto-disabled" in disabled["disabled_reason"]
    for e in events:
        done = await api.wait_event(app_id, e["id"], timeout=60)
        assert [d["status"] for d in done["deliveries"]] == ["dead_lettered"], done

    def expected(found: list[dict]) -> bool:
        dead = {e["data"]["event_id"] for e in found if e["type"] == "delivery.dead_lettered"}
        return "endpoint.disabled" in types(found) and dead == {e["id"] for e in events}

    announced = await wait_until(
        lambda: asyncio.sleep(0, operational(receiver, path + "/ops", verifier, ep["id"])), expected, 60
    )
    assert types(announced)[0] == "endpoint.failing"
    [disable] = [e for e in announced if e["type"] == "endpoint.disabled"]
    assert disable["data"] == {"app_id": app_id, "endpoint_id": ep["id"], "reason": disabled["disabled_reason"]}
    assert len(types(announced)) == 2 + len(events)  # each announced once
    dead = [e["data"] for e in announced if e["type"] == "delivery.dead_lettered"]
    assert all(d["app_id"] == app_id and d["delivery_id"].startswith("dlv_") for d in dead)

    # Fixed and enabled again: a fresh breaker, and the dead letters replay.
    receiver.set(path, 200)
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{ep['id']}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["health"] == "healthy" and r.json()["failing_since"] is None
    r = await api.http.post(f"/v1/apps/{app_id}/dead-letters/replay", json={"endpoint_id": ep["id"]})
    assert r.status_code == 202 and r.json() == {"replayed": len(events)}, r.text
    for e in events:
        await api.wait_event(app_id, e["id"], lambda ev: [d["status"] for d in ev["deliveries"]] == ["succeeded"], 60)


async def test_app_hookline_exists_from_start_and_cannot_be_deleted(api: ApiClient) -> None:
    r = await api.http.get(f"/v1/apps/{HOOKLINE_APP}")
    assert r.status_code == 200 and r.json()["name"] == "Hookline"
    # Read by its id, not listed: the list stays newest first.
    listed = (await api.http.get("/v1/apps", params={"limit": 250})).json()["data"]
    assert HOOKLINE_APP not in {a["id"] for a in listed}
    r = await api.http.delete(f"/v1/apps/{HOOKLINE_APP}")
    assert r.status_code == 409 and HOOKLINE_APP in r.json()["detail"]
    assert (await api.http.get(f"/v1/apps/{HOOKLINE_APP}")).status_code == 200


async def test_no_operational_event_about_app_hookline_own_endpoints(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    """An operator endpoint that fails opens its breaker like any other, and says nothing about itself."""
    verifier = await subscribe_operator(api, receiver, path + "/ops")
    receiver.set(path + "/broken-ops", 500)
    broken = await api.create_endpoint(HOOKLINE_APP, receiver.url(path + "/broken-ops"), retry=PATIENT_RETRY)
    # Something to report: another application's endpoint fails too.
    receiver.set(path, 500)
    app_id = await api.create_app()
    ep = await api.create_endpoint(app_id, receiver.url(path), retry=PATIENT_RETRY)
    for i in range(FAILURES):
        await api.publish(app_id, "order.created", {"n": i})
    await wait_until(
        lambda: asyncio.sleep(0, operational(receiver, path + "/ops", verifier, ep["id"])),
        lambda found: "endpoint.failing" in types(found),
        60,
    )
    await wait_until(lambda: endpoint(api, HOOKLINE_APP, broken["id"]), lambda e: e["health"] == "failing", 60)
    await asyncio.sleep(2 * PROBE_S)
    assert operational(receiver, path + "/ops", verifier, broken["id"]) == []


async def test_410_gone_and_an_operator_disable_are_announced_with_their_dead_letters(
    api: ApiClient, receiver: Receiver, path: str
) -> None:
    verifier = await subscribe_operator(api, receiver, path + "/ops")
    app_id = await api.create_app()
    receiver.set(path + "/gone", 410)
    gone = await api.create_endpoint(app_id, receiver.url(path + "/gone"), event_types=["gone.*"])
    # Waits out a far-off retry when the operator disables it.
    far_off = {"max_attempts": 3, "initial_interval_s": 300, "backoff_coefficient": 1.0, "max_interval_s": 300}
    receiver.set(path + "/down", 500)
    down = await api.create_endpoint(app_id, receiver.url(path + "/down"), retry=far_off, event_types=["down.*"])
    to_gone = await api.publish(app_id, "gone.one", {})
    to_down = await api.publish(app_id, "down.one", {})
    await api.wait_event(app_id, to_gone["id"])
    await api.wait_event(app_id, to_down["id"], lambda e: [d["status"] for d in e["deliveries"]] == ["retrying"])
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{down['id']}", json={"status": "disabled"})
    assert r.status_code == 200, r.text
    await api.wait_event(app_id, to_down["id"])

    for ep, event, reason in (
        (gone, to_gone, "receiver answered 410 Gone"),
        (down, to_down, "disabled through the API"),
    ):
        announced = await wait_until(
            lambda ep=ep: asyncio.sleep(0, operational(receiver, path + "/ops", verifier, ep["id"])),
            lambda found: sorted(types(found)) == ["delivery.dead_lettered", "endpoint.disabled"],
            60,
        )
        by_type = {e["type"]: e["data"] for e in announced}
        assert by_type["endpoint.disabled"] == {"app_id": app_id, "endpoint_id": ep["id"], "reason": reason}
        [delivery] = (await api.event(app_id, event["id"]))["deliveries"]
        assert by_type["delivery.dead_lettered"] == {
            "app_id": app_id, "endpoint_id": ep["id"], "event_id": event["id"], "delivery_id": delivery["id"],
        }
