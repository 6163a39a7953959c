"""A publish that recorded its event and died before starting the fan-out is finished by the worker."""

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from temporalio.client import ScheduleHandle

from hookline.activities.recovery import STRAGGLER_AGE
from hookline.core.config import Settings
from hookline.core.temporal import connect_temporal
from hookline.services.recovery import recovery_schedule_id
from hookline.store import hot_path
from hookline.store.tables import Event, utcnow
from tests.harness import ApiClient, Receiver, Stack, StackFactory, api_client, holds_for, store_sessions, wait_until

RECOVERY_S = 1


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def recovering_stack(request: pytest.FixtureRequest, make_stack: StackFactory) -> Iterator[Stack]:
    stack = make_stack("recovery", database=request.param, HOOKLINE_DISPATCH_RECOVERY_S=str(RECOVERY_S))
    yield stack
    stack.stop()  # now, not with the module: the next database's stack takes over


@pytest.fixture
async def recovering_api(recovering_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(recovering_stack):
        yield client


async def record_without_dispatch(stack: Stack, app_id: str, data: dict, key: str, age: timedelta) -> str:
    """What a publish leaves behind when its process died between recording and starting, `age` ago: a row only."""
    async with store_sessions(stack.database_url, stack.work_dir) as sessions, sessions() as session:
        event, created = await hot_path.insert_event(
            session, app_id=app_id, type="order.created", data=data, idempotency_key=key
        )
        assert created and not event.dispatched
        await session.exec(update(Event).where(Event.id == event.id).values(created_at=utcnow() - age))
        await session.commit()
        return event.id


async def test_an_event_recorded_but_never_started_is_delivered_once(
    recovering_api: ApiClient, recovering_stack: Stack, receiver: Receiver, path: str
) -> None:
    api = recovering_api
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    # A publish that may still be under way is left alone.
    recent_id = await record_without_dispatch(recovering_stack, app_id, {"recent": True}, key="k-0", age=timedelta(0))
    event_id = await record_without_dispatch(
        recovering_stack, app_id, {"stranded": True}, key="k-1", age=STRAGGLER_AGE + timedelta(seconds=1)
    )

    done = await api.wait_event(app_id, event_id, timeout=30)
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]
    [hit] = receiver.at(path)
    assert hit.headers["webhook-id"] == event_id and b'"stranded":true' in hit.body.replace(b" ", b"")

    # The producer retrying with its key gets the same event; nothing goes out twice.
    again = await api.publish(app_id, "order.created", {"stranded": True}, key="k-1")
    assert again["id"] == event_id
    # More recovery runs come and go (one starts only when the one before it is done), and
    # none of them starts the event again.
    schedule = await recovery_schedule(recovering_stack)
    runs = (await schedule.describe()).info.num_actions
    await wait_until(schedule.describe, lambda d: d.info.num_actions >= runs + 3, timeout=30)
    await holds_for(lambda: len(receiver.at(path)) == 1, 1)
    assert (await api.event(app_id, recent_id))["deliveries"] == []


async def test_a_published_event_is_marked_dispatched_by_its_workflow(
    recovering_api: ApiClient, recovering_stack: Stack, receiver: Receiver, path: str
) -> None:
    """Its workflow's first resolve marks it, so the recovery never looks at it; an event with
    no subscriber at all is marked too."""
    api = recovering_api
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path), event_types=["order.*"])
    delivered = await api.publish(app_id, "order.created", {"n": 1})
    unheard = await api.publish(app_id, "invoice.paid", {"n": 2})
    await api.wait_event(app_id, delivered["id"])

    async def dispatched() -> dict[str, bool]:
        stack = recovering_stack
        async with store_sessions(stack.database_url, stack.work_dir) as sessions, sessions() as session:
            return {e: (await session.get(Event, e)).dispatched for e in (delivered["id"], unheard["id"])}

    await wait_until(dispatched, lambda marks: all(marks.values()), timeout=10)


async def recovery_schedule(stack: Stack) -> ScheduleHandle:
    settings = Settings(temporal_address=stack.temporal.address, task_queue=stack.task_queue)
    return (await connect_temporal(settings)).get_schedule_handle(recovery_schedule_id(settings))


async def test_the_recovery_runs_on_a_temporal_schedule(recovering_stack: Stack) -> None:
    """Visible, and pausable, in the Web UI's Schedules."""
    settings = Settings(temporal_address=recovering_stack.temporal.address, task_queue=recovering_stack.task_queue)
    handle = await recovery_schedule(recovering_stack)
    [interval] = (await handle.describe()).schedule.spec.intervals
    assert interval.every.total_seconds() == RECOVERY_S
    runs = await wait_until(handle.describe, lambda d: d.info.num_actions >= 2, timeout=15)
    assert runs.info.recent_actions[-1].action.workflow_id.startswith(f"dispatch-recovery-{settings.task_queue}")
