"""Publishing an event: validate, record once, start its fan-out. Shared by the API and producers."""

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core.config import Settings
from hookline.core.inputs import check_event
from hookline.core.metrics import EVENTS_PUBLISHED
from hookline.services.errors import Conflict, Rejected, TemporalError, UnknownApplication, reaching_temporal
from hookline.services.validation import check_data
from hookline.store import crud, hot_path
from hookline.store.tables import Endpoint, Event
from hookline.services import event_workflow_client


class InvalidEvent(Rejected, ValueError):
    """What a producer passed is not an event the HTTP API would accept."""


def check_producer_event(type: str, data: dict, idempotency_key: str | None) -> None:
    """The API's checks (api/schemas.py runs the same core.inputs functions through pydantic)."""
    try:
        check_event(type, data, idempotency_key)
    except ValueError as exc:
        raise InvalidEvent(str(exc)) from None


async def publish_event(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    app_id: str,
    type: str,
    data: dict,
    idempotency_key: str | None = None,
    target_endpoint_id: str | None = None,
) -> tuple[Event, bool]:
    """(event, created). The same idempotency key again returns the first event, no second fan-out.

    `target_endpoint_id` sends the event to that one endpoint of the application instead of to
    every subscriber (test events).
    """
    if not await crud.app_exists(session, app_id=app_id):
        raise UnknownApplication(f"application {app_id} not found")
    schema = await crud.event_type_schema(session, name=type)
    if schema is not None:
        await check_data(type, schema, data)
    event, created = await hot_path.insert_event(
        session, app_id=app_id, type=type, data=data, idempotency_key=idempotency_key,
        target_endpoint_id=target_endpoint_id,
    )
    if event.dispatched:
        return event, False
    try:
        async with reaching_temporal():
            await event_workflow_client.start_fan_out(
                client, settings, event_id=event.id, app_id=event.app_id, event_type=event.type
            )
    except TemporalError:
        if created:  # the request is refused, so it leaves nothing behind
            await hot_path.forget_event(session, event=event)
        raise
    # The workflow marks the event dispatched when it resolves its first page, in the same write.
    if created:  # here, not in the route, so that producer.py's publishes count too
        EVENTS_PUBLISHED.inc()
    return event, created


TEST_EVENT_TYPE = "hookline.test"


def test_event_data(endpoint: Endpoint) -> dict:
    """What a test event carries when its sender gives no data."""
    return {"message": "A test event from Hookline: this endpoint receives webhooks.", "endpoint_id": endpoint.id}


async def send_test_event(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    endpoint: Endpoint,
    type: str | None = None,
    data: dict | None = None,
) -> Event:
    """Publish one event to this endpoint only, whatever event types it subscribes to.

    It is an event like any other (signed, retried, listed in the delivery log), with the
    endpoint's retry policy; a paused endpoint holds it like the rest.
    """
    if endpoint.status == "disabled":
        raise Conflict(f"endpoint {endpoint.id} is disabled; enable it to send it a test event")
    type = type or TEST_EVENT_TYPE
    data = test_event_data(endpoint) if data is None else data
    check_producer_event(type, data, None)
    event, _ = await publish_event(
        session=session, client=client, settings=settings, app_id=endpoint.app_id, type=type, data=data,
        target_endpoint_id=endpoint.id,
    )
    return event
