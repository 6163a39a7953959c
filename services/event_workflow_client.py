"""How the rest of Hookline reaches event workflows: start, replay, and pause, resume or close an endpoint by signal."""

from datetime import timedelta
from typing import Any, Literal

from temporalio.client import Client, WorkflowQueryRejectedError
from temporalio.common import (
    Priority,
    QueryRejectCondition,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from hookline.core.config import Settings
from hookline.core.ids import event_workflow_id
from hookline.core.messages import EndpointSignal, EventWorkflowInput, ReplayRequest
from hookline.core.summaries import event_summary
from hookline.core.temporal import APP_ID_ATTR, EVENT_TYPE_ATTR
from hookline.workflows.event import REPLAY_SIGNAL, EventWorkflow


START_RPC_TIMEOUT = timedelta(seconds=5)


async def _start(
    client: Client, settings: Settings, *, event_id: str, app_id: str, event_type: str, fan_out: bool, **options: Any
) -> None:
    """Start (or signal-with-start) the event's workflow, with its search attributes."""
    await client.start_workflow(
        EventWorkflow.run,
        EventWorkflowInput(
            event_id=event_id,
            app_id=app_id,
            event_type=event_type,
            fan_out=fan_out,
            window=settings.fanout_window,
            delivery_timeout_s=settings.delivery_timeout_s,
        ),
        id=event_workflow_id(event_id),
        task_queue=settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(APP_ID_ATTR, app_id), SearchAttributePair(EVENT_TYPE_ATTR, event_type)]
        ),
        # One application's backlog must not hold up another's events: with fairness on in the
        # server (docs/operations.md), the task queues dispatch round-robin between keys, and the
        # workflow's activities inherit its key.
        priority=Priority(fairness_key=app_id),
        # What the Web UI's workflow list shows for the run: event type and application.
        static_summary=event_summary(event_type, app_id),
        # A caller waiting on a publish should hear "unavailable" in seconds, not after minutes.
        rpc_timeout=START_RPC_TIMEOUT,
        **options,
    )


async def start_fan_out(client: Client, settings: Settings, *, event_id: str, app_id: str, event_type: str) -> None:
    """Start the event's workflow once; a second call for the same event starts nothing."""
    try:
        await _start(
            client, settings, event_id=event_id, app_id=app_id, event_type=event_type, fan_out=True,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError:
        pass  # it ran and closed already: the fan-out happened


async def replay(
    client: Client, settings: Settings, *, event_id: str, app_id: str, event_type: str, request: ReplayRequest
) -> None:
    """Signal the running workflow, or start a new run under the same id that takes the signal."""
    await _start(
        client, settings, event_id=event_id, app_id=app_id, event_type=event_type, fan_out=False,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal=REPLAY_SIGNAL,
        start_signal_args=[request],
    )


ENDPOINT_SIGNALS = {
    "pause": EventWorkflow.pause_endpoint,
    "resume": EventWorkflow.resume_endpoint,
    "close": EventWorkflow.close_endpoint,
}


async def signal_endpoint(
    client: Client, *, event_id: str, endpoint_id: str, change: Literal["pause", "resume", "close"]
) -> bool:
    """Tell a running event workflow an endpoint was paused, resumed or closed; False if it has closed."""
    handle = client.get_workflow_handle_for(EventWorkflow.run, event_workflow_id(event_id))
    signal = ENDPOINT_SIGNALS[change]
    try:
        await handle.signal(signal, EndpointSignal(endpoint_id=endpoint_id))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


# A query needs a worker to answer; a reader should not wait long for one. A query that comes
# while a first try runs (a local activity, inside the workflow task) is answered when the try
# ends or when the worker renews the workflow task, at most 8 s later (80 % of its 10 s timeout).
QUERY_RPC_TIMEOUT = timedelta(seconds=10)


async def open_deliveries(client: Client, *, event_id: str) -> dict[str, str]:
    """What each open delivery of the event's running workflow is doing; empty once it has closed."""
    handle = client.get_workflow_handle_for(EventWorkflow.run, event_workflow_id(event_id))
    try:
        return await handle.query(
            EventWorkflow.open_deliveries,
            reject_condition=QueryRejectCondition.NOT_OPEN,  # a closed run has nothing open; don't replay it
            rpc_timeout=QUERY_RPC_TIMEOUT,
        )
    except WorkflowQueryRejectedError:
        return {}
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return {}
        raise
