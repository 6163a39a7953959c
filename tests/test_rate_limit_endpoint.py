"""Endpoint health: an endpoint's `rate_limit`, shared by every worker, and tenant fairness keys."""

import asyncio
from contextlib import contextmanager

import httpx
import pytest
from temporalio.client import Client

from hookline.core.ids import event_workflow_id
from tests.harness import ApiClient, Receiver, Stack, api_client, running_stack, wait_for, wait_until

RATE = 5
EVENTS = 30
# 30 deliveries at 5/s take 29 intervals of 0.2 s: at least 5.8 s when spaced exactly.
MIN_SPAN_S = 5.0


def busiest_window(times: list[float], width: float) -> int:
    """The most arrivals in any `width` seconds."""
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t <= width) for i, t in enumerate(times))


async def publish_burst(api: ApiClient, receiver: Receiver, path: str) -> tuple[str, list[dict]]:
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(path), rate_limit=RATE)
    assert endpoint["rate_limit"] == RATE
    events = await asyncio.gather(*(api.publish(app_id, "order.created", {"n": n}) for n in range(EVENTS)))
    return app_id, list(events)


async def assert_delivered_once_at_the_rate(api: ApiClient, receiver: Receiver, path: str, app_id: str, events: list[dict]) -> None:
    done = [await api.wait_event(app_id, event["id"], timeout=90) for event in events]
    deliveries = [d for event in done for d in event["deliveries"]]
    assert [d["status"] for d in deliveries] == ["succeeded"] * EVENTS
    # Waiting for a slot spends no attempt.
    assert [d["attempts"] for d in deliveries] == [1] * EVENTS
    hits = receiver.at(path)
    assert sorted(h.headers["webhook-id"] for h in hits) == sorted(e["id"] for e in events)  # each exactly once
    times = [h.at for h in hits]
    assert max(times) - min(times) >= MIN_SPAN_S
    # Unlimited, all 30 arrive within about a second. Spaced, 2 s hold 10 slots; a little slack for a late timer.
    assert busiest_window(times, 2.0) <= 2 * RATE + 4


async def test_rate_limit_spaces_deliveries_and_spends_no_attempt(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id, events = await publish_burst(any_api, receiver, path)
    # Once the first few went out, the rest wait seconds for their slots, on a workflow timer: no
    # activity is running for them. Watch one of those (which one waits longest is up to the race).
    await wait_for(lambda: len(receiver.at(path)) >= 3, timeout=30)
    arrived = {r.headers["webhook-id"] for r in receiver.at(path)}
    last = next(e["id"] for e in reversed(events) if e["id"] not in arrived)
    waiting = await wait_until(
        lambda: any_api.http.get(f"/v1/apps/{app_id}/events/{last}", params={"live": "true"}),
        lambda r: r.json()["deliveries"] and r.json()["deliveries"][0]["live"] == "waiting_retry",
        timeout=10, every=0.1,
    )
    assert waiting.json()["deliveries"][0]["status"] == "pending"
    await assert_delivered_once_at_the_rate(any_api, receiver, path, app_id, events)


def succeeded_attempts(metrics: str) -> float:
    name = 'hookline_delivery_attempts_total{outcome="succeeded"}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name))


async def test_two_worker_processes_share_one_endpoints_rate_limit(postgres_stack: Stack, receiver: Receiver, path: str) -> None:
    """The limit is per endpoint, not per worker: two workers together still send 5/s.

    The second worker serves a task queue of its own, which a second API publishes to, so each
    worker surely delivers half of the events; both share the database, as in production.
    """
    other = Stack(
        temporal=postgres_stack.temporal, database_url=postgres_stack.database_url,
        work_dir=postgres_stack.work_dir, extra_env=postgres_stack.extra_env,
    )
    with contextmanager(running_stack)(other):
        async with httpx.AsyncClient() as scraper:

            async def sent() -> list[float]:
                ports = (postgres_stack.worker_metrics_port, other.worker_metrics_port)
                return [succeeded_attempts((await scraper.get(f"http://127.0.0.1:{p}/metrics")).text) for p in ports]

            before = await sent()
            async for api in api_client(postgres_stack):
                async for other_api in api_client(other):
                    app_id = await api.create_app()
                    await api.create_endpoint(app_id, receiver.url(path), rate_limit=RATE)
                    apis = [api, other_api] * (EVENTS // 2)
                    events = await asyncio.gather(*(a.publish(app_id, "order.created", {"n": n}) for n, a in enumerate(apis)))
                    await assert_delivered_once_at_the_rate(api, receiver, path, app_id, list(events))
            after = await sent()
        assert [b - a for a, b in zip(before, after, strict=True)] == [EVENTS // 2, EVENTS // 2]


# --- the API -------------------------------------------------------------------------------------

HOSTILE_RATES = [0, -1, 10001, 2**63, 1e308, 5.5, "5", True, [5], {"per_s": 5}]


async def test_rate_limit_is_created_read_updated_and_cleared(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    plain = await api.create_endpoint(app_id, receiver.url(path))
    assert plain["rate_limit"] is None
    endpoint = await api.create_endpoint(app_id, receiver.url(path), rate_limit=10000)
    url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    assert (await api.http.get(url)).json()["rate_limit"] == 10000
    r = await api.http.patch(url, json={"rate_limit": 1})
    assert r.status_code == 200 and r.json()["rate_limit"] == 1
    r = await api.http.patch(url, json={"description": "unrelated"})
    assert r.json()["rate_limit"] == 1  # left as it was
    r = await api.http.patch(url, json={"rate_limit": None})
    assert r.status_code == 200 and r.json()["rate_limit"] is None
    assert (await api.http.get(url)).json()["rate_limit"] is None


@pytest.mark.parametrize("value", HOSTILE_RATES, ids=repr)
async def test_hostile_rate_limits_are_refused_and_change_nothing(
    api: ApiClient, receiver: Receiver, path: str, value: object
) -> None:
    app_id = await api.create_app()
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path), "rate_limit": value})
    assert r.status_code == 422, r.text
    assert "rate_limit" in r.text
    assert (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"] == []

    endpoint = await api.create_endpoint(app_id, receiver.url(path), rate_limit=7)
    url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    r = await api.http.patch(url, json={"rate_limit": value})
    assert r.status_code == 422, r.text
    assert (await api.http.get(url)).json() == endpoint


# --- fairness ------------------------------------------------------------------------------------

async def test_event_workflow_carries_the_application_as_fairness_key(api: ApiClient, sqlite_stack: Stack) -> None:
    """Temporal dispatches round-robin between fairness keys: the key must be the application."""
    app_id = await api.create_app()
    event = await api.publish(app_id, "order.created", {})
    client = await Client.connect(sqlite_stack.temporal.address)
    handle = client.get_workflow_handle(event_workflow_id(event["id"]))
    started = None
    async for history_event in handle.fetch_history_events():
        started = history_event.workflow_execution_started_event_attributes
        break
    assert started is not None and started.priority.fairness_key == app_id
