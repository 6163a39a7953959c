"""The store's reads and writes for event-type versions (docs/event-types.md): the catalog's
versions, what a publish needs of them, the payloads an event carries per version, and usage."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, and_, bindparam, func, insert
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.ids import new_id
from hookline.store import db
from hookline.store.tables import (
    Delivery, Endpoint, Event, EventPayload, EventType, EventTypeVersion, VersionDelivery, core_table, utcnow,
)


# --- the catalog -----------------------------------------------------------------------------------

async def versions_of(session: AsyncSession, *, names: Sequence[str]) -> dict[str, list[EventTypeVersion]]:
    """The version rows of these types, oldest first; a type without rows is absent."""
    if not names:
        return {}
    stmt = select(EventTypeVersion).where(col(EventTypeVersion.type_name).in_(names)).order_by(
        col(EventTypeVersion.type_name), col(EventTypeVersion.version)
    )
    found: dict[str, list[EventTypeVersion]] = {}
    for row in (await session.exec(stmt)).all():
        found.setdefault(row.type_name, []).append(row)
    return found


def implicit_v1(event_type: EventType) -> EventTypeVersion:
    """The one version of a type that has no version rows: v1, the type row's schema."""
    return EventTypeVersion(
        id="", type_name=event_type.name, version=1, description=event_type.description,
        json_schema=event_type.json_schema, created_at=event_type.created_at, updated_at=event_type.updated_at,
    )


async def ensure_rows(session: AsyncSession, *, event_type: EventType) -> list[EventTypeVersion]:
    """The type's version rows, writing its v1 first if it has none (a type becomes versioned)."""
    rows = (await versions_of(session, names=[event_type.name])).get(event_type.name)
    if rows:
        return rows
    v1 = implicit_v1(event_type)
    v1.id = new_id("etv")
    session.add(v1)
    if not await db.commit_unless_taken(session):  # another request wrote it first
        return (await versions_of(session, names=[event_type.name]))[event_type.name]
    return [v1]


async def add_version(
    session: AsyncSession, *, event_type: EventType, fields: dict[str, Any]
) -> EventTypeVersion | None:
    """The next version of the type; it becomes the latest, whose schema and description the
    type row mirrors (what publishing without a version validates against). None on a race."""
    rows = await ensure_rows(session, event_type=event_type)
    now = utcnow()
    row = EventTypeVersion(
        id=new_id("etv"), type_name=event_type.name, version=rows[-1].version + 1,
        created_at=now, updated_at=now, **fields,
    )
    session.add(row)
    event_type.json_schema, event_type.description, event_type.updated_at = row.json_schema, row.description, now
    session.add(event_type)
    return row if await db.commit_unless_taken(session) else None


async def update_version(
    session: AsyncSession, *, row: EventTypeVersion, changes: dict[str, Any], mirror_to: EventType | None
) -> EventTypeVersion:
    """Change a version; `mirror_to`, the type row when the version is its latest, follows its
    schema and description."""
    now = utcnow()
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now
    session.add(row)
    if mirror_to is not None and ({"json_schema", "description"} & changes.keys()):
        mirror_to.json_schema, mirror_to.description, mirror_to.updated_at = row.json_schema, row.description, now
        session.add(mirror_to)
    await session.commit()
    return row


async def mirror_latest(session: AsyncSession, *, name: str, changes: dict[str, Any]) -> None:
    """A PATCH of the type's schema or description changes its latest version too."""
    changes = {k: v for k, v in changes.items() if k in ("json_schema", "description")}
    rows = (await versions_of(session, names=[name])).get(name)
    if changes and rows:
        await update_version(session, row=rows[-1], changes=changes, mirror_to=None)


async def delete_versions(session: AsyncSession, *, name: str) -> None:
    rows = (await versions_of(session, names=[name])).get(name) or []
    for row in rows:
        await session.delete(row)


# --- publishing ----------------------------------------------------------------------------------------

def _publish_target(*, latest: bool) -> Any:
    types, versions = core_table(EventType), core_table(EventTypeVersion)
    others = versions.alias("others")
    wanted = (
        core_select(func.max(others.c.version))
        .where(others.c.type_name == types.c.name)
        .correlate(types)
        .scalar_subquery()
        if latest
        else bindparam("version")
    )
    any_row = core_select(others.c.id).where(others.c.type_name == types.c.name).correlate(types).exists()
    return (
        core_select(
            types.c.json_schema, versions.c.version, versions.c.json_schema.label("v_schema"),
            versions.c.deprecated, versions.c.sunset_at, any_row.label("versioned"),
        )
        .select_from(
            types.outerjoin(versions, and_(versions.c.type_name == types.c.name, versions.c.version == wanted))
        )
        .where(types.c.name == bindparam("name"))
    )


