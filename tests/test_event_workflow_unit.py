"""The event workflow alone, on a real dev server, with fake activities of the same names.

No store, no receiver, no API: each fake answers from a small script, so a test says what the
delivery activity decides and checks what the workflow does with it. The dev server suggests
continue-as-new early (after 60 history events), so one test can cross a hand-over.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from hookline.activities.delivery import DEAD_LETTERED, ENDPOINT_PAUSED, RETRY_LATER
from hookline.cli import temporal_binary
from hookline.core.messages import (
    DeliverInput,
    DeliverResult,
    DeliveryTarget,
    EndpointSignal,
    EventWorkflowInput,
    MarkDeliveryInput,
    PrepareReplayInput,
    ReplayRequest,
    ResolveTargetsInput,
    ResolveTargetsResult,
)
from hookline.core.retry import RetrySchedule
from hookline.core.temporal import ENDPOINT_IDS_ATTR
from hookline.workflows.event import EventWorkflow
from tests.harness import FAST_RETRY

RETRY = RetrySchedule(**FAST_RETRY)
# A Temporal dev server of the module's own (no shared fixture shows it): the stack tier.
pytestmark = pytest.mark.stack
SHORT = timedelta(milliseconds=200)


@dataclass
class Try:
    delivery_id: str
    local: bool  # a first try runs as a local activity


@dataclass
class FakeActivities:
    """The record and delivery activities, by name; `answers` scripts each delivery's tries."""

    targets: list[DeliveryTarget]
    answers: dict[str, list[str]] = field(default_factory=dict)  # delivery id → "ok", "fail", "paused", "later"
    paused: set[str] = field(default_factory=set)  # endpoint ids
    tries: list[Try] = field(default_factory=list)
    marks: list[tuple[str, str]] = field(default_factory=list)
    replays: list[PrepareReplayInput] = field(default_factory=list)
    later_s: float = 2.0  # the wait a "later" answer asks for

    @activity.defn
    async def resolve_targets(self, input: ResolveTargetsInput) -> ResolveTargetsResult:
        return ResolveTargetsResult(targets=self.targets)

    @activity.defn
    async def mark_delivery(self, input: MarkDeliveryInput) -> bool:
        self.marks.append((input.delivery_id, input.status))
        return True

    @activity.defn
    async def prepare_replay(self, input: PrepareReplayInput) -> list[DeliveryTarget]:
        self.replays.append(input)
        return [t for t in self.targets if input.delivery_ids is None or t.delivery_id in input.delivery_ids]

    @activity.defn
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        target = next(t for t in self.targets if t.delivery_id == input.delivery_id)
        if target.endpoint_id in self.paused:  # as the real one: no attempt is made
            raise ApplicationError("endpoint is paused", type=ENDPOINT_PAUSED, non_retryable=True)
        self.tries.append(Try(input.delivery_id, activity.info().is_local))
        script = self.answers.get(input.delivery_id, [])
        answer = script.pop(0) if script else "ok"
        if answer == "fail":
            if len(self.attempts(input.delivery_id)) >= input.retry.max_attempts:
                raise ApplicationError("HTTP 500", type=DEAD_LETTERED, non_retryable=True)
            raise ApplicationError("HTTP 500", type="AttemptFailed", next_retry_delay=SHORT)
        if answer == "later":
            raise ApplicationError("next attempt is far off", self.later_s, type=RETRY_LATER, non_retryable=True)
        return DeliverResult(status_code=200)

    def attempts(self, delivery_id: str) -> list[Try]:
        return [t for t in self.tries if t.delivery_id == delivery_id]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        search_attributes=[ENDPOINT_IDS_ATTR],
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"],
    ) as env:
        yield env


def target(n: int, endpoint: str = "ep_1") -> DeliveryTarget:
    return DeliveryTarget(delivery_id=f"dlv_{n}", endpoint_id=endpoint, retry=RETRY)


Body = Callable[[WorkflowHandle], Awaitable[None]]


