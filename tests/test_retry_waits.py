"""Long waits between attempts hold no fan-out slot; a replay during an attempt is not undone by it."""

import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from tests.harness import FAR_OFF_RETRY, ApiClient, Receiver, Stack, StackFactory, api_client, holds_for, wait_for


@pytest.fixture(scope="module")
def narrow_stack(make_stack: StackFactory) -> Stack:
    return make_stack("narrow-window", HOOKLINE_FANOUT_WINDOW="2")


@pytest.fixture
async def narrow_api(narrow_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(narrow_stack):
        yield client


def by_endpoint(event: dict) -> dict[str, dict]:
    return {d["endpoint_id"]: d for d in event["deliveries"]}


async def test_failing_endpoints_waiting_to_retry_do_not_block_the_rest_of_the_event(
    narrow_api: ApiClient, receiver: Receiver, path: str
) -> None:
    api = narrow_api
    app_id = await api.create_app()
    # Created first, so they take the whole window of 2 before the healthy endpoint is reached.
    failing = [await api.create_endpoint(app_id, receiver.url(f"{path}/down/{i}"), retry=FAR_OFF_RETRY) for i in range(2)]
    for i in range(2):
        receiver.set(f"{path}/down/{i}", 500)
    healthy = await api.create_endpoint(app_id, receiver.url(f"{path}/up"))

    published = time.time()
    event = await api.publish(app_id, "order.created", {"n": 1})
    await wait_for(lambda: len(receiver.at(f"{path}/up")) == 1, timeout=20)
    # The two failing attempts end in either order; once both have, their slots are free.
    state = await api.wait_event(
        app_id,
        event["id"],
        lambda e: by_endpoint(e)[healthy["id"]]["status"] == "succeeded"
        and all(by_endpoint(e)[f["id"]]["status"] == "retrying" for f in failing),
        timeout=10,
    )
    for endpoint in failing:
        delivery = by_endpoint(state)[endpoint["id"]]
        assert delivery["attempts"] == 1
        wait_s = datetime.fromisoformat(delivery["next_attempt_at"]).timestamp() - published
        assert FAR_OFF_RETRY["initial_interval_s"] - 50 < wait_s < FAR_OFF_RETRY["initial_interval_s"] + 30, wait_s
    assert [len(receiver.at(f"{path}/down/{i}")) for i in range(2)] == [1, 1]

    # A replay calls a waiting delivery now, on a fresh budget, with the same webhook-id.
    receiver.set(f"{path}/down/0", 200)
    replayed = by_endpoint(state)[failing[0]["id"]]
    assert (await api.http.post(f"/v1/apps/{app_id}/deliveries/{replayed['id']}/replay")).status_code == 202
    await wait_for(lambda: len(receiver.at(f"{path}/down/0")) == 2, timeout=15)
    assert {r.headers["webhook-id"] for r in receiver.at(f"{path}/down/0")} == {event["id"]}
    assert [a["status_code"] for a in await api.attempts(app_id, replayed["id"])] == [500, 200]

    # A pause reaches a waiting delivery too: it is held; on resume it goes out at once.
    base = f"/v1/apps/{app_id}/endpoints/{failing[1]['id']}"
    assert (await api.http.post(base + "/pause")).status_code == 200
    await api.wait_event(app_id, event["id"], lambda e: by_endpoint(e)[failing[1]["id"]]["status"] == "paused")
    receiver.set(f"{path}/down/1", 200)
    assert (await api.http.post(base + "/resume")).status_code == 200
    done = await api.wait_event(
        app_id, event["id"], lambda e: {d["status"] for d in e["deliveries"]} == {"succeeded"}, timeout=20
    )
    assert by_endpoint(done)[failing[1]["id"]]["attempts"] == 2
    assert len(receiver.at(f"{path}/down/1")) == 2


async def test_replay_during_an_attempt_gets_its_fresh_budget(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    api = any_api
    app_id = await api.create_app()
    # One attempt only: the attempt in flight would dead-letter the delivery if it spent the replay's budget.
    await api.create_endpoint(app_id, receiver.url(path), retry={"max_attempts": 1})
    receiver.set(path, 500, delay=1.5)
    event = await api.publish(app_id, "order.created", {"n": 2})
    await wait_for(lambda: len(receiver.at(path)) == 1)
    receiver.set(path, 200)  # the request in flight keeps its slow 500
    [delivery] = (await api.event(app_id, event["id"]))["deliveries"]
    assert (await api.http.post(f"/v1/apps/{app_id}/deliveries/{delivery['id']}/replay")).status_code == 202

    done = await api.wait_event(app_id, event["id"], lambda e: e["deliveries"][0]["status"] == "succeeded", timeout=20)
    assert done["deliveries"][0]["attempts"] == 2
    assert [a["status_code"] for a in await api.attempts(app_id, delivery["id"])] == [500, 200]
    await holds_for(lambda: len(receiver.at(path)) == 2, 1)  # and no third request
