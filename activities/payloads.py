"""Which version of an event a delivery sends, and its data (docs/event-types.md).

An event of a type without versions goes out as published: nothing is read beyond the
delivery's one query. For a versioned type, the endpoint's pin (`@v1`, `@latest`, or none:
as published) names the version; its data is the published data, the data the producer
supplied for it, or derived by the version's declared transformation (from a version
whose data is at hand, in as many steps as the declarations take), then checked against
that version's schema. Runs in the delivery activity: workflow histories see ids only.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core import versions as versions_core
from hookline.core.versions import TransformFailed
from hookline.store import versions as versions_store
from hookline.store.hot_path import EndpointRow, EventRow
from hookline.store.versions import VersionRow


@dataclass(frozen=True)
class Outgoing:
    data: dict
    version: int | None  # None: a type without versions (v1; the envelope stays as it always was)
    deprecated: bool = False
    sunset_at: datetime | None = None


async def outgoing(session: AsyncSession, *, event: EventRow, endpoint: EndpointRow, max_bytes: int) -> Outgoing:
    """The version and data this endpoint receives of this event; TransformFailed if none can be made."""
    pin = versions_core.pin_for(endpoint.event_types, event.type)
    published = event.published_version
    if published is None:
        if pin not in (None, versions_core.LATEST, "v1"):
            raise TransformFailed(f"{event.type} had no version {pin} when this event was published")
        return Outgoing(data=event.data, version=None)
    rows, supplied = await versions_store.for_resolving(session, event_id=event.id, type_name=event.type)
    by_number = {row.version: row for row in rows}
    if pin is None:
        target = published
    elif pin == versions_core.LATEST:
        target = rows[-1].version if rows else published
    else:
        target = versions_core.number(pin)
    at_hand = {**supplied, published: event.data}
    row = by_number.get(target)
    if row is None and target not in at_hand:  # pinned to a version the type does not have
        raise TransformFailed(f"{event.type} has no version {versions_core.label(target)}")
    data = at_hand.get(target)
    if data is None:
        data = await asyncio.to_thread(_derive, target, by_number, at_hand, max_bytes)
    if row is None:  # the type was deleted since: what was published still goes out
        return Outgoing(data=data, version=target)
    return Outgoing(data=data, version=target, deprecated=row.deprecated, sunset_at=row.sunset_at)


def _derive(target: int, rows: dict[int, VersionRow], at_hand: dict[int, dict], max_bytes: int) -> dict:
    """The target's data through its declared transformations, depth first; CPU only."""
    label = versions_core.label(target)

    def derive(number: int, seen: frozenset[int]) -> dict | None:
        if number in at_hand:
            return at_hand[number]
        row = rows.get(number)
        if row is None:  # a version with no row declares no transformation
            return None
        for source, expression in (row.transforms or {}).items():
            source_number = versions_core.number(source)
            if source_number in seen:
                continue
            source_data = derive(source_number, seen | {number})
            if source_data is not None:
                at_hand[number] = versions_core.transform(
                    expression, source_data, schema=row.json_schema, target=versions_core.label(number),
                    max_bytes=max_bytes,
                )
                return at_hand[number]
        return None

    data = derive(target, frozenset())
    if data is None:
        raise TransformFailed(
            f"no data for {label}: not supplied, and no transformation declared from a version at hand"
        )
    return data
