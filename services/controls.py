"""Operator controls: pause, resume, disable, delete and replay, each reaching the event workflows by signal."""

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowQueryFailedError

from hookline.core.config import Settings
from hookline.core.metrics import REPLAYS_REQUESTED
from hookline.core.messages import DeliveryPageInput, ReplayRequest, SweepInput
from hookline.core.statuses import OPEN_STATUSES, UNSETTLED_STATUSES, DeliveryStatus, EndpointStatus
from hookline.core.operational import ENDPOINT_DISABLED, HEALTHY
from hookline.services.errors import Conflict, NotFound, TemporalError, TemporalUnavailable, reaching_temporal
from hookline.store import crud
from hookline.store.tables import Delivery, Endpoint, Event
from hookline.services import event_workflow_client, operational
from hookline.workflows.sweep import DeliverySweepWorkflow

log = logging.getLogger("hookline.operations")


async def _sweep(client: Client, settings: Settings, *, operation: str, scope: str, page: DeliveryPageInput) -> str:
    request_id = uuid.uuid4().hex
    workflow_id = f"sweep-{operation}-{scope}-{request_id}"
    async with reaching_temporal():
        await client.start_workflow(
            DeliverySweepWorkflow.run,
            SweepInput(operation=operation, request_id=request_id, page=page),  # type: ignore[arg-type]
            id=workflow_id,
            task_queue=settings.task_queue,
        )
    return workflow_id


# A re-enabled endpoint starts afresh with the breaker too.
RESET_HEALTH = {"health": HEALTHY, "failing_since": None, "consecutive_failures": 0}


async def update_endpoint(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    endpoint: Endpoint,
    changes: dict[str, Any],
    new_status: str | None = None,
) -> Endpoint:
    """Save `changes` to the endpoint; `new_status` pauses, resumes, disables or re-enables it with
    them. Conflict for pausing a disabled endpoint (it must be re-enabled first: set_paused says so)."""
    if "rate_limit" in changes:
        changes = {**changes, "rate_next_at": None}  # the new rate counts from now, not from the old one's backlog
    resumed = new_status == EndpointStatus.ACTIVE and endpoint.status == EndpointStatus.PAUSED
    if new_status == EndpointStatus.PAUSED or resumed:
        return await set_paused(
            session=session, client=client, settings=settings, endpoint=endpoint,
            paused=new_status == EndpointStatus.PAUSED, changes=changes,
        )
    if new_status == EndpointStatus.DISABLED:
        return await disable_endpoint(
            session=session, client=client, settings=settings, endpoint=endpoint, changes=changes
        )
    if new_status is not None:
        # Re-enabled: a fresh start for the breaker too. (A failing endpoint that is merely active
        # stays failing: its watch's probe is what releases the deliveries it holds.)
        reset = RESET_HEALTH if endpoint.status == EndpointStatus.DISABLED else {}
        return await crud.save(session, endpoint, {**changes, "status": new_status, "disabled_reason": None, **reset})
    return await crud.save(session, endpoint, changes)


async def set_paused(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    endpoint: Endpoint,
    paused: bool,
    changes: dict[str, Any] | None = None,
) -> Endpoint:
    """Record the new status (with any other `changes`) first: every delivery attempt reads it,
    signals only make it prompt. If Temporal cannot be reached, everything is put back."""
    if endpoint.status == EndpointStatus.DISABLED:
        raise Conflict("endpoint is disabled; PATCH status to active to re-enable it")
    changes = {**(changes or {}), "status": EndpointStatus.PAUSED if paused else EndpointStatus.ACTIVE}
    before = {key: getattr(endpoint, key) for key in changes}
    endpoint = await crud.save(session, endpoint, changes)
    statuses: list[str] = list(OPEN_STATUSES) if paused else list(UNSETTLED_STATUSES)
    try:
        await _sweep(
            client,
            settings,
            operation="pause" if paused else "resume",
            scope=endpoint.id,
            page=DeliveryPageInput(endpoint_id=endpoint.id, statuses=statuses),
        )
    except TemporalError:
        await session.refresh(endpoint)
        if endpoint.status == changes["status"]:  # not changed meanwhile (a 410 may have disabled it)
            await crud.save(session, endpoint, before)
        raise
    return endpoint


async def disable_endpoint(
    *, session: AsyncSession, client: Client, settings: Settings, endpoint: Endpoint,
    changes: dict[str, Any] | None = None,
) -> Endpoint:
    """Record the endpoint as disabled (with any other `changes`), then close its open deliveries as dead letters."""
    was_open = endpoint.status != EndpointStatus.DISABLED
    endpoint = await crud.save(
        session, endpoint, {**(changes or {}), "status": EndpointStatus.DISABLED, "disabled_reason": None}
    )
    if was_open:
        await _close_open_deliveries(client, settings, endpoint.id)
        try:
            await operational.announce(
                session=session, client=client, settings=settings, type=ENDPOINT_DISABLED, app_id=endpoint.app_id,
                data={"endpoint_id": endpoint.id, "reason": "disabled through the API"},
                key=f"{endpoint.id}:{endpoint.updated_at.isoformat()}",
            )
        except Exception:
            # The disable stands; the announcement is what is lost, and the log says so.
            log.warning("could not publish endpoint.disabled for endpoint %s", endpoint.id, exc_info=True)
    return endpoint


async def release_held(client: Client, settings: Settings, endpoint_id: str) -> None:
    """The endpoint is healthy again: what its breaker held goes now (a resume sweep, as after a pause)."""
    await _sweep_unsettled(client, settings, endpoint_id, operation="resume")


