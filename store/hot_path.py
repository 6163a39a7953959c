"""The store's hot path: what runs for every event and attempt (publish, fan-out, each delivery's
read and record, sweeps and recovery), written in SQLAlchemy Core for speed."""

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Column, Connection, Table, bindparam, case, delete, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.event_types import subscribed
from hookline.core.ids import event_workflow_id, new_id
from hookline.core.statuses import DeliveryStatus, EndpointStatus
from hookline.store import db
from hookline.store.tables import Attempt, Delivery, Endpoint, Event, EventPayload, EventTarget, core_table, utcnow


DELIVERIES = core_table(Delivery)
ENDPOINTS = core_table(Endpoint)
EVENTS = core_table(Event)
PAYLOADS = core_table(EventPayload)
TARGETS = core_table(EventTarget)
ATTEMPTS = core_table(Attempt)


# Typed rows. What runs for every event or attempt (resolving endpoints, the attempt's read and
# record) goes through Core and returns these, not ORM objects: the ORM's per-statement and
# per-object cost was most of the store's share of the worker's CPU. Each class selects the
# columns it names, in its order (`_columns`), and is built from the result row by position.
# A column added to a table reaches the hot path once it is added here too.
# NamedTuples: immutable snapshots, and built in a third of the time a SimpleNamespace took (a
# frozen dataclass took twice as long as one: its __init__ goes through object.__setattr__).


class DeliveryRow(NamedTuple):
    """A delivery, whole, as its attempt reads it."""

    id: str
    app_id: str
    event_id: str
    endpoint_id: str
    status: str
    attempts: int
    cycle_attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    workflow_id: str
    created_at: datetime
    updated_at: datetime


class EndpointRow(NamedTuple):
    """An endpoint, whole (secrets and header values unsealed), as an attempt reads it."""

    id: str
    app_id: str
    url: str
    description: str | None
    event_types: list[str] | None
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    status: str
    disabled_reason: str | None
    retry: dict | None
    headers: dict | None
    created_at: datetime
    updated_at: datetime
    rate_limit: int | None
    health: str
    consecutive_failures: int


class EventRow(NamedTuple):
    """An event, whole, as an attempt reads it."""

    id: str
    app_id: str
    type: str
    data: dict
    idempotency_key: str | None
    workflow_id: str
    dispatched: bool
    created_at: datetime
    # The version its type was published at (event_payloads), None for a type without versions.
    published_version: int | None = None


class FanOutEvent(NamedTuple):
    """What resolving an event's endpoints needs of it."""

    id: str
    app_id: str
    type: str
    workflow_id: str
    dispatched: bool
    target_endpoint_id: str | None = None  # a test event's one endpoint (event_targets); None: every subscriber


class FanOutEndpoint(NamedTuple):
    """What resolving an event's endpoints needs of each candidate endpoint."""

    id: str
    status: str
    event_types: list[str] | None
    retry: dict | None
    url: str  # its host names the delivery activity in the Web UI


class FanOutDelivery(NamedTuple):
    """A delivery of an event to one endpoint, as the fan-out found or created it."""

    id: str
    endpoint_id: str
    status: str


@cache
def _columns(table: Table, names: tuple[str, ...]) -> tuple[Column[Any], ...]:
    """The table's columns a row class names (its `_fields`), in that order."""
    return tuple(table.c[name] for name in names)


