"""Publishing an event: validate, record once, start its fan-out. Shared by the API and producers."""

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core import telemetry
from hookline.core.config import Settings
from hookline.core.inputs import check_event
from hookline.core.metrics import EVENTS_PUBLISHED
from hookline.services.errors import Rejected, TemporalError, UnknownApplication, reaching_temporal
from hookline.services.validation import check_data
from hookline.store import crud, hot_path
from hookline.store.tables import Event
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
) -> tuple[Event, bool]:
    """(event, created). The same idempotency key again returns the first event, no second fan-out."""
    if not await crud.app_exists(session, app_id=app_id):
        raise UnknownApplication(f"application {app_id} not found")
    schema = await crud.event_type_schema(session, name=type)
    if schema is not None:
        await check_data(type, schema, data)
    event, created = await hot_path.insert_event(
        session, app_id=app_id, type=type, data=data, idempotency_key=idempotency_key
    )
    telemetry.annotate(event_id=event.id, app_id=event.app_id)
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
