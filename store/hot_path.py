"""The store's hot path: what runs for every event and attempt (publish, fan-out, each delivery's
read and record, sweeps and recovery), written in SQLAlchemy Core for speed."""

from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.event_types import subscribed
from hookline.core.ids import event_workflow_id, new_id
from hookline.store import db
from hookline.store.tables import Attempt, Delivery, Endpoint, Event, utcnow


# Statuses a delivery is still being worked on in; the others are final until a replay.
OPEN_STATUSES = ("pending", "retrying")

# A row's columns as attributes. What runs for every event or attempt (resolving endpoints,
# the attempt's read and record) goes through Core and returns these: the ORM's per-statement
# and per-object cost was most of the store's share of the worker's CPU.
Record = SimpleNamespace


_ATTEMPT_TABLES = (Delivery.__table__, Endpoint.__table__, Event.__table__)


async def first_row(session: AsyncSession, stmt: Any) -> Any:
    """The first row of a Core statement, or None."""
    return (await (await session.connection()).execute(stmt)).first()


def live_secrets(endpoint: Endpoint | Record, now: datetime) -> list[str]:
    """The current secret, plus the previous one while its rotation grace period lasts."""
    secrets_ = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets_.append(endpoint.previous_secret)
    return secrets_


async def insert_event(
    session: AsyncSession, *, app_id: str, type: str, data: dict, idempotency_key: str | None
) -> tuple[Event, bool]:
    """(event, created). A key seen before for this application returns the existing event.

    A new event is written through `db.write` and is not attached to the session.
    """
    if idempotency_key is not None:
        existing = await get_event_by_key(session, app_id=app_id, idempotency_key=idempotency_key)
        if existing is not None:
            return existing, False
    event_id = new_id("evt")
    event = Event(
        id=event_id, app_id=app_id, type=type, data=data, idempotency_key=idempotency_key,
        workflow_id=event_workflow_id(event_id), created_at=utcnow(),
    )
    row = event.model_dump()
    try:
        await db.write(session, lambda conn: conn.execute(insert(Event.__table__).values(**row)))
    except IntegrityError:
        # Two publishes with one key raced; the first one wins.
        await session.rollback()
        assert idempotency_key is not None
        existing = await get_event_by_key(session, app_id=app_id, idempotency_key=idempotency_key)
        if existing is None:
            raise
        return existing, False
    return event, True


async def get_event_by_key(session: AsyncSession, *, app_id: str, idempotency_key: str) -> Event | None:
    stmt = select(Event).where(Event.app_id == app_id, Event.idempotency_key == idempotency_key)
    return (await session.exec(stmt)).first()


def _dispatched(event_id: str) -> Any:
    """The statement that marks an event's fan-out as begun."""
    events = Event.__table__
    return update(events).where(events.c.id == event_id).values(dispatched=True)


async def mark_dispatched(session: AsyncSession, *, event: Event) -> None:
    await db.write(session, lambda conn: conn.execute(_dispatched(event.id)))
    event.dispatched = True


async def undispatched_events(
    session: AsyncSession, *, recorded_before: datetime, after_event_id: str | None, limit: int
) -> Sequence[Event]:
    """Events recorded before the time whose fan-out workflow is not known to have started,
    oldest first (ids are time-sortable), after the given id."""
    stmt = (
        select(Event)
        .where(col(Event.dispatched).is_(False), col(Event.created_at) < recorded_before)
        .order_by(col(Event.id))
        .limit(limit)
    )
    if after_event_id is not None:
        stmt = stmt.where(col(Event.id) > after_event_id)
    return (await session.exec(stmt)).all()


async def forget_event(session: AsyncSession, *, event: Event) -> None:
    """Undo a publish whose workflow could not be started, so the request changes nothing."""
    await session.exec(delete(Event).where(Event.id == event.id, col(Event.dispatched).is_(False)))
    await session.commit()



async def event_to_fan_out(session: AsyncSession, *, event_id: str) -> Record | None:
    """What resolving an event's endpoints needs of it; None once it is deleted."""
    events = Event.__table__
    stmt = core_select(events.c.id, events.c.app_id, events.c.type, events.c.workflow_id, events.c.dispatched).where(
        events.c.id == event_id
    )
    row = await first_row(session, stmt)
    return Record(**row._mapping) if row is not None else None