async def close_deliveries(client: Client, settings: Settings, endpoint_id: str) -> None:
    """Like a disable's close, but raising if Temporal cannot be reached, for a caller that retries."""
    await _sweep_unsettled(client, settings, endpoint_id, operation="close")


async def _sweep_unsettled(client: Client, settings: Settings, endpoint_id: str, *, operation: str) -> None:
    page = DeliveryPageInput(endpoint_id=endpoint_id, statuses=[*UNSETTLED_STATUSES])
    await _sweep(client, settings, operation=operation, scope=endpoint_id, page=page)


async def delete_endpoint(*, session: AsyncSession, client: Client, settings: Settings, endpoint: Endpoint) -> None:
    """Delete the subscription; its open deliveries end as dead letters."""
    await crud.delete_endpoint(session, endpoint=endpoint)
    await _close_open_deliveries(client, settings, endpoint.id)


async def _close_open_deliveries(client: Client, settings: Settings, endpoint_id: str) -> None:
    """Wake the endpoint's held and waiting deliveries: their next attempt reads the endpoint and closes them."""
    try:
        await close_deliveries(client, settings, endpoint_id)
    except TemporalError:
        # The status is recorded: held deliveries re-check it within the hour, waiting ones at their next attempt.
        log.warning("could not wake the open deliveries of endpoint %s", endpoint_id, exc_info=True)


async def replay_event_deliveries(
    *, session: AsyncSession, client: Client, settings: Settings, event: Event, endpoint_id: str | None = None
) -> int:
    """Deliver the event again to all its live endpoints, or to `endpoint_id` only; returns how many
    deliveries that covers. NotFound if the event has none to that endpoint (or it was deleted)."""
    deliveries = [
        d for d in await crud.deliveries_of_event(session, event_id=event.id, live_endpoints=True)
        if endpoint_id is None or d.endpoint_id == endpoint_id
    ]
    if endpoint_id is not None and not deliveries:
        raise NotFound(f"event {event.id} has no delivery to an existing endpoint {endpoint_id}")
    if deliveries:
        await replay_event(client=client, settings=settings, event=event, endpoint_id=endpoint_id)
    return len(deliveries)


async def replay_event(
    *, client: Client, settings: Settings, event: Event, endpoint_id: str | None = None,
    delivery_ids: list[str] | None = None,
) -> None:
    await _replay(client, settings, event, endpoint_id=endpoint_id, delivery_ids=delivery_ids)
    # Counted here, not in the routes, so that every caller counts alike.
    REPLAYS_REQUESTED.labels("event").inc()


async def _replay(
    client: Client, settings: Settings, event: Event, *, endpoint_id: str | None, delivery_ids: list[str] | None
) -> None:
    async with reaching_temporal():
        await event_workflow_client.replay(
            client,
            settings,
            event_id=event.id,
            app_id=event.app_id,
            event_type=event.type,
            request=ReplayRequest(request_id=uuid.uuid4().hex, endpoint_id=endpoint_id, delivery_ids=delivery_ids),
        )


async def open_deliveries(*, client: Client, event: Event) -> dict[str, str]:
    """Ask the event's running workflow what each of its open deliveries is doing now."""
    async with reaching_temporal():
        try:
            return await event_workflow_client.open_deliveries(client, event_id=event.id)
        except WorkflowQueryFailedError as exc:
            # A worker answered but could not run the query (e.g. an older worker without it).
            raise TemporalUnavailable(f"the event's workflow could not answer: {exc}") from exc


async def replay_delivery(*, session: AsyncSession, client: Client, settings: Settings, delivery: Delivery) -> None:
    """Send the delivery again, whatever its status, with a fresh retry budget; Conflict if its endpoint is gone."""
    if await crud.get_endpoint(session, app_id=delivery.app_id, endpoint_id=delivery.endpoint_id) is None:
        raise Conflict(f"endpoint {delivery.endpoint_id} was deleted; nothing to replay to")
    event = await crud.get_event(session, app_id=delivery.app_id, event_id=delivery.event_id)
    assert event is not None  # an event goes with its deliveries
    await _replay(client, settings, event, endpoint_id=None, delivery_ids=[delivery.id])
    REPLAYS_REQUESTED.labels("delivery").inc()


async def replay_dead_letters(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    app_id: str,
    endpoint_id: str | None,
    since: datetime | None,
) -> int:
    """Replay every dead letter matching now; returns how many. Runs as a durable sweep.
    NotFound if `endpoint_id` names no endpoint of the application."""
    if endpoint_id is not None and await crud.get_endpoint(session, app_id=app_id, endpoint_id=endpoint_id) is None:
        raise NotFound(f"endpoint {endpoint_id} not found")
    dead: list[str] = [DeliveryStatus.DEAD_LETTERED]
    clauses = crud.delivery_filter(app_id=app_id, endpoint_id=endpoint_id, statuses=dead, since=since)
    up_to = await crud.newest_delivery_id(session, clauses=clauses)
    if up_to is None:
        REPLAYS_REQUESTED.labels("dead_letters").inc()  # accepted, with nothing to replay
        return 0
    # Dead letters of deleted endpoints have nowhere to go: they are not replayed nor counted.
    count = await crud.count_deliveries(
        session, clauses=clauses + crud.delivery_filter(up_to_delivery_id=up_to, live_endpoints=True)
    )
    await _sweep(
        client,
        settings,
        operation="replay",
        scope=app_id,
        page=DeliveryPageInput(
            app_id=app_id, endpoint_id=endpoint_id, statuses=dead, since=since, up_to_delivery_id=up_to
        ),
    )
    REPLAYS_REQUESTED.labels("dead_letters").inc()
    return count
