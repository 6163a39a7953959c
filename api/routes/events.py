from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from sqlmodel import select

from hookline.api.deps import AppDep, EventId, EventPaging, SessionDep, SettingsDep, TemporalDep
from hookline.api.errors import TEMPORAL
from hookline.api.schemas import EventCreate, EventOut, EventReplay, Page, Replayed
from hookline.services import controls
from hookline.services.errors import SchemaViolation
from hookline.services.publishing import publish_event
from hookline.store import crud
from hookline.store.tables import Event

router = APIRouter(prefix="/v1/apps/{app_id}/events", tags=["events"])


def event_out(event: Event, deliveries: list | None = None) -> EventOut:
    return EventOut.model_validate({**event.model_dump(), "deliveries": deliveries})


async def _event_or_404(session: SessionDep, app_id: str, event_id: str) -> Event:
    event = await crud.get_event(session, app_id=app_id, event_id=event_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"event {event_id} not found")
    return event


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=EventOut, responses=TEMPORAL)
async def publish(
    app_id: str,
    body: EventCreate,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=256)] = None,
) -> EventOut:
    """Publish an event: it is recorded and its fan-out workflow started before this answers."""
    try:
        # publish_event checks the application (404 if unknown), so no AppDep: one read less.
        event, _ = await publish_event(
            session=session, client=client, settings=settings, app_id=app_id,
            type=body.type, data=body.data, idempotency_key=idempotency_key,
            version=body.version, versions=body.versions,
        )
    except SchemaViolation as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return event_out(event)


@router.get("", response_model=Page[EventOut])
async def list_events(app: AppDep, session: SessionDep, paging: EventPaging) -> dict:
    stmt = select(Event).where(Event.app_id == app.id)
    rows, cursor = await crud.page_by_id(session, stmt, Event.id, limit=paging.limit, cursor=paging.id_cursor("evt"))
    return {"data": [event_out(r) for r in rows], "next_cursor": cursor}


@router.get("/{event_id}", response_model=EventOut, responses=TEMPORAL)
async def get_event(
    app: AppDep,
    event_id: EventId,
    session: SessionDep,
    client: TemporalDep,
    live: Annotated[
        bool, Query(description="Also ask the event's workflow what each open delivery is doing now")
    ] = False,
) -> EventOut:
    """The event with the current status of each of its deliveries."""
    event = await _event_or_404(session, app.id, event_id)
    deliveries = [d.model_dump() for d in await crud.deliveries_of_event(session, event_id=event.id)]
    if live:
        states = await controls.open_deliveries(client=client, event=event)
        for delivery in deliveries:
            delivery["live"] = states.get(delivery["id"])
    return event_out(event, deliveries)


@router.post("/{event_id}/replay", status_code=status.HTTP_202_ACCEPTED, response_model=Replayed, responses=TEMPORAL)
async def replay_event(
    app: AppDep,
    event_id: EventId,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
    body: EventReplay | None = None,
) -> Replayed:
    """Deliver the event again to all its endpoints, or to one. Deleted endpoints are left out."""
    event = await _event_or_404(session, app.id, event_id)
    replayed = await controls.replay_event_deliveries(
        session=session, client=client, settings=settings, event=event, endpoint_id=body.endpoint_id if body else None
    )
    return Replayed(replayed=replayed)
