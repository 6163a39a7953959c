"""An event workflow whose history grows long hands its open deliveries to a new run.

The dev server is told to suggest continue-as-new after a few dozen history events, and the
fan-out window is small, so one event to 30 endpoints crosses many pages and several runs,
with retries and a pause in the middle; nothing may be lost or sent twice.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hookline.core.config import Settings
from hookline.core.temporal import ENDPOINT_IDS_ATTR, connect_temporal
from tests.harness import ApiClient, Receiver, Stack, StackFactory, TemporalServer, api_client, steady_retry, wait_for

RETRY = steady_retry(6)


@pytest.fixture(scope="module")
def short_history_stack(make_stack: StackFactory, work_dir: Path) -> Iterator[Stack]:
    temporal = TemporalServer(work_dir, dynamic_config={"limit.historyCount.suggestContinueAsNew": "40"}).start()
    try:
        stack = make_stack("long-history", temporal=temporal, HOOKLINE_FANOUT_WINDOW="4")
        yield stack
        stack.stop()  # before its Temporal server goes
    finally:
        temporal.stop()


@pytest.fixture
async def short_api(short_history_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(short_history_stack):
        yield client


async def test_fan_out_survives_many_continue_as_new(
    short_api: ApiClient, short_history_stack: Stack, receiver: Receiver, path: str
) -> None:
    api = short_api
    app_id = await api.create_app()
    ok = [await api.create_endpoint(app_id, receiver.url(f"{path}/ok/{i}"), retry=RETRY) for i in range(22)]
    flaky = [await api.create_endpoint(app_id, receiver.url(f"{path}/flaky/{i}"), retry=RETRY) for i in range(4)]
    held = [await api.create_endpoint(app_id, receiver.url(f"{path}/held/{i}"), retry=RETRY) for i in range(4)]
    for i in range(4):
        receiver.set(f"{path}/flaky/{i}", 503, 503, 200)
    for endpoint in held:
        assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/pause")).status_code == 200

    event = await api.publish(app_id, "order.created", {"big": "fan-out"})
    await api.wait_event(
        app_id, event["id"],
        lambda e: len(e["deliveries"]) == 30 and sum(d["status"] == "succeeded" for d in e["deliveries"]) == 26,
        timeout=90,
    )
    for endpoint in held:
        assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/resume")).status_code == 200
    done = await api.wait_event(
        app_id, event["id"], lambda e: all(d["status"] == "succeeded" for d in e["deliveries"]), timeout=60
    )

    assert len(done["deliveries"]) == 30
    for i in range(22):
        assert len(receiver.at(f"{path}/ok/{i}")) == 1, f"ok/{i} got {len(receiver.at(f'{path}/ok/{i}'))}"
    for i in range(4):
        assert len(receiver.at(f"{path}/flaky/{i}")) == 3
        assert len(receiver.at(f"{path}/held/{i}")) == 1
    by_endpoint = {d["endpoint_id"]: d for d in done["deliveries"]}
    assert all(by_endpoint[e["id"]]["attempts"] == 3 for e in flaky)

    client = await connect_temporal(Settings(temporal_address=short_history_stack.temporal.address))
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{event['workflow_id']}'")]
    # How many runs depends on how the first tries batch into workflow tasks; one continue-as-new at least.
    assert len(runs) >= 2, "the history limit should have forced a continue-as-new"
    described = await client.get_workflow_handle(event["workflow_id"]).describe()
    ids = described.typed_search_attributes.get(ENDPOINT_IDS_ATTR)
    assert ids is not None and set(ids) == {e["id"] for e in ok + flaky + held}


async def test_whole_event_replay_goes_page_by_page_across_runs(
    short_api: ApiClient, short_history_stack: Stack, receiver: Receiver, path: str
) -> None:
    """Each page of a replay is one window of deliveries, so no payload grows with the event's size."""
    api = short_api
    app_id = await api.create_app()
    endpoints = [await api.create_endpoint(app_id, receiver.url(f"{path}/{i}"), retry=RETRY) for i in range(18)]
    event = await api.publish(app_id, "order.created", {"replay": "me"})
    await api.wait_event(app_id, event["id"], timeout=60)
    client = await connect_temporal(Settings(temporal_address=short_history_stack.temporal.address))
    runs_before = len([w async for w in client.list_workflows(f"WorkflowId = '{event['workflow_id']}'")])

    for i in range(18):  # the replay's first tries fail: its retries take workflow tasks enough to hand over
        receiver.set(f"{path}/{i}", 503, 200)
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay")
    assert r.status_code == 202 and r.json() == {"replayed": 18}, r.text
    await wait_for(lambda: all(len(receiver.at(f"{path}/{i}")) == 3 for i in range(18)), timeout=60)
    done = await api.wait_event(app_id, event["id"])
    assert {d["status"] for d in done["deliveries"]} == {"succeeded"}
    assert all(len(receiver.at(f"{path}/{i}")) == 3 for i in range(18))  # each twice more (503, 200), no more

    runs = [w async for w in client.list_workflows(f"WorkflowId = '{event['workflow_id']}'")]
    assert len(runs) > runs_before + 1, "the replay should have crossed a hand-over"
    biggest_page = 0
    for run in runs:
        history = await client.get_workflow_handle(event["workflow_id"], run_id=run.run_id).fetch_history()
        for e in history.events:
            if e.HasField("marker_recorded_event_attributes"):
                for payloads in e.marker_recorded_event_attributes.details.values():
                    for payload in payloads.payloads:
                        biggest_page = max(biggest_page, payload.data.count(b'"delivery_id"'))
    assert 0 < biggest_page <= 4, biggest_page  # HOOKLINE_FANOUT_WINDOW of this stack
    assert {d["endpoint_id"] for d in done["deliveries"]} == {e["id"] for e in endpoints}
