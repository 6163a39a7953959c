"""The production topology under chaos, on real processes: a Temporal dev server, PostgreSQL, two
APIs and three workers. With 60 events in the middle of their retries, kill -9 one API, one
worker and PostgreSQL itself (restarted a few seconds later): every accepted event arrives and
reads `succeeded`, the survivors carry on without a restart and say in their logs that the store
went away and came back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import TOKEN, PostgresCluster, Receiver, Stack, TemporalServer

pytestmark = pytest.mark.slow

EVENTS = 60
# Every event's first tries fail: 503 for the first 2 answers per event on average, so the kill
# lands while deliveries wait between retries, and they all end well within their budget.
FAILURES = 2 * EVENTS
RETRY = {"max_attempts": 20, "initial_interval_s": 1, "backoff_coefficient": 1.5, "max_interval_s": 4}


@pytest.fixture
def topology(temporal: TemporalServer, tmp_path: Path) -> Iterator[tuple[PostgresCluster, list[Stack], list[Stack]]]:
    """PostgreSQL of its own (the test kills it), two APIs and three workers on one task queue."""
    pg = PostgresCluster(tmp_path).start()
    url = pg.create_database()
    queue = "hl-chaos-" + uuid.uuid4().hex[:6]
    # The default pool grows to 30 connections a process: five processes stay far below max_connections.
    # The deliveries fail against a 503 across the outage on purpose; the circuit breaker would hold
    # them after a few failures (tests/test_endpoint_health.py covers that), so it is off here.
    no_breaker = {"HOOKLINE_BREAKER_FAILURES": "1000000"}
    stacks = [
        Stack(temporal=temporal, database_url=url, work_dir=tmp_path, task_queue=queue, extra_env=no_breaker)
        for _ in range(3)
    ]
    apis, workers = stacks[:2], stacks
    try:
        for stack in workers:
            stack.start_worker()
        for stack in apis:
            stack.start_api()
        yield pg, apis, workers
    except BaseException:
        for stack in stacks:
            print(stack.logs())
        raise
    finally:
        for stack in stacks:
            stack.stop()
        pg.stop()


async def _get(client: httpx.AsyncClient, url: str) -> httpx.Response | None:
    """A read that may meet the outage: None instead of an error."""
    try:
        return await client.get(url)
    except httpx.HTTPError:
        return None


async def test_kill_9_of_an_api_a_worker_and_postgresql_loses_nothing_accepted(
    topology: tuple[PostgresCluster, list[Stack], list[Stack]], receiver: Receiver, path: str
) -> None:
    pg, apis, workers = topology
    receiver.set(path, *([503] * FAILURES), 200)
    clients = [httpx.AsyncClient(base_url=api.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) for api in apis]
    try:
        r = await clients[0].post("/v1/apps", json={"name": "chaos"})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        r = await clients[0].post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path), "retry": RETRY})
        assert r.status_code == 201, r.text
        accepted: list[str] = []
        for n in range(EVENTS):  # half through each API
            r = await clients[n % 2].post(
                f"/v1/apps/{app_id}/events", json={"type": "chaos.test", "data": {"n": n}}, headers={"idempotency-key": f"chaos-{n}"}
            )
            assert r.status_code == 202, r.text
            accepted.append(r.json()["id"])

        # Mid-retries: a good part of the failures answered, none of the successes yet.
        deadline = time.monotonic() + 120
        while len(receiver.at(path)) < FAILURES // 2:
            assert time.monotonic() < deadline, f"only {len(receiver.at(path))} attempts arrived"
            await asyncio.sleep(0.2)

        apis[1].api.kill()  # type: ignore[union-attr]
        workers[0].worker.kill()  # type: ignore[union-attr]
        pg.kill()
        outage_began = time.monotonic()
        # The surviving API, asked during the outage, answers 503 (try again) and stays up.
        during = await _get(clients[0], f"/v1/apps/{app_id}/events/{accepted[0]}")
        if during is not None:
            assert during.status_code == 503 and during.headers["retry-after"] == "5", during.text
            assert during.json() == {"detail": "the database is unavailable, try again"}
        await asyncio.sleep(max(0.0, 4 - (time.monotonic() - outage_began)))
        pg.restart()

        # Every accepted event reads `succeeded`, through the surviving API.
        pending = set(accepted)
        deadline = time.monotonic() + 240
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} events not delivered: {sorted(pending)[:5]}"
            for event_id in list(pending):
                r = await _get(clients[0], f"/v1/apps/{app_id}/events/{event_id}")
                if r is not None and r.status_code == 200 and [d["status"] for d in r.json()["deliveries"]] == ["succeeded"]:
                    pending.discard(event_id)
            await asyncio.sleep(0.5)
    finally:
        for client in clients:
            await client.aclose()

    delivered = {json.loads(received.body)["data"]["n"] for received in receiver.at(path) if b'"n"' in received.body}
    assert delivered == set(range(EVENTS))
    # The survivors never needed a restart, and said what happened to the store.
    survivors = [apis[0].api, workers[1].worker, workers[2].worker]
    for proc in survivors:
        assert proc is not None and proc.proc is not None and proc.proc.poll() is None, f"{proc and proc.name} exited"
    logs = [proc.log_path.read_text(errors="replace") for proc in survivors if proc is not None]  # whole logs
    assert any("the store is unreachable" in log for log in logs), "no survivor logged the outage"
    for log in logs:
        if "the store is unreachable" in log:
            assert "the store answers again" in log
