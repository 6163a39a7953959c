"""One workflow per event: resolve the subscribed endpoints, deliver to each, take signals.

Deterministic orchestration only; every read and write happens in activities. When the
history grows long, the run hands its open deliveries to a new run (continue-as-new), so an
event with thousands of endpoints, or one replayed for months, stays within Temporal's limits.
"""

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DEAD_LETTERED, ENDPOINT_PAUSED, RETRY_LATER, DeliveryActivities
    from activities.records import RecordActivities
    from core.messages import (
        DeliverInput,
        DeliveryTarget,
        EndpointSignal,
        EventWorkflowInput,
        MarkDeliveryInput,
        PrepareReplayInput,
        ReplayRequest,
        ResolveTargetsInput,
    )
    from core.temporal import ENDPOINT_IDS_ATTR
    from workflows.policies import (
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

# Changes of behaviour that running workflows must not see mid-history (workflow.patched):
# wait for room before every page, cap open deliveries, and replay a page at a time.
PATCH_BOUNDED_PAGES = "bounded-pages"
# Ask the delivery activity to hand far-off retries back as workflow timers (RetryLater).
PATCH_TIMER_WAITS = "retry-later-timers"
# Make each delivery's first try a local activity; its retries stay activities with backoff.
PATCH_FIRST_TRY_LOCAL = "first-try-local"
# The three changes above, in one marker: what runs of today's code record.
PATCH_ALL = "bounded-pages+retry-later-timers+first-try-local"

# The first try of a delivery runs once, inside the workflow task; whatever it does not settle
# goes to the regular activity, which waits out the backoff the attempt recorded.
FIRST_TRY_RETRY = RetryPolicy(maximum_attempts=1)


@workflow.defn
class EventWorkflow:
    @workflow.init
    def __init__(self, input: EventWorkflowInput) -> None:
        self._input = input
        self._window = asyncio.Semaphore(input.window)
        self._paused_endpoints: set[str] = set(input.paused_endpoints)
        self._replays: list[ReplayRequest] = list(input.pending_replays)
        self._seen_requests: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Open tries by delivery id: the endpoint, and the activity handle (None for a first try).
        self._in_flight: dict[str, tuple[str, workflow.ActivityHandle | None]] = {}
        self._held = 0  # tasks waiting on a paused endpoint or for a later retry: no slot, no activity
        # Deliveries whose next attempt is far off, by delivery id, with their endpoint; a replay or
        # the endpoint's closing takes one out.
        self._waiting_retry: dict[str, str] = {}
        self._paused_deliveries: set[str] = set()  # held by their paused endpoint; read by the query only
        self._endpoint_ids: list[str] = list(input.endpoint_ids)
        self._handing_over = False
        self._carry: list[DeliveryTarget] = []
        self._closed_endpoints: set[str] = set()  # disabled or deleted while this run was going
        self._bounded_pages = False
        self._first_try_local = False
        self._all_patches = False
        self._broken: Exception | None = None  # what broke a delivery task: a bug, never a delivery failure

    @workflow.run
    async def run(self, input: EventWorkflowInput) -> None:
        # A run of today's code records one patch marker for all three changes (each marker costs
        # Temporal a marker event and a search-attribute update per run). Runs recorded by older
        # code replay on the paths their own markers chose, asked in the order they were recorded.
        self._all_patches = workflow.patched(PATCH_ALL)
        self._bounded_pages = self._all_patches or workflow.patched(PATCH_BOUNDED_PAGES)
        self._first_try_local = self._all_patches or workflow.patched(PATCH_FIRST_TRY_LOCAL)
        for target in input.carried:
            self._launch(target)
        after = input.resolve_after
        resolving = input.fan_out
        while resolving and not self._long_history():
            if self._bounded_pages:
                await self._wait_for_room()
                if self._long_history():
                    break
            page = await workflow.execute_local_activity_method(
                RecordActivities.resolve_targets,
                ResolveTargetsInput(event_id=input.event_id, after_endpoint_id=after, limit=input.window),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
            self._note_endpoints(page.targets)
            for target in page.targets:
                self._launch(target)
            after = page.next_after
            resolving = after is not None
            if not self._bounded_pages:
                await self._wait_for_room()
        while True:
            await self._wait(lambda: bool(self._replays) or not self._tasks or self._long_history())
            if self._long_history():
                await self._hand_over(resolve_after=after if resolving else None)
            if not self._replays:
                break
            await self._start_replay(self._replays.pop(0))
        await self._wait(workflow.all_handlers_finished)

    async def _wait_for_room(self) -> None:
        """Take on the next page only when the window is at most one page ahead and the run holds
        fewer than OPEN_DELIVERIES_CAP open deliveries: bounded memory, history and hand-over."""
        window = self._input.window

        def room() -> bool:
            if self._long_history():
                return True
            ahead = len(self._tasks) - self._held < 2 * window
            return ahead and (not self._bounded_pages or len(self._tasks) < OPEN_DELIVERIES_CAP)

        await self._wait(room)

    async def _wait(self, condition: Callable[[], bool]) -> None:
        """Wait on the run's main path. A delivery task that raised fails the workflow task, so
        Temporal retries it and the Web UI shows why, instead of the delivery vanishing."""
        await workflow.wait_condition(lambda: condition() or self._broken is not None)
        if self._broken is not None:
            raise RuntimeError(f"a delivery task failed: {self._broken!r}") from self._broken

    @workflow.signal
    def pause_endpoint(self, signal: EndpointSignal) -> None:
        self._paused_endpoints.add(signal.endpoint_id)
        self._cancel_in_flight(endpoint_id=signal.endpoint_id)

    @workflow.signal
    def resume_endpoint(self, signal: EndpointSignal) -> None:
        self._paused_endpoints.discard(signal.endpoint_id)

    @workflow.query(name=LIVE_QUERY)
    def open_deliveries(self) -> dict[str, str]:
        """What each open delivery of this run is doing now, by delivery id (also in the Web UI's Queries tab):
        `sending` (an activity run is open: an attempt, or a short wait between attempts),
        `waiting_retry` (its next attempt is far off), `paused`, or `queued` (waiting for a window slot)."""
        states: dict[str, str] = {}
        for delivery_id in self._tasks:
            if delivery_id in self._in_flight:
                states[delivery_id] = "sending"
            elif delivery_id in self._waiting_retry:
                states[delivery_id] = "waiting_retry"
            elif delivery_id in self._paused_deliveries:
                states[delivery_id] = "paused"
            else:
                states[delivery_id] = "queued"
        return states

    @workflow.signal
    def close_endpoint(self, signal: EndpointSignal) -> None:
        """The endpoint was disabled or deleted: every delivery to it goes now, and closes as a dead letter."""
        self._paused_endpoints.discard(signal.endpoint_id)
        self._closed_endpoints.add(signal.endpoint_id)
        for delivery_id, endpoint_id in list(self._waiting_retry.items()):
            if endpoint_id == signal.endpoint_id:
                del self._waiting_retry[delivery_id]
        self._cancel_in_flight(endpoint_id=signal.endpoint_id)

    @workflow.signal(name=REPLAY_SIGNAL)
    def replay(self, request: ReplayRequest) -> None:
        if request.request_id in self._seen_requests:
            return
        self._seen_requests.add(request.request_id)
        self._replays.append(request)

    def _long_history(self) -> bool:
        return workflow.info().is_continue_as_new_suggested()

    async def _hand_over(self, *, resolve_after: str | None) -> None:
        """Stop every open delivery where it stands and continue them in a new run."""
        self._handing_over = True
        self._cancel_in_flight(everything=True)
        await self._wait(lambda: not self._tasks)
        await self._wait(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._input.model_copy(
                update={
                    "fan_out": resolve_after is not None,
                    "resolve_after": resolve_after,
                    "carried": self._carry,
                    "paused_endpoints": sorted(self._paused_endpoints),
                    "pending_replays": self._replays,
                    "endpoint_ids": self._endpoint_ids,
                }
            )
        )

    async def _start_replay(self, request: ReplayRequest) -> None:
        """Restart the request's deliveries a page (one window) at a time, as room frees up.

        A hand-over between pages carries the rest of the request, with where it stopped.
        """
        while True:
            if self._bounded_pages:
                await self._wait_for_room()
                if self._long_history():
                    self._replays.insert(0, request)
                    return
            limit = self._input.window if self._bounded_pages else None
            targets = await workflow.execute_local_activity_method(
                RecordActivities.prepare_replay,
                PrepareReplayInput(
                    event_id=self._input.event_id,
                    delivery_ids=request.delivery_ids,
                    endpoint_id=request.endpoint_id,
                    after_delivery_id=request.after_delivery_id,
                    limit=limit,
                ),
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
            self._note_endpoints(targets)
            # A delivery still waiting out a backoff goes again now, with its fresh budget.
            self._cancel_in_flight(delivery_ids={t.delivery_id for t in targets})
            for target in targets:
                self._waiting_retry.pop(target.delivery_id, None)
                if target.delivery_id not in self._tasks:
                    self._launch(target)
            if limit is None or len(targets) < limit:
                return
            request = request.model_copy(update={"after_delivery_id": targets[-1].delivery_id})

    def _launch(self, target: DeliveryTarget) -> None:
        # A look-up that read the endpoint as paused just before it was closed must not hold it.
        if target.paused and target.endpoint_id not in self._closed_endpoints:
            self._paused_endpoints.add(target.endpoint_id)
        self._tasks[target.delivery_id] = asyncio.create_task(self._deliver(target))

    async def _deliver(self, target: DeliveryTarget) -> None:
        local = self._first_try_local
        try:
            while True:
                outcome = await self._deliver_once(target, local=local)
                local = False
                if outcome is True:
                    return
                if isinstance(outcome, timedelta):
                    await self._wait_for_retry(target, outcome)
                if self._handing_over:
                    self._carry.append(target.model_copy(update={"paused": False}))
                    return
        except Exception as exc:
            self._broken = exc
        finally:
            del self._tasks[target.delivery_id]

    async def _wait_for_retry(self, target: DeliveryTarget, delay: timedelta) -> None:
        """Wait for a far-off next attempt on a timer, holding no slot; a pause, replay or hand-over cuts it short."""
        self._held += 1
        self._waiting_retry[target.delivery_id] = target.endpoint_id
        try:
            await workflow.wait_condition(
                lambda: target.delivery_id not in self._waiting_retry
                or target.endpoint_id in self._paused_endpoints
                or self._handing_over,
                timeout=delay,
            )
        except asyncio.TimeoutError:
            pass
        finally:
            self._held -= 1
            self._waiting_retry.pop(target.delivery_id, None)

    async def _deliver_once(self, target: DeliveryTarget, *, local: bool) -> bool | timedelta:
        """One try: a local activity (the first, a single attempt), else an activity run with its short retries.

        True when the delivery is closed; False when it must go again at once (pause, replay,
        hand-over); a delay when its next attempt is far off, or when a first try failed.
        """
        if target.endpoint_id in self._paused_endpoints and not self._handing_over:
            await self._mark(target.delivery_id, "paused")
            self._held += 1
            self._paused_deliveries.add(target.delivery_id)
            try:
                await workflow.wait_condition(
                    lambda: target.endpoint_id not in self._paused_endpoints or self._handing_over,
                    timeout=PAUSE_RECHECK,
                )
            except asyncio.TimeoutError:
                # Let the activity look at the endpoint: it stops at once, with no attempt, if still paused.
                self._paused_endpoints.discard(target.endpoint_id)
            finally:
                self._held -= 1
                self._paused_deliveries.discard(target.delivery_id)
        async with self._window:
            if self._handing_over:
                return False
            deliver_input = DeliverInput(
                delivery_id=target.delivery_id,
                retry=target.retry,
                timeout_s=self._input.delivery_timeout_s,
                timer_waits=self._all_patches or workflow.patched(PATCH_TIMER_WAITS),
            )
            timeout = timedelta(seconds=self._input.delivery_timeout_s) + DELIVERY_TIMEOUT_SLACK
            handle: workflow.ActivityHandle
            if local:
                # Most deliveries succeed at once: inside the workflow task, that costs Temporal
                # no activity task and no second workflow task.
                handle = workflow.start_local_activity_method(
                    DeliveryActivities.deliver,
                    deliver_input,
                    start_to_close_timeout=timeout,
                    retry_policy=FIRST_TRY_RETRY,
                )
            else:
                handle = workflow.start_activity_method(
                    DeliveryActivities.deliver,
                    deliver_input,
                    start_to_close_timeout=timeout,
                    retry_policy=delivery_retry_policy(target.retry, [ENDPOINT_PAUSED, DEAD_LETTERED, RETRY_LATER]),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            # A first try is never cancelled: that would cut its request off mid-way, unrecorded.
            self._in_flight[target.delivery_id] = (target.endpoint_id, None if local else handle)
            try:
                await handle
                return True
            except FailureError as err:
                if local:
                    return self._after_first_try(target, err)
                if not isinstance(err, ActivityError):
                    raise  # an activity's failure always comes wrapped in ActivityError
                cause = err.cause
                # Cancelled by a pause, a replay or a hand-over: in backoff, or its attempt ended
                # after the cancel was asked for (then Temporal does not retry it).
                if isinstance(cause, CancelledError) or err.retry_state == RetryState.CANCEL_REQUESTED:
                    return False
                verdict = self._verdict(target, cause)
                if verdict is not None:
                    return verdict
                # Temporal gave up (attempts lost to crashes or timeouts): keep it as a dead letter.
                await self._mark(target.delivery_id, "dead_lettered", error=str(cause or err))
                return True
            finally:
                self._in_flight.pop(target.delivery_id, None)

    def _after_first_try(self, target: DeliveryTarget, err: FailureError) -> bool | timedelta:
        """What a first try that did not succeed leaves to do; see _deliver_once for the values.

        A local activity's failure comes as it was raised, except a timeout: wrapped in an
        ActivityError when it happens, bare when replayed. Only the cause is looked at, so both
        take the same path.
        """
        cause = err.cause if isinstance(err, ActivityError) else err
        if not isinstance(cause, ApplicationError):
            # Timed out, or cut off: its record may still be on its way to the store. Give it
            # that long before the activity reads the delivery and goes on.
            return DELIVERY_TIMEOUT_SLACK
        verdict = self._verdict(target, cause)
        if verdict is not None:
            return verdict
        # A failed attempt, or a try that found the delivery changed: the activity takes over,
        # after the delay the attempt asked for.
        return cause.next_retry_delay or False

    def _verdict(self, target: DeliveryTarget, cause: BaseException | None) -> bool | timedelta | None:
        """What the delivery activity decided, if it ended the try on purpose; None otherwise."""
        if not isinstance(cause, ApplicationError):
            return None
        if cause.type == ENDPOINT_PAUSED:
            self._paused_endpoints.add(target.endpoint_id)
            return False
        if cause.type == DEAD_LETTERED:
            return True
        if cause.type == RETRY_LATER:
            return timedelta(seconds=float(cause.details[0]))
        return None

    def _cancel_in_flight(
        self, *, endpoint_id: str | None = None, delivery_ids: set[str] | None = None, everything: bool = False
    ) -> None:
        """Cancel activity runs so they go again at once (a run in backoff is cancelled at once)."""
        for delivery_id, (target_endpoint, handle) in list(self._in_flight.items()):
            if handle is None:
                continue
            if everything or target_endpoint == endpoint_id or (delivery_ids and delivery_id in delivery_ids):
                handle.cancel()

    async def _mark(self, delivery_id: str, status: str, error: str | None = None) -> None:
        await workflow.execute_local_activity_method(
            RecordActivities.mark_delivery,
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