async def ensure_deliveries(
    session: AsyncSession, *, event: Record, after_endpoint_id: str | None, limit: int, scan: int = 2000
) -> tuple[list[tuple[Record, Record]], str | None]:
    """Create (once) the deliveries of the next page of subscribed endpoints; the first page
    also marks the event dispatched.

    Pages on endpoint id; returns the page's (delivery, endpoint) pairs and where to go on,
    or None when every endpoint of the application has been seen. Runs once per page of every
    event, so it reads through Core (see Record).
    """
    endpoints, deliveries = Endpoint.__table__, Delivery.__table__
    conn = await session.connection()
    found: list[Any] = []
    after = after_endpoint_id
    scanned = 0
    while len(found) < limit and scanned < scan:
        stmt = core_select(endpoints.c.id, endpoints.c.status, endpoints.c.event_types, endpoints.c.retry).where(
            endpoints.c.app_id == event.app_id, endpoints.c.status != "disabled"
        )
        if after:
            stmt = stmt.where(endpoints.c.id > after)
        batch = (await conn.execute(stmt.order_by(endpoints.c.id).limit(limit))).all()
        if not batch:
            after = None
            break
        scanned += len(batch)
        for endpoint in batch:
            after = endpoint.id
            if subscribed(endpoint.event_types, event.type):
                found.append(endpoint)
            if len(found) >= limit:
                break
        if len(batch) < limit and len(found) < limit:
            after = None
            break
    # One read for the page's existing deliveries, one write for the missing ones.
    existing: dict[str, Record] = {}
    if found:
        stmt = core_select(deliveries.c.id, deliveries.c.endpoint_id, deliveries.c.status).where(
            deliveries.c.event_id == event.id, deliveries.c.endpoint_id.in_([ep.id for ep in found])
        )
        existing = {d.endpoint_id: Record(**d._mapping) for d in (await conn.execute(stmt)).all()}
    await session.commit()  # ends the read
    now = utcnow()
    missing = []
    for endpoint in found:
        if endpoint.id not in existing:
            row = {
                "id": new_id("dlv"), "app_id": event.app_id, "event_id": event.id, "endpoint_id": endpoint.id,
                "status": "paused" if endpoint.status == "paused" else "pending", "attempts": 0,
                "cycle_attempts": 0, "workflow_id": event.workflow_id, "created_at": now, "updated_at": now,
            }
            missing.append(row)
            existing[endpoint.id] = Record(**row)
    # The first page also marks the event dispatched: its fan-out has begun, so the recovery of
    # never-started fan-outs can leave it alone.
    first_page = after_endpoint_id is None and not event.dispatched
    if missing or first_page:

        def statements(conn: Connection) -> None:
            if missing:
                conn.execute(insert(deliveries), missing)
            if first_page:
                conn.execute(_dispatched(event.id))

        await db.write(session, statements)
    return [(existing[ep.id], ep) for ep in found], after


async def load_for_delivery(session: AsyncSession, *, delivery_id: str) -> tuple[Record | None, Record | None, Record | None]:
    """A delivery with its endpoint and event, in one query; None where a row is gone."""
    deliveries, endpoints, events = _ATTEMPT_TABLES
    stmt = (
        core_select(deliveries, endpoints, events)
        .select_from(
            deliveries.outerjoin(endpoints, endpoints.c.id == deliveries.c.endpoint_id).outerjoin(
                events, events.c.id == deliveries.c.event_id
            )
        )
        .where(deliveries.c.id == delivery_id)
    )
    row = await first_row(session, stmt)
    if row is None:
        return None, None, None
    values, records = tuple(row), []
    for table in _ATTEMPT_TABLES:  # the columns of each table in turn; an id of None: no row joined
        part, values = values[: len(table.c)], values[len(table.c) :]
        records.append(Record(**dict(zip(table.c.keys(), part))) if part[0] is not None else None)
    return records[0], records[1], records[2]


async def set_endpoint_disabled(session: AsyncSession, *, endpoint_id: str, reason: str) -> None:
    endpoints = Endpoint.__table__
    stmt = update(endpoints).where(endpoints.c.id == endpoint_id).values(
        status="disabled", disabled_reason=reason, updated_at=utcnow()
    )
    await (await session.connection()).execute(stmt)
    await session.commit()