async def run_event(client: Client, fakes: FakeActivities, body: Body | None = None) -> WorkflowHandle:
    """Run one event workflow to its end against the fakes; `body` acts while it runs."""
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    activities = [fakes.resolve_targets, fakes.mark_delivery, fakes.prepare_replay, fakes.deliver]
    async with Worker(client, task_queue=queue, workflows=[EventWorkflow], activities=activities):
        handle = await client.start_workflow(
            EventWorkflow.run,
            EventWorkflowInput(event_id=f"evt_{uuid.uuid4().hex[:8]}", app_id="app_1", event_type="order.created"),
            id=f"event-unit-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        if body is not None:
            await body(handle)
        await asyncio.wait_for(handle.result(), timeout=30)
    return handle


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while True:
            done = check()
            if done if isinstance(done, bool) else await done:
                return
            await asyncio.sleep(0.05)


async def live(handle: WorkflowHandle) -> dict[str, str]:
    return await handle.query(EventWorkflow.open_deliveries)


async def test_a_delivery_that_succeeds_at_once_takes_one_local_try(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(targets=[target(1), target(2, "ep_2")])
    await run_event(env.client, fakes)
    assert sorted((t.delivery_id, t.local) for t in fakes.tries) == [("dlv_1", True), ("dlv_2", True)]
    assert fakes.marks == []


async def test_a_failed_first_try_goes_on_as_an_activity_until_it_succeeds(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(targets=[target(1)], answers={"dlv_1": ["fail", "fail", "ok"]})
    await run_event(env.client, fakes)
    assert [t.local for t in fakes.tries] == [True, False, False]
    assert fakes.marks == []


async def test_a_delivery_that_exhausts_its_attempts_closes_as_a_dead_letter(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(targets=[target(1), target(2, "ep_2")], answers={"dlv_1": ["fail"] * 5})
    await run_event(env.client, fakes)
    # The activity's verdict ends it: no try after the budget, and the other delivery is untouched.
    assert len(fakes.attempts("dlv_1")) == RETRY.max_attempts
    assert len(fakes.attempts("dlv_2")) == 1


async def test_retry_later_waits_on_a_workflow_timer_holding_no_slot(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(targets=[target(1)], answers={"dlv_1": ["later", "ok"]}, later_s=3)
    waiting: list[dict[str, str]] = []

    async def body(handle: WorkflowHandle) -> None:
        async def seen_waiting() -> bool:
            waiting.append(await live(handle))
            return waiting[-1] == {"dlv_1": "waiting_retry"}

        await until(seen_waiting)
        assert len(fakes.tries) == 1  # the next try waits for the timer

    handle = await run_event(env.client, fakes, body)
    assert [t.local for t in fakes.tries] == [True, False]
    timers = [e async for e in handle.fetch_history_events() if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    assert len(timers) == 1


async def test_a_paused_endpoint_holds_its_delivery_until_resumed(env: WorkflowEnvironment) -> None:
    fakes = FakeActivities(targets=[target(1), target(2, "ep_2")], paused={"ep_1"})

    async def body(handle: WorkflowHandle) -> None:
        async def held() -> bool:
            return await live(handle) == {"dlv_1": "paused"}

        await until(held)
        assert fakes.marks == [("dlv_1", "paused")] and fakes.attempts("dlv_1") == []
        fakes.paused.clear()
        await handle.signal(EventWorkflow.resume_endpoint, EndpointSignal(endpoint_id="ep_1"))

    await run_event(env.client, fakes, body)
    assert len(fakes.attempts("dlv_1")) == 1 and len(fakes.attempts("dlv_2")) == 1


async def test_a_repeated_replay_signal_is_ignored_across_continue_as_new(env: WorkflowEnvironment) -> None:
    # dlv_1 keeps asking for a far-off retry, so the run stays open while replays grow its history.
    fakes = FakeActivities(targets=[target(1)], answers={"dlv_1": ["later"] * 50}, later_s=600)

    async def body(handle: WorkflowHandle) -> None:
        first_run = (await handle.describe()).run_id

        async def replay(request_id: str) -> None:
            # The request id rides along in delivery_ids, so each prepare_replay call names its request.
            request = ReplayRequest(request_id=request_id, delivery_ids=["dlv_1", request_id])
            await handle.signal(EventWorkflow.replay, request)
            await until(lambda: replayed()[-1:] == [request_id])

        def replayed() -> list[str]:
            return [r.delivery_ids[1] for r in fakes.replays if r.delivery_ids]

        async def handed_over() -> bool:
            return (await handle.describe()).run_id != first_run

        sent = 0
        while not await handed_over():
            assert sent < 30, "the run never continued as new"
            sent += 1
            await replay(f"req_{sent}")
        # A repeat of a request the first run took: signals are taken in order, so once the next
        # request is served, the repeat would have been served before it.
        await handle.signal(EventWorkflow.replay, ReplayRequest(request_id="req_1", delivery_ids=["dlv_1", "req_1"]))
        fakes.answers["dlv_1"] = []  # the next try succeeds, so the workflow ends
        await replay("req_last")
        assert replayed() == [f"req_{n}" for n in range(1, sent + 1)] + ["req_last"]

    await run_event(env.client, fakes, body)
    assert fakes.tries[-1].delivery_id == "dlv_1"
