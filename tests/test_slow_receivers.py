"""A receiver that takes its time, within the attempt deadline, is waited for; the event stays readable meanwhile."""

import time
from collections.abc import AsyncIterator

import pytest

from hookline.worker import WORKFLOW_TASK_SLOTS_MIN
from tests.harness import ApiClient, Receiver, Stack, StackFactory, api_client, wait_for

DEADLINE_S = 13
SLOW_S = 10  # longer than httpx's own 5 s default timeout, and than the 8 s after which a worker renews a workflow task


@pytest.fixture(scope="module")
def patient_stack(make_stack: StackFactory) -> Stack:
    return make_stack("patient", HOOKLINE_DELIVERY_TIMEOUT_S=str(DEADLINE_S))


@pytest.fixture
async def patient_api(patient_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(patient_stack):
        yield client


@pytest.mark.timeout(90)
async def test_slow_first_try_succeeds_once_and_live_read_answers_meanwhile(
    patient_api: ApiClient, receiver: Receiver, path: str
) -> None:
    api = patient_api
    app_id = await api.create_app()
    slow = await api.create_endpoint(app_id, receiver.url(f"{path}/slow"))
    quick = await api.create_endpoint(app_id, receiver.url(f"{path}/quick"))
    receiver.set(f"{path}/slow", 200, delay=SLOW_S)
    event = await api.publish(app_id, "order.created", {"slow": True})
    await wait_for(lambda: len(receiver.at(f"{path}/slow")) == 1 and len(receiver.at(f"{path}/quick")) == 1)

    # The first try runs inside the workflow task; a query waits for the task's renewal, not for the try.
    started = time.monotonic()
    r = await api.http.get(f"/v1/apps/{app_id}/events/{event['id']}", params={"live": "true"}, timeout=30)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < SLOW_S - 1  # answered while the slow request is still out
    live = {d["endpoint_id"]: d["live"] for d in r.json()["deliveries"]}
    assert live == {slow["id"]: "sending", quick["id"]: None}, live

    done = await api.wait_event(app_id, event["id"], timeout=30)
    by_endpoint = {d["endpoint_id"]: d for d in done["deliveries"]}
    assert by_endpoint[slow["id"]]["status"] == "succeeded" and by_endpoint[slow["id"]]["attempts"] == 1
    [attempt] = await api.attempts(app_id, by_endpoint[slow["id"]]["id"])
    assert attempt["status_code"] == 200 and SLOW_S * 1000 <= attempt["duration_ms"] < DEADLINE_S * 1000, attempt
    assert len(receiver.at(f"{path}/slow")) == 1  # waited for, not timed out and sent again


@pytest.mark.timeout(120)
async def test_many_slow_first_tries_take_more_slots_than_the_minimum_and_hold_up_no_one(
    patient_api: ApiClient, receiver: Receiver, path: str
) -> None:
    """The worker takes workflow tasks by CPU (worker.worker_tuner): first tries that wait on slow
    receivers use none, so it keeps taking tasks, far past its minimum, and a fast endpoint's
    events go out while every slow request is still open."""
    api = patient_api
    slow_path, fast_path = f"{path}/slow", f"{path}/fast"
    receiver.set(slow_path, 200, delay=SLOW_S)
    slow_app, fast_app = await api.create_app("slow"), await api.create_app("fast")
    await api.create_endpoint(slow_app, receiver.url(slow_path))
    await api.create_endpoint(fast_app, receiver.url(fast_path))
    many = 3 * WORKFLOW_TASK_SLOTS_MIN
    started = time.time()
    for i in range(many):
        await api.publish(slow_app, "order.created", {"i": i})
    # Every slow first try is out at once: one worker holds `many` workflow tasks.
    await wait_for(lambda: len(receiver.at(slow_path)) == many, timeout=SLOW_S - 2)
    fast = [await api.publish(fast_app, "order.created", {"i": i}) for i in range(3)]
    await wait_for(lambda: len(receiver.at(fast_path)) == 3, timeout=SLOW_S - 2)
    assert time.time() < started + SLOW_S  # before the first slow request was answered
    assert {r.headers["webhook-id"] for r in receiver.at(fast_path)} == {e["id"] for e in fast}
    assert len(receiver.at(slow_path)) == many  # nothing sent twice