async def set_delivery_status(
    session: AsyncSession, *, delivery_id: str, status: str, only_from: Sequence[str], error: str | None = None
) -> bool:
    """Move a delivery to `status` if it is in one of `only_from`; False when it was not."""
    values: dict[str, Any] = {"status": status, "updated_at": utcnow(), "next_attempt_at": None}
    if error is not None:
        values["last_error"] = error
    stmt = (
        update(Delivery)
        .where(Delivery.id == delivery_id, col(Delivery.status).in_(only_from))
        .values(**values)
    )
    result = await session.exec(stmt)  # type: ignore[call-overload]
    await session.commit()
    return bool(result.rowcount)


async def restart_deliveries(
    session: AsyncSession,
    *,
    event_id: str,
    delivery_ids: list[str] | None,
    endpoint_id: str | None,
    after_delivery_id: str | None = None,
    limit: int | None = None,
) -> Sequence[tuple[Delivery, Endpoint]]:
    """Reset the chosen deliveries of an event to `pending` with a fresh retry budget.

    Oldest first; with `after_delivery_id` and `limit`, one page of them.
    """
    stmt = (
        select(Delivery, Endpoint)
        .join(Endpoint, col(Endpoint.id) == col(Delivery.endpoint_id))
        .where(Delivery.event_id == event_id)
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    if after_delivery_id is not None:
        stmt = stmt.where(col(Delivery.id) > after_delivery_id)
    if delivery_ids is not None:
        stmt = stmt.where(col(Delivery.id).in_(delivery_ids))
    if endpoint_id is not None:
        stmt = stmt.where(Delivery.endpoint_id == endpoint_id)
    rows = (await session.exec(stmt)).all()
    now = utcnow()
    for delivery, endpoint in rows:
        delivery.status = "paused" if endpoint.status == "paused" else "pending"
        delivery.cycle_attempts = 0
        delivery.next_attempt_at = None
        delivery.updated_at = now
        session.add(delivery)
    await session.commit()
    return rows


async def record_attempt(
    session: AsyncSession,
    *,
    delivery: Record,
    attempt: dict[str, Any],
    status: str,
    next_attempt_at: datetime | None,
    spends_budget: bool = True,
) -> bool:
    """Log the attempt (`attempt`: the attempts row's values but its number) and move the
    delivery on; False when the delivery changed meanwhile.

    The delivery was read before the HTTP request. If something rewrote it while the request was
    on its way (a replay's fresh budget, a deletion closing it), the attempt is logged but that
    new state stands: the attempt must not spend a replay's budget nor close a replayed delivery.
    Every write to a delivery sets `updated_at`, so an unchanged `updated_at` means unchanged.
    """
    deliveries = Delivery.__table__
    values: dict[str, Any] = {
        "attempts": deliveries.c.attempts + 1,
        "last_status_code": attempt["status_code"],
        "last_error": attempt["error"],
        "updated_at": utcnow(),
    }

    def statements(conn: Connection) -> bool:
        # RETURNING gives the attempt its number in the same statement (SQLite ≥ 3.35, PostgreSQL).
        moved = conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery.id, deliveries.c.updated_at == delivery.updated_at)
            .values(
                **values,
                cycle_attempts=deliveries.c.cycle_attempts + int(spends_budget),  # a probe's does not
                status=status,
                next_attempt_at=next_attempt_at,
            )
            .returning(deliveries.c.attempts)
        ).first()
        current = moved is not None
        if moved is None:
            moved = conn.execute(
                update(deliveries).where(deliveries.c.id == delivery.id).values(**values).returning(deliveries.c.attempts)
            ).one()
        conn.execute(insert(Attempt.__table__).values(**attempt, delivery_id=delivery.id, number=moved[0]))
        return current

    return await db.write(session, statements)


async def delivery_refs_page(
    session: AsyncSession, *, clauses: list[Any], after_delivery_id: str | None, limit: int
) -> Sequence[tuple[Delivery, Event]]:
    """Oldest first, so a durable operation walks forward and can resume where it stopped."""
    stmt = (
        select(Delivery, Event)
        .join(Event, col(Event.id) == col(Delivery.event_id))
        .where(*clauses)
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    if after_delivery_id is not None:
        stmt = stmt.where(col(Delivery.id) > after_delivery_id)
    return (await session.exec(stmt)).all()

