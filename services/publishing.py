"""Publishing an event: validate, record once, start its fan-out. Shared by the API and producers."""

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core import telemetry
from hookline.core import versions as versions_core
from hookline.core.config import Settings
from hookline.core.inputs import check_event
from hookline.core.metrics import EVENTS_PUBLISHED
from hookline.services.errors import (
    Conflict, Rejected, SchemaViolation, TemporalError, UnknownApplication, reaching_temporal,
)
from hookline.services.validation import check_data
from hookline.store import crud, hot_path
from hookline.store import versions as versions_store
from hookline.store.tables import Endpoint, Event, utcnow
from hookline.services import event_workflow_client


class InvalidEvent(Rejected, ValueError):
    """What a producer passed is not an event the HTTP API would accept."""


class VersionRefused(SchemaViolation):
    """The version named is unknown, or past its sunset (422, like data that breaks a schema)."""


async def check_versions(
    session: AsyncSession, *, type: str, data: dict, version: str | None, versions: dict[str, dict] | None
) -> list[dict]:
    """Validate a publish against its type's versions; the event_payloads rows to write with it
    ([] for a type without versions: its publish costs the one read it always did)."""
    try:
        wanted = versions_core.number(version) if version is not None else None
        for label in versions or {}:
            versions_core.number(label)
    except ValueError as exc:
        raise VersionRefused(str(exc)) from None
    target = await versions_store.publish_target(session, name=type, version=wanted)
    if target is None or not target.versioned:
        extra = [v for v in (versions or {}) if v != "v1"] + ([version] if wanted not in (None, 1) else [])
        if extra:
            why = "is not registered" if target is None else "has one version, v1"
            raise VersionRefused(f"event type {type} {why}: no version {extra[0]}")
        if target is not None and target.json_schema is not None:
            await check_data(type, target.json_schema, data)
        return []
    if target.version is None:
        raise VersionRefused(f"event type {type} has no version {version}")
    _refuse_sunset(type, target.version, target.sunset_at)
    if target.v_schema is not None:
        await check_data(f"{type}@{versions_core.label(target.version)}", target.v_schema, data)
    rows = [{"version": target.version, "published": True, "data": None}]
    supplied = {versions_core.number(v): d for v, d in (versions or {}).items()}
    supplied.pop(target.version, None)  # the published version's data is `data`
    known = await versions_store.version_schemas(session, name=type, numbers=list(supplied)) if supplied else {}
    for number, payload in sorted(supplied.items()):
        row = known.get(number)
        if row is None:
            raise VersionRefused(f"event type {type} has no version {versions_core.label(number)}")
        _refuse_sunset(type, number, row.sunset_at)  # supplying a version's data is publishing it
        if row.json_schema is not None:
            await check_data(f"{type}@{versions_core.label(number)}", row.json_schema, payload)
        rows.append({"version": number, "published": False, "data": payload})
    return rows


def _refuse_sunset(type: str, number: int, sunset_at: datetime | None) -> None:
    if sunset_at is not None and sunset_at <= utcnow():
        raise VersionRefused(
            f"version {versions_core.label(number)} of {type} reached its sunset on "
            f"{sunset_at.isoformat().replace('+00:00', 'Z')}: publish a later version"
        )


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
    version: str | None = None,
    versions: dict[str, dict] | None = None,
    target_endpoint_id: str | None = None,
) -> tuple[Event, bool]:
    """(event, created). The same idempotency key again returns the first event, no second fan-out.

    `version` (default: the type's latest) and `versions` (other versions' data, for subscribers
    pinned to them) are checked as in docs/event-types.md. `target_endpoint_id` sends the event
    to that one endpoint of the application instead of to every subscriber (test events).
    """
    if not await crud.app_exists(session, app_id=app_id):
        raise UnknownApplication(f"application {app_id} not found")
    payloads = await check_versions(session, type=type, data=data, version=version, versions=versions)
    event, created = await hot_path.insert_event(
        session, app_id=app_id, type=type, data=data, idempotency_key=idempotency_key, payloads=payloads,
        target_endpoint_id=target_endpoint_id,
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
