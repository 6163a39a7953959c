"""The store's reads and writes for the management API: applications, event types, endpoints, and
the event, delivery and attempt lists, as small keyword-only functions over one AsyncSession."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.ids import new_id
from hookline.store import db
from hookline.store.hot_path import first_row
from hookline.store.tables import (
    ApiKey, Application, Attempt, Delivery, Endpoint, Event, EventPayload, EventTarget, EventType, VersionDelivery,
    core_table, utcnow,
)


T = TypeVar("T")

async def page_by_id(
    session: AsyncSession, stmt: Any, id_col: Any, *, limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """Newest first, keyset-paged on the time-sortable id."""
    if cursor:
        stmt = stmt.where(id_col < cursor)
    rows = (await session.exec(stmt.order_by(id_col.desc()).limit(limit + 1))).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, getattr(rows[-1], id_col.key)
    return rows, None



async def create_app(session: AsyncSession, *, name: str) -> Application:
    now = utcnow()
    app = Application(id=new_id("app"), name=name, created_at=now, updated_at=now)
    session.add(app)
    await session.commit()
    return app


async def get_app(session: AsyncSession, *, app_id: str) -> Application | None:
    return await session.get(Application, app_id)


async def app_exists(session: AsyncSession, *, app_id: str) -> bool:
    """Every publish asks this; Core, not the ORM (see store/hot_path.py)."""
    apps = core_table(Application)
    stmt = core_select(apps.c.id).where(apps.c.id == app_id)
    return await first_row(session, stmt) is not None


async def delete_app(session: AsyncSession, *, app: Application) -> None:
    """An application goes with everything it owns."""
    delivery_ids = select(Delivery.id).where(Delivery.app_id == app.id)
    await session.exec(delete(VersionDelivery).where(col(VersionDelivery.delivery_id).in_(delivery_ids)))
    await session.exec(delete(Attempt).where(col(Attempt.delivery_id).in_(delivery_ids)))
    await session.exec(delete(Delivery).where(col(Delivery.app_id) == app.id))
    event_ids = select(Event.id).where(col(Event.app_id) == app.id)
    await session.exec(delete(EventPayload).where(col(EventPayload.event_id).in_(event_ids)))
    await session.exec(delete(EventTarget).where(col(EventTarget.event_id).in_(event_ids)))
    await session.exec(delete(Event).where(col(Event.app_id) == app.id))
    await session.exec(delete(Endpoint).where(col(Endpoint.app_id) == app.id))
    # Its keys, portal tokens included, are revoked with it: kept (the audit trail names them),
    # listed no more, refused from the next request on.
    await session.exec(
        update(ApiKey).where(col(ApiKey.app_id) == app.id, col(ApiKey.revoked_at).is_(None)).values(revoked_at=utcnow())
    )
    await session.delete(app)
    await session.commit()


async def save(session: AsyncSession, row: T, changes: dict[str, Any]) -> T:
    for key, value in changes.items():
        setattr(row, key, value)
    if hasattr(row, "updated_at"):
        row.updated_at = utcnow()
    session.add(row)
    await session.commit()
    return row



async def get_event_type(session: AsyncSession, *, name: str) -> EventType | None:
    return (await session.exec(select(EventType).where(EventType.name == name))).first()


async def event_type_schema(session: AsyncSession, *, name: str) -> dict | None:
    """The JSON Schema registered for an event type, if any; every publish asks (Core, see store/hot_path.py)."""
    types = core_table(EventType)
    stmt = core_select(types.c.json_schema).where(types.c.name == name)
    row = await first_row(session, stmt)
    return row.json_schema if row is not None else None


async def create_event_type(
    session: AsyncSession, *, name: str, description: str | None, json_schema: dict | None
) -> EventType | None:
    """None when the name is taken."""
    now = utcnow()
    row = EventType(
        id=new_id("etp"), name=name, description=description, json_schema=json_schema,
        created_at=now, updated_at=now,
    )
    session.add(row)
    return row if await db.commit_unless_taken(session) else None



async def get_endpoint(session: AsyncSession, *, app_id: str, endpoint_id: str) -> Endpoint | None:
    endpoint = await session.get(Endpoint, endpoint_id)
    return endpoint if endpoint is not None and endpoint.app_id == app_id else None


async def delete_endpoint(session: AsyncSession, *, endpoint: Endpoint) -> None:
    await session.delete(endpoint)
    await session.commit()


async def rotate_secret(
    session: AsyncSession, *, endpoint: Endpoint, new_secret: str, grace: timedelta
) -> Endpoint:
    return await save(
        session,
        endpoint,
        {
            "previous_secret": endpoint.secret,
            "previous_secret_expires_at": utcnow() + grace,
            "secret": new_secret,
        },
    )



async def get_event(session: AsyncSession, *, app_id: str, event_id: str) -> Event | None:
    event = await session.get(Event, event_id)
    return event if event is not None and event.app_id == app_id else None


async def deliveries_of_event(
    session: AsyncSession, *, event_id: str, live_endpoints: bool = False
) -> Sequence[Delivery]:
    """The event's deliveries; with `live_endpoints`, only those whose endpoint still exists."""
    stmt = (
        select(Delivery)
        .where(Delivery.event_id == event_id, *delivery_filter(live_endpoints=live_endpoints))
        .order_by(col(Delivery.id))
    )
    return (await session.exec(stmt)).all()


async def get_delivery(session: AsyncSession, *, app_id: str, delivery_id: str) -> Delivery | None:
    delivery = await session.get(Delivery, delivery_id)
    return delivery if delivery is not None and delivery.app_id == app_id else None


async def list_attempts(
    session: AsyncSession, *, delivery_id: str, limit: int, after_number: int
) -> tuple[Sequence[Attempt], int | None]:
    stmt = (
        select(Attempt)
        .where(Attempt.delivery_id == delivery_id, Attempt.number > after_number)
        .order_by(col(Attempt.number))
        .limit(limit + 1)
    )
    rows = (await session.exec(stmt)).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].number
    return rows, None


def delivery_filter(
    *,
    app_id: str | None = None,
    endpoint_id: str | None = None,
    statuses: Sequence[str] | None = None,
    since: datetime | None = None,
    up_to_delivery_id: str | None = None,
    live_endpoints: bool = False,
) -> list[Any]:
    clauses: list[Any] = []
    if live_endpoints:
        clauses.append(col(Delivery.endpoint_id).in_(select(Endpoint.id)))
    if app_id is not None:
        clauses.append(Delivery.app_id == app_id)
    if endpoint_id is not None:
        clauses.append(Delivery.endpoint_id == endpoint_id)
    if statuses:
        clauses.append(col(Delivery.status).in_(statuses))
    if since is not None:
        clauses.append(col(Delivery.updated_at) >= since)
    if up_to_delivery_id is not None:
        clauses.append(col(Delivery.id) <= up_to_delivery_id)
    return clauses


async def count_deliveries(session: AsyncSession, *, clauses: list[Any]) -> int:
    stmt = select(func.count()).select_from(Delivery).where(*clauses)
    return int((await session.exec(stmt)).one())


async def newest_delivery_id(session: AsyncSession, *, clauses: list[Any]) -> str | None:
    stmt = select(func.max(Delivery.id)).where(*clauses)
    return (await session.exec(stmt)).one()