# Built once: every publish runs one, and building a statement costs more than running it.
_PUBLISH_LATEST = _publish_target(latest=True)
_PUBLISH_VERSION = _publish_target(latest=False)


async def publish_target(session: AsyncSession, *, name: str, version: int | None) -> Row[Any] | None:
    """What publishing `name` at `version` (None: the latest) needs, in one query: the type's
    `json_schema`, and for a versioned type the target's `version`, `v_schema`, `deprecated`,
    `sunset_at` and `versioned` (True). None for an unregistered type."""
    stmt, params = (
        (_PUBLISH_LATEST, {"name": name}) if version is None else (_PUBLISH_VERSION, {"name": name, "version": version})
    )
    row = (await (await session.connection()).execute(stmt, params)).first()
    return row


async def version_schemas(session: AsyncSession, *, name: str, numbers: Sequence[int]) -> dict[int, EventTypeVersion]:
    stmt = select(EventTypeVersion).where(
        EventTypeVersion.type_name == name, col(EventTypeVersion.version).in_(numbers)
    )
    return {row.version: row for row in (await session.exec(stmt)).all()}


# --- delivering ----------------------------------------------------------------------------------------

class VersionRow(NamedTuple):
    """A type version, as a delivery resolving its data reads it."""

    version: int
    json_schema: dict | None
    transforms: dict | None
    deprecated: bool
    sunset_at: datetime | None


async def for_resolving(
    session: AsyncSession, *, event_id: str, type_name: str
) -> tuple[list[VersionRow], dict[int, dict]]:
    """A versioned event's type versions (oldest first) and the payloads supplied with it."""
    versions, payloads = core_table(EventTypeVersion), core_table(EventPayload)
    conn = await session.connection()
    rows = (
        await conn.execute(
            core_select(*(versions.c[name] for name in VersionRow._fields))
            .where(versions.c.type_name == type_name)
            .order_by(versions.c.version)
        )
    ).all()
    supplied = (
        await conn.execute(
            core_select(payloads.c.version, payloads.c.data).where(
                payloads.c.event_id == event_id, payloads.c.published.is_(False)
            )
        )
    ).all()
    return [VersionRow(*row) for row in rows], {p.version: p.data for p in supplied}


async def record_delivered(session: AsyncSession, *, delivery_id: str, type_name: str, version: int) -> None:
    """Count a delivery of a versioned type at its version (once; a replay's success counts anew)."""
    table = core_table(VersionDelivery)
    values = {"delivery_id": delivery_id, "type_name": type_name, "version": version, "delivered_at": utcnow()}

    def statements(conn: Any) -> None:
        conn.execute(table.delete().where(table.c.delivery_id == delivery_id))
        conn.execute(insert(table).values(**values))

    await db.write(session, statements)


# --- usage -----------------------------------------------------------------------------------------------

async def subscribed_endpoints(session: AsyncSession) -> Sequence[tuple[str, list[str] | None]]:
    """Every endpoint that is not disabled, with its subscription entries (a management read)."""
    stmt = select(Endpoint.id, Endpoint.event_types).where(Endpoint.status != "disabled")
    return (await session.exec(stmt)).all()  # type: ignore[return-value]


async def deliveries_by_version(session: AsyncSession, *, name: str, since: datetime) -> dict[int, int]:
    """Successful deliveries of the type since then, by version; one without a recorded version
    went out before the type had versions, so at v1."""
    stmt = (
        select(func.coalesce(VersionDelivery.version, 1), func.count())
        .select_from(Delivery)
        .join(Event, col(Event.id) == col(Delivery.event_id))
        .outerjoin(VersionDelivery, col(VersionDelivery.delivery_id) == col(Delivery.id))
        .where(Event.type == name, Delivery.status == "succeeded", col(Delivery.updated_at) >= since)
        .group_by(func.coalesce(VersionDelivery.version, 1))
    )
    return {int(v): int(n) for v, n in (await session.exec(stmt)).all()}


DAY = timedelta(days=1)