# load_for_delivery's statement, built once (its cache key is then computed once, not per
# attempt), and the slice of its result each row class is built from.
_LOAD_FOR_DELIVERY = (
    core_select(
        *_columns(DELIVERIES, DeliveryRow._fields),
        *_columns(ENDPOINTS, EndpointRow._fields),
        *_columns(EVENTS, EventRow._fields[:-1]),
        PAYLOADS.c.version,  # EventRow.published_version: an outer join on a primary key, nothing more
    )
    .select_from(
        DELIVERIES.outerjoin(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id)
        .outerjoin(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
        .outerjoin(PAYLOADS, (PAYLOADS.c.event_id == DELIVERIES.c.event_id) & PAYLOADS.c.published.is_(True))
    )
    .where(DELIVERIES.c.id == bindparam("delivery_id"))
)
_ENDPOINT_FROM = len(DeliveryRow._fields)
_EVENT_FROM = _ENDPOINT_FROM + len(EndpointRow._fields)


async def first_row(session: AsyncSession, stmt: Any) -> Any:
    """The first row of a Core statement, or None."""
    return (await (await session.connection()).execute(stmt)).first()


def live_secrets(endpoint: Endpoint | EndpointRow, now: datetime) -> list[str]:
    """The current secret, plus the previous one while its rotation grace period lasts."""
    secrets_ = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets_.append(endpoint.previous_secret)
    return secrets_


async def insert_event(
    session: AsyncSession,
    *,
    app_id: str,
    type: str,
    data: dict,
    idempotency_key: str | None,
    payloads: Sequence[dict[str, Any]] = (),
    target_endpoint_id: str | None = None,
) -> tuple[Event, bool]:
    """(event, created). A key seen before for this application returns the existing event.

    A new event is written through `db.write` and is not attached to the session. `payloads`
    (event_payloads rows but their event_id; a versioned type's only) and `target_endpoint_id`
    (the one endpoint a test event goes to, see EventTarget) go in the same transaction, so the
    fan-out never sees the event without them.
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
    versions = [{**p, "event_id": event_id} for p in payloads]

    def statements(conn: Connection) -> None:
        conn.execute(insert(EVENTS).values(**row))
        if versions:
            conn.execute(insert(PAYLOADS), versions)
        if target_endpoint_id is not None:
            conn.execute(insert(TARGETS).values(event_id=event_id, endpoint_id=target_endpoint_id))

    try:
        await db.write(session, statements)
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
    return update(EVENTS).where(EVENTS.c.id == event_id).values(dispatched=True)


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
    result = await session.exec(
        delete(Event).where(col(Event.id) == event.id, col(Event.dispatched).is_(False))
    )
    if result.rowcount:
        await session.exec(delete(EventPayload).where(col(EventPayload.event_id) == event.id))
        await session.exec(delete(EventTarget).where(col(EventTarget.event_id) == event.id))
    await session.commit()



async def event_to_fan_out(session: AsyncSession, *, event_id: str) -> FanOutEvent | None:
    """What resolving an event's endpoints needs of it (`target_endpoint_id`: None = every
    subscriber); None once it is deleted."""
    stmt = (
        core_select(*_columns(EVENTS, FanOutEvent._fields[:-1]), TARGETS.c.endpoint_id)
        .select_from(EVENTS.outerjoin(TARGETS, TARGETS.c.event_id == EVENTS.c.id))
        .where(EVENTS.c.id == event_id)
    )
    row: Any = await db.read(session, lambda conn: conn.execute(stmt).first())
    return FanOutEvent(*row) if row is not None else None


async def ensure_deliveries(
    session: AsyncSession, *, event: FanOutEvent, after_endpoint_id: str | None, limit: int, scan: int = 2000
) -> tuple[list[tuple[FanOutDelivery, FanOutEndpoint]], str | None]:
    """Create (once) the deliveries of the next page of subscribed endpoints; the first page
    also marks the event dispatched.

    Pages on endpoint id; returns the page's (delivery, endpoint) pairs and where to go on,
    or None when every endpoint of the application has been seen. Runs once per page of every
    event, so it reads through Core (see the typed rows above).
    """
    endpoints, deliveries = ENDPOINTS, DELIVERIES
    target = event.target_endpoint_id
    targeted = target is not None

    def read_page(conn: Connection) -> tuple[list[FanOutEndpoint], str | None, dict[str, FanOutDelivery]]:
        found: list[FanOutEndpoint] = []
        after = after_endpoint_id
        scanned = 0
        while len(found) < limit and scanned < scan:
            stmt = core_select(*_columns(endpoints, FanOutEndpoint._fields)).where(
                endpoints.c.app_id == event.app_id, endpoints.c.status != EndpointStatus.DISABLED
            )
            if targeted:
                stmt = stmt.where(endpoints.c.id == target)
            if after:
                stmt = stmt.where(endpoints.c.id > after)
            batch = conn.execute(stmt.order_by(endpoints.c.id).limit(limit)).all()
            if not batch:
                after = None
                break
            scanned += len(batch)
            for candidate in batch:
                after = candidate.id
                # A targeted event goes to its endpoint whatever that one subscribes to.
                if targeted or subscribed(candidate.event_types, event.type):
                    found.append(FanOutEndpoint(*candidate))
                if len(found) >= limit:
                    break
            if len(batch) < limit and len(found) < limit:
                after = None
                break
        # One read for the page's existing deliveries, one write (below) for the missing ones.
        existing: dict[str, FanOutDelivery] = {}
        if found:
            stmt = core_select(*_columns(deliveries, FanOutDelivery._fields)).where(
                deliveries.c.event_id == event.id, deliveries.c.endpoint_id.in_([ep.id for ep in found])
            )
            existing = {d.endpoint_id: FanOutDelivery(*d) for d in conn.execute(stmt).all()}
        return found, after, existing

    found, after, existing = await db.read(session, read_page)
    await session.commit()  # ends the read in the session, where it ran (see db.read)
    now = utcnow()
    missing = []
    for endpoint in found:
        if endpoint.id not in existing:
            delivery_id = new_id("dlv")
            status = DeliveryStatus.PAUSED if endpoint.status == EndpointStatus.PAUSED else DeliveryStatus.PENDING
            row = {
                "id": delivery_id, "app_id": event.app_id, "event_id": event.id, "endpoint_id": endpoint.id,
                "status": status, "attempts": 0,
                "cycle_attempts": 0, "workflow_id": event.workflow_id, "created_at": now, "updated_at": now,
            }
            missing.append(row)
            existing[endpoint.id] = FanOutDelivery(delivery_id, endpoint.id, status)
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


async def load_for_delivery(
    session: AsyncSession, *, delivery_id: str
) -> tuple[DeliveryRow | None, EndpointRow | None, EventRow | None]:
    """A delivery with its endpoint and event, in one query; None where a row is gone."""
    row = await db.read(session, lambda conn: conn.execute(_LOAD_FOR_DELIVERY, {"delivery_id": delivery_id}).first())
    if row is None:
        return None, None, None
    # Each row's columns in turn; an id (its first column) of None: no row joined.
    values = tuple(row)
    endpoint = values[_ENDPOINT_FROM:_EVENT_FROM]
    event = values[_EVENT_FROM:]
    return (
        DeliveryRow(*values[:_ENDPOINT_FROM]),
        EndpointRow(*endpoint) if endpoint[0] is not None else None,
        EventRow(*event) if event[0] is not None else None,
    )


async def reserve_rate_slot(session: AsyncSession, *, endpoint_id: str, rate_limit: int, now: float) -> float:
    """Take the endpoint's next send slot; returns the Unix time it starts at (`now` or later).

    GCRA in one atomic statement on the endpoint row, so every worker process shares the one
    bucket: the slot is max(rate_next_at, now), and rate_next_at moves on by 1/rate_limit.
    """
    endpoints = ENDPOINTS
    last = func.coalesce(endpoints.c.rate_next_at, 0.0)
    slot = case((last > now, last), else_=now)  # max(), written so SQLite and PostgreSQL agree

    def statements(conn: Connection) -> float | None:
        row = conn.execute(
            update(endpoints)
            .where(endpoints.c.id == endpoint_id)
            .values(rate_next_at=slot + 1.0 / rate_limit)
            .returning(endpoints.c.rate_next_at)
        ).first()
        return None if row is None else row[0]

    next_at = await db.write(session, statements)
    # A deleted endpoint has no bucket: its delivery finds that out on its next read.
    return now if next_at is None else next_at - 1.0 / rate_limit


async def set_endpoint_disabled(session: AsyncSession, *, endpoint_id: str, reason: str) -> None:
    stmt = update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(
        status=EndpointStatus.DISABLED, disabled_reason=reason, updated_at=utcnow()
    )
    await (await session.connection()).execute(stmt)
    await session.commit()


async def set_delivery_status(
    session: AsyncSession,
    *,
    delivery_id: str,
    status: DeliveryStatus,
    only_from: Sequence[DeliveryStatus],
    error: str | None = None,
) -> bool:
    """Move a delivery to `status` if it is in one of `only_from`; False when it was not."""
    values: dict[str, Any] = {"status": status, "updated_at": utcnow(), "next_attempt_at": None}
    if error is not None:
        values["last_error"] = error
    stmt = (
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.status).in_(only_from))
        .values(**values)
    )
    result = await session.exec(stmt)
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
        delivery.status = DeliveryStatus.PAUSED if endpoint.status == EndpointStatus.PAUSED else DeliveryStatus.PENDING
        delivery.cycle_attempts = 0
        delivery.next_attempt_at = None
        delivery.updated_at = now
        session.add(delivery)
    await session.commit()
    return rows


async def record_attempt(
    session: AsyncSession,
    *,
    delivery: DeliveryRow,
    attempt: dict[str, Any],
    status: DeliveryStatus,
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
    deliveries = DELIVERIES
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
                update(deliveries)
                .where(deliveries.c.id == delivery.id)
                .values(**values)
                .returning(deliveries.c.attempts)
            ).one()
        conn.execute(insert(ATTEMPTS).values(**attempt, delivery_id=delivery.id, number=moved[0]))
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

