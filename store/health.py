"""Endpoint health in the store: the failure count every attempt keeps, and the breaker's transitions.

Every transition is one conditional UPDATE, so of two workers that see it at once, one wins it
and only the winner announces it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.event_types import subscribed
from hookline.core.operational import FAILING, HEALTHY, HOOKLINE_APP_ID, HOOKLINE_APP_NAME
from hookline.store import db
from hookline.core.statuses import OPEN_STATUSES
from hookline.store.hot_path import first_row
from hookline.store.tables import Application, Delivery, Endpoint, core_table, utcnow

_endpoints = core_table(Endpoint)
_deliveries = core_table(Delivery)


@dataclass(frozen=True)
class Health:
    """What the breaker needs of an endpoint."""

    app_id: str
    status: str
    health: str
    failing_since: datetime | None
    consecutive_failures: int
    disabled_reason: str | None


async def count_failure(session: AsyncSession, *, endpoint_id: str) -> int:
    """One more failed attempt in a row; returns the new count (0 if the endpoint is gone)."""

    def statements(conn: Connection) -> int:
        row = conn.execute(
            update(_endpoints)
            .where(_endpoints.c.id == endpoint_id)
            .values(consecutive_failures=_endpoints.c.consecutive_failures + 1)
            .returning(_endpoints.c.consecutive_failures)
        ).first()
        return row[0] if row is not None else 0

    return await db.write(session, statements)


async def count_success(session: AsyncSession, *, endpoint_id: str) -> None:
    """A success ends the run of failures; the caller writes only when its read saw a non-zero count."""
    stmt = update(_endpoints).where(_endpoints.c.id == endpoint_id, _endpoints.c.consecutive_failures > 0)
    await db.write(session, lambda conn: conn.execute(stmt.values(consecutive_failures=0)))


async def read_health(session: AsyncSession, *, endpoint_id: str) -> Health | None:
    e = _endpoints
    stmt = core_select(
        e.c.app_id, e.c.status, e.c.health, e.c.failing_since, e.c.consecutive_failures, e.c.disabled_reason
    ).where(e.c.id == endpoint_id)
    row = await first_row(session, stmt)
    await session.commit()
    return Health(**row._mapping) if row is not None else None


async def turn_failing(session: AsyncSession, *, endpoint_id: str, threshold: int) -> bool:
    """healthy → failing, if the count reached the threshold; True for the one caller that made the change."""
    stmt = (
        update(_endpoints)
        .where(
            _endpoints.c.id == endpoint_id,
            _endpoints.c.health == HEALTHY,
            _endpoints.c.status != "disabled",
            _endpoints.c.consecutive_failures >= threshold,
        )
        .values(health=FAILING, failing_since=utcnow())
    )
    return bool(await db.write(session, lambda conn: conn.execute(stmt).rowcount))


async def turn_healthy(session: AsyncSession, *, endpoint_id: str) -> bool:
    """failing → healthy after a probe got through; True for the one caller that made the change."""
    stmt = (
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id, _endpoints.c.health == FAILING)
        .values(health=HEALTHY, failing_since=None, consecutive_failures=0)
    )
    return bool(await db.write(session, lambda conn: conn.execute(stmt).rowcount))


async def disable_failing(session: AsyncSession, *, endpoint_id: str, reason: str) -> bool:
    """A failing endpoint becomes disabled; True for the one caller that made the change."""
    stmt = (
        update(_endpoints)
        .where(_endpoints.c.id == endpoint_id, _endpoints.c.health == FAILING, _endpoints.c.status != "disabled")
        .values(status="disabled", disabled_reason=reason, updated_at=utcnow())
    )
    return bool(await db.write(session, lambda conn: conn.execute(stmt).rowcount))


async def probe_candidate(session: AsyncSession, *, endpoint_id: str) -> str | None:
    """The oldest open delivery of the endpoint (held ones first), for a probe; None if there is none."""
    d = _deliveries
    stmt = (
        core_select(d.c.id)
        .where(d.c.endpoint_id == endpoint_id, d.c.status.in_(("paused", *OPEN_STATUSES)))
        .order_by((d.c.status != "paused"), d.c.id)
        .limit(1)
    )
    row = await first_row(session, stmt)
    await session.commit()
    return row[0] if row is not None else None


async def count_by_health(session: AsyncSession) -> dict[str, int]:
    """Endpoints by health, disabled ones apart: one grouped count for a metrics scrape."""
    e = _endpoints
    stmt = core_select(e.c.status, e.c.health, func.count()).group_by(e.c.status, e.c.health)
    rows = (await (await session.connection()).execute(stmt)).all()
    await session.commit()
    counts = {HEALTHY: 0, FAILING: 0, "disabled": 0}
    for status, health, n in rows:
        key = "disabled" if status == "disabled" else health
        counts[key] = counts.get(key, 0) + n
    return counts


async def ensure_hookline_app(session: AsyncSession) -> None:
    """Create the built-in application once; the API and the worker both call it at start."""
    apps = core_table(Application)
    if await first_row(session, core_select(apps.c.id).where(apps.c.id == HOOKLINE_APP_ID)) is not None:
        await session.commit()
        return
    await session.commit()
    now = utcnow()
    row: dict[str, Any] = {"id": HOOKLINE_APP_ID, "name": HOOKLINE_APP_NAME, "created_at": now, "updated_at": now}
    try:
        await db.write(session, lambda conn: conn.execute(insert(apps).values(**row)))
    except IntegrityError:
        await session.rollback()  # the other process made it first


async def has_subscriber(session: AsyncSession, *, event_type: str) -> bool:
    """Whether an endpoint of app_hookline would receive this type: none, and nothing is published."""
    e = _endpoints
    stmt = core_select(e.c.event_types).where(e.c.app_id == HOOKLINE_APP_ID, e.c.status != "disabled")
    rows = (await (await session.connection()).execute(stmt)).all()
    await session.commit()
    return any(subscribed(r.event_types, event_type) for r in rows)
