"""One workflow per event: resolve the subscribed endpoints, deliver to each, take signals.

Deterministic orchestration only; every read and write happens in activities. When the
history grows long, the run hands its open deliveries to a new run (continue-as-new), so an
event with thousands of endpoints, or one replayed for months, stays within Temporal's limits.

Reading order: `run` (resolve, then serve replays, then hand over or end); `_deliver` (the
tries of one delivery, each ending in an `Outcome`); the signals, which only change state.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from hookline.activities.delivery import DEAD_LETTERED, ENDPOINT_PAUSED, RETRY_LATER, DeliveryActivities
    from hookline.activities.delivery import RATE_LIMITED
    from hookline.activities.bookkeeping import BookkeepingActivities
    from hookline.core.messages import (
        DeliverInput,
        DeliveryTarget,
        EndpointSignal,
        EventWorkflowInput,
        HandOver,
        MarkDeliveryInput,
        PrepareReplayInput,
        RateSlot,
        ReplayRequest,
        ResolveTargetsInput,
    )
    from hookline.core.summaries import delivery_summary, endpoints_details
    from hookline.core.temporal import ENDPOINT_IDS_ATTR
    from hookline.workflows.policies import (
        DELIVERY_TIMEOUT_SLACK,
        PAUSE_RECHECK,
        STORE_RETRY,
        STORE_TIMEOUT,
        delivery_retry_policy,
    )

# Named, because signal-with-start takes the signal by name.
REPLAY_SIGNAL = "replay"
# Named, so it reads well in the Web UI's Queries tab and in `temporal workflow query`.
LIVE_QUERY = "open_deliveries"

# The server fails a workflow whose search attribute value passes 2 KiB (its default limit):
# HooklineEndpointIds lists the first endpoints only, within this budget.
ENDPOINT_IDS_ATTR_BUDGET = 1800

# Open deliveries of one run, held ones included. A hand-over carries them all in one payload
# (about 220 bytes each), which must stay well under Temporal's 2 MB limit.
OPEN_DELIVERIES_CAP = 4000
# Replay request ids a hand-over carries, newest first: a request's signals are repeated within
# minutes (a sweep's retried page), never months later. About 40 bytes each.
SEEN_REQUESTS_CARRIED = 1000

# The first try of a delivery runs once, inside the workflow task; whatever it does not settle
# goes to the regular activity, which waits out the backoff the attempt recorded.
FIRST_TRY_RETRY = RetryPolicy(maximum_attempts=1)


class Phase(StrEnum):
    """What an open delivery is doing now; the `open_deliveries` query answers with these."""

    QUEUED = "queued"  # waiting for a slot of the window (or about to go again)
    PAUSED = "paused"  # held by its paused endpoint
    SENDING = "sending"  # a first try or an activity run is open: an attempt, or a short wait between attempts
    WAITING_RETRY = "waiting_retry"  # its next attempt is far off: waiting on a timer


# Held deliveries take no window slot and run no activity; they do not count towards the window.
HELD = frozenset({Phase.PAUSED, Phase.WAITING_RETRY})


@dataclass(frozen=True)
class Outcome:
    """How one try of a delivery ended: `done` (the delivery is closed), `again` (go again at once:
    a pause, a replay or a hand-over cut it short), or `wait` (the next try comes after `delay`)."""

    kind: Literal["done", "again", "wait"]
    delay: timedelta = timedelta(0)


DONE = Outcome("done")
AGAIN = Outcome("again")


def wait(delay: timedelta) -> Outcome:
    return Outcome("wait", delay)


@dataclass
class Delivery:
    """One open delivery of this run. Its phase changes only through `EventWorkflow._move`."""

    target: DeliveryTarget
    phase: Phase = Phase.QUEUED
    # The activity run to cancel on a pause, replay or hand-over. None while a first try is out:
    # a first try is never cancelled, that would cut its request off mid-way, unrecorded.
    activity: workflow.ActivityHandle | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    # The rate-limit slot the last try reserved; the next try sends in it, once.
    rate_slot: RateSlot | None = None


@workflow.defn
class EventWorkflow:
    @workflow.init
    def __init__(self, input: EventWorkflowInput) -> None:
        self._input = input
        self._window = asyncio.Semaphore(input.window)
        # A first run starts as if handed nothing: it resolves endpoints if it fans out.
        handed = input.handed_over or HandOver(resolving=input.fan_out)
        self._handed_in = handed.deliveries
        self._resolving = handed.resolving
        self._resolve_after = handed.resolve_after
        self._deliveries: dict[str, Delivery] = {}
        self._held = 0  # deliveries in a HELD phase, kept by _move
        self._paused_endpoints: set[str] = set(handed.paused_endpoints)
        self._closed_endpoints: set[str] = set()  # disabled or deleted while this run was going
        self._replays: list[ReplayRequest] = list(handed.pending_replays)
        self._seen_requests: dict[str, None] = dict.fromkeys(handed.seen_requests)  # ordered, oldest first
        self._endpoint_ids: list[str] = list(handed.endpoint_ids)
        self._resolved = 0  # endpoints this run resolved, for the Web UI's current details
        self._handing_over = False
        self._carry: list[DeliveryTarget] = []  # open deliveries stopped for the hand-over
        self._broken: Exception | None = None  # what broke a delivery task: a bug, never a delivery failure

    # --- The run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: EventWorkflowInput) -> None:
        for target in self._handed_in:
            self._launch(target)
        await self._resolve_endpoints()
        while True:
            await self._wait(lambda: bool(self._replays) or not self._deliveries or self._long_history())
            if self._long_history():
                await self._hand_over()  # continues as new: does not return
            if not self._replays:
                break
            await self._start_replay(self._replays.pop(0))
        await self._wait(workflow.all_handlers_finished)

    async def _resolve_endpoints(self) -> None:
        """Resolve the subscribed endpoints a page (one window) at a time, launching a delivery for each."""
        while self._resolving and not self._long_history():
            await self._wait_for_room()
            if self._long_history():
                return
            page = await workflow.execute_local_activity_method(
                BookkeepingActivities.resolve_targets,
                ResolveTargetsInput(
                    event_id=self._input.event_id, after_endpoint_id=self._resolve_after, limit=self._input.window
                ),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
            self._note_endpoints(page.targets)
            for target in page.targets:
                self._launch(target)
            self._resolve_after = page.next_after
            self._resolving = page.next_after is not None
            self._resolved += len(page.targets)
            # Shown beside the static summary in the Web UI; not part of the history.
            workflow.set_current_details(endpoints_details(self._resolved, self._resolving))

    async def _start_replay(self, request: ReplayRequest) -> None:
        """Restart the request's deliveries a page (one window) at a time, as room frees up.

        A hand-over between pages carries the rest of the request, with where it stopped.
        """
        while True:
            await self._wait_for_room()
            if self._long_history():
                self._replays.insert(0, request)
                return
            targets = await workflow.execute_local_activity_method(
                BookkeepingActivities.prepare_replay,
                PrepareReplayInput(
                    event_id=self._input.event_id,
                    delivery_ids=request.delivery_ids,
                    endpoint_id=request.endpoint_id,
                    after_delivery_id=request.after_delivery_id,
                    limit=self._input.window,
                ),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
            self._note_endpoints(targets)
            replayed = {t.delivery_id for t in targets}
            # A delivery still waiting out a backoff goes again now, with its fresh budget.
            self._cancel_activities(lambda d: d.target.delivery_id in replayed)  # noqa: B023 (called at once)
            for target in targets:
                delivery = self._deliveries.get(target.delivery_id)
                if delivery is None:
                    self._launch(target)
                elif delivery.phase is Phase.WAITING_RETRY:
                    self._move(delivery, Phase.QUEUED)  # cuts its wait short
            if len(targets) < self._input.window:
                return
            request = request.model_copy(update={"after_delivery_id": targets[-1].delivery_id})

    async def _wait_for_room(self) -> None:
        """Take on the next page only when the window is at most one page ahead and the run holds
        fewer than OPEN_DELIVERIES_CAP open deliveries: bounded memory, history and hand-over."""
        window = self._input.window

        def room() -> bool:
            if self._long_history():
                return True
            open_deliveries = len(self._deliveries)
            return open_deliveries - self._held < 2 * window and open_deliveries < OPEN_DELIVERIES_CAP

        await self._wait(room)

    async def _wait(self, condition: Callable[[], bool]) -> None:
        """Wait on the run's main path. A delivery task that raised fails the workflow task, so
        Temporal retries it and the Web UI shows why, instead of the delivery vanishing."""
        await workflow.wait_condition(lambda: condition() or self._broken is not None)
        if self._broken is not None:
            raise RuntimeError(f"a delivery task failed: {self._broken!r}") from self._broken

    def _long_history(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    async def _hand_over(self) -> None:
        """Stop every open delivery where it stands and continue them in a new run."""
        self._handing_over = True
        self._cancel_activities(lambda d: True)
        await self._wait(lambda: not self._deliveries)
        await self._wait(workflow.all_handlers_finished)
        handed = HandOver(
            resolving=self._resolving,
            resolve_after=self._resolve_after,
            deliveries=self._carry,
            paused_endpoints=sorted(self._paused_endpoints),
            pending_replays=self._replays,
            seen_requests=list(self._seen_requests)[-SEEN_REQUESTS_CARRIED:],
            endpoint_ids=self._endpoint_ids,
        )
        workflow.continue_as_new(self._input.model_copy(update={"handed_over": handed}))

    # --- One delivery ----------------------------------------------------------------------

    def _launch(self, target: DeliveryTarget) -> None:
        # A look-up that read the endpoint as paused just before it was closed must not hold it.
        if target.paused and target.endpoint_id not in self._closed_endpoints:
            self._paused_endpoints.add(target.endpoint_id)
        delivery = Delivery(target)
        self._deliveries[target.delivery_id] = delivery
        delivery.task = asyncio.create_task(self._deliver(delivery))

    async def _deliver(self, delivery: Delivery) -> None:
        """Try until the delivery is closed, or until a hand-over carries it to the next run."""
        first = True
        try:
            while True:
                outcome = await self._try(delivery, first=first)
                first = False
                if outcome.kind == "done":
                    return
                if outcome.kind == "wait":
                    await self._wait_for_retry(delivery, outcome.delay)
                if self._handing_over:
                    self._carry.append(delivery.target.model_copy(update={"paused": False}))
                    return
        except Exception as exc:
            self._broken = exc
        finally:
            del self._deliveries[delivery.target.delivery_id]

    async def _try(self, delivery: Delivery, *, first: bool) -> Outcome:
        """One try: a local activity (the first, a single attempt), else an activity run with its short retries."""
        await self._wait_while_paused(delivery)
        async with self._window:
            if self._handing_over:
                return AGAIN
            handle = self._start_first_try(delivery) if first else self._start_activity(delivery)
            self._move(delivery, Phase.SENDING)
            delivery.activity = None if first else handle
            try:
                await handle
                return DONE
            except FailureError as err:
                if first:
                    return self._after_first_try(delivery, err)
                return await self._after_activity(delivery, err)
            finally:
                delivery.activity = None
                self._move(delivery, Phase.QUEUED)

    async def _wait_while_paused(self, delivery: Delivery) -> None:
        """Hold a delivery to a paused endpoint, with no slot, until a resume, a hand-over or the recheck."""
        endpoint_id = delivery.target.endpoint_id
        if endpoint_id not in self._paused_endpoints or self._handing_over:
            return
        await self._mark(delivery.target.delivery_id, "paused")
        self._move(delivery, Phase.PAUSED)
        try:
            await workflow.wait_condition(
                lambda: endpoint_id not in self._paused_endpoints or self._handing_over,
                timeout=PAUSE_RECHECK,
            )
        except TimeoutError:
            # Let the activity look at the endpoint: it stops at once, with no attempt, if still paused.
            self._paused_endpoints.discard(endpoint_id)
        finally:
            self._move(delivery, Phase.QUEUED)

    async def _wait_for_retry(self, delivery: Delivery, delay: timedelta) -> None:
        """Wait for a far-off next attempt on a timer, holding no slot; a pause, replay, close or hand-over ends it."""
        self._move(delivery, Phase.WAITING_RETRY)
        try:
            await workflow.wait_condition(
                lambda: delivery.phase is not Phase.WAITING_RETRY
                or delivery.target.endpoint_id in self._paused_endpoints
                or self._handing_over,
                timeout=delay,
            )
        except TimeoutError:
            pass
        finally:
            self._move(delivery, Phase.QUEUED)

    def _deliver_input(self, delivery: Delivery) -> DeliverInput:
        rate_slot, delivery.rate_slot = delivery.rate_slot, None  # a slot sends one attempt only
        return DeliverInput(
            delivery_id=delivery.target.delivery_id,
            retry=delivery.target.retry,
            timeout_s=self._input.delivery_timeout_s,
            timer_waits=True,
            rate_slot=rate_slot,
        )

    def _try_timeout(self) -> timedelta:
        return timedelta(seconds=self._input.delivery_timeout_s) + DELIVERY_TIMEOUT_SLACK

    def _start_first_try(self, delivery: Delivery) -> workflow.ActivityHandle:
        # Most deliveries succeed at once: inside the workflow task, that costs Temporal
        # no activity task and no second workflow task.
        return workflow.start_local_activity_method(
            DeliveryActivities.deliver,
            self._deliver_input(delivery),
            start_to_close_timeout=self._try_timeout(),
            retry_policy=FIRST_TRY_RETRY,
            summary=delivery_summary(delivery.target.endpoint_id, delivery.target.host, first_try=True),
        )

    def _start_activity(self, delivery: Delivery) -> workflow.ActivityHandle:
        return workflow.start_activity_method(
            DeliveryActivities.deliver,
            self._deliver_input(delivery),
            start_to_close_timeout=self._try_timeout(),
            retry_policy=delivery_retry_policy(
                delivery.target.retry, [ENDPOINT_PAUSED, DEAD_LETTERED, RETRY_LATER, RATE_LIMITED]
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=delivery_summary(delivery.target.endpoint_id, delivery.target.host, first_try=False),
        )

    def _after_first_try(self, delivery: Delivery, err: FailureError) -> Outcome:
        """What a first try that did not succeed leaves to do.

        A local activity's failure comes as it was raised, except a timeout: wrapped in an
        ActivityError when it happens, bare when replayed. Only the cause is looked at, so both
        take the same path.
        """
        cause = err.cause if isinstance(err, ActivityError) else err
        if not isinstance(cause, ApplicationError):
            # Timed out, or cut off: its record may still be on its way to the store. Give it
            # that long before the activity reads the delivery and goes on.
            return wait(DELIVERY_TIMEOUT_SLACK)
        verdict = self._verdict(delivery, cause)
        if verdict is not None:
            return verdict
        # A failed attempt, or a try that found the delivery changed: the activity takes over,
        # after the delay the attempt asked for.
        return wait(cause.next_retry_delay) if cause.next_retry_delay else AGAIN

    async def _after_activity(self, delivery: Delivery, err: FailureError) -> Outcome:
        """What an activity run that did not succeed leaves to do."""
        if not isinstance(err, ActivityError):
            raise err  # an activity's failure always comes wrapped in ActivityError
        cause = err.cause
        # Cancelled by a pause, a replay or a hand-over: in backoff, or its attempt ended
        # after the cancel was asked for (then Temporal does not retry it).
        if isinstance(cause, CancelledError) or err.retry_state == RetryState.CANCEL_REQUESTED:
            return AGAIN
        verdict = self._verdict(delivery, cause)
        if verdict is not None:
            return verdict
        # Temporal gave up (attempts lost to crashes or timeouts): keep it as a dead letter.
        await self._mark(delivery.target.delivery_id, "dead_lettered", error=str(cause or err))
        return DONE

    def _verdict(self, delivery: Delivery, cause: BaseException | None) -> Outcome | None:
        """What the delivery activity decided, if it ended the try on purpose; None otherwise."""
        if not isinstance(cause, ApplicationError):
            return None
        if cause.type == ENDPOINT_PAUSED:
            self._paused_endpoints.add(delivery.target.endpoint_id)
            return AGAIN
        if cause.type == DEAD_LETTERED:
            return DONE
        if cause.type == RETRY_LATER:
            return wait(timedelta(seconds=float(cause.details[0])))
        if cause.type == RATE_LIMITED:  # over the endpoint's rate_limit: wait for the slot it reserved
            delivery.rate_slot = RateSlot.model_validate(cause.details[1])
            return wait(timedelta(seconds=float(cause.details[0])))
        return None

    def _move(self, delivery: Delivery, phase: Phase) -> None:
        """Set a delivery's phase, keeping the count of held deliveries that makes room for the next page."""
        self._held += (phase in HELD) - (delivery.phase in HELD)
        delivery.phase = phase

    def _cancel_activities(self, wanted: Callable[[Delivery], bool]) -> None:
        """Cancel activity runs so they go again at once (a run in backoff is cancelled at once)."""
        for delivery in list(self._deliveries.values()):
            if delivery.activity is not None and wanted(delivery):
                delivery.activity.cancel()

    async def _mark(self, delivery_id: str, status: str, error: str | None = None) -> None:
        await workflow.execute_local_activity_method(
            BookkeepingActivities.mark_delivery,
            MarkDeliveryInput(delivery_id=delivery_id, status=status, error=error),  # type: ignore[arg-type]
            start_to_close_timeout=STORE_TIMEOUT,
            retry_policy=STORE_RETRY,
        )

    def _note_endpoints(self, targets: list[DeliveryTarget]) -> None:
        size = len(json.dumps(self._endpoint_ids))
        added = False
        for target in targets:
            if target.endpoint_id in self._endpoint_ids:
                continue
            size += len(target.endpoint_id) + 3  # quotes and a comma
            if size > ENDPOINT_IDS_ATTR_BUDGET:
                break
            self._endpoint_ids.append(target.endpoint_id)
            added = True
        if added:
            workflow.upsert_search_attributes([ENDPOINT_IDS_ATTR.value_set(list(self._endpoint_ids))])

    # --- Signals and the query: they change state, the tasks above act on it ----------------

    @workflow.signal
    def pause_endpoint(self, signal: EndpointSignal) -> None:
        self._paused_endpoints.add(signal.endpoint_id)
        self._cancel_activities(lambda d: d.target.endpoint_id == signal.endpoint_id)

    @workflow.signal
    def resume_endpoint(self, signal: EndpointSignal) -> None:
        self._paused_endpoints.discard(signal.endpoint_id)

    @workflow.signal
    def close_endpoint(self, signal: EndpointSignal) -> None:
        """The endpoint was disabled or deleted: every delivery to it goes now, and closes as a dead letter."""
        self._paused_endpoints.discard(signal.endpoint_id)
        self._closed_endpoints.add(signal.endpoint_id)
        for delivery in self._deliveries.values():
            if delivery.target.endpoint_id == signal.endpoint_id and delivery.phase is Phase.WAITING_RETRY:
                self._move(delivery, Phase.QUEUED)  # cuts its wait short
        self._cancel_activities(lambda d: d.target.endpoint_id == signal.endpoint_id)

    @workflow.signal(name=REPLAY_SIGNAL)
    def replay(self, request: ReplayRequest) -> None:
        if request.request_id in self._seen_requests:
            return
        self._seen_requests[request.request_id] = None
        self._replays.append(request)

    @workflow.query(name=LIVE_QUERY)
    def open_deliveries(self) -> dict[str, str]:
        """What each open delivery of this run is doing now, by delivery id (also in the Web UI's
        Queries tab): `sending`, `waiting_retry`, `paused` or `queued` (see `Phase`)."""
        return {delivery_id: delivery.phase.value for delivery_id, delivery in self._deliveries.items()}
