from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from sqlmodel import select

from hookline.api.deps import EventTypePaging, SessionDep
from hookline.api.errors import CONFLICT
from hookline.api.schemas import (
    EventTypeCreate, EventTypeOut, EventTypeUpdate, EventTypeUsage, EventTypeVersionCreate, EventTypeVersionOut,
    EventTypeVersionUpdate, Page, VersionUsage,
)
from hookline.core import versions as versions_core
from hookline.core.event_types import subscribed
from hookline.core.schemas import UnusableSchema, check_schema
from hookline.services import catalog
from hookline.services.errors import SchemaViolation
from hookline.services.validation import check_data
from hookline.store import crud
from hookline.store import versions as versions_store
from hookline.store.tables import EventType, EventTypeVersion, utcnow

router = APIRouter(prefix="/v1/event-types", tags=["event types"])

VersionPath = Annotated[str, Path(pattern=versions_core.VERSION_PATTERN, max_length=5, description="`v1`, `v2`, …")]
# GET /v1/event-types/asyncapi is the catalog's export, so no type can have that name.
RESERVED_NAMES = {"asyncapi"}


def _version_out(row: EventTypeVersion) -> EventTypeVersionOut:
    return EventTypeVersionOut(
        version=versions_core.label(row.version), description=row.description, schema_=row.json_schema,
        example=row.example, transforms=row.transforms, deprecated=row.deprecated, sunset_at=row.sunset_at,
        sunset=row.sunset_at is not None and row.sunset_at <= utcnow(),
    )


def _out(row: EventType, versions: list[EventTypeVersion] | None = None) -> EventTypeOut:
    versions = versions or [versions_store.implicit_v1(row)]
    return EventTypeOut(
        name=row.name, description=row.description, schema_=row.json_schema,
        created_at=row.created_at, updated_at=row.updated_at,
        latest_version=versions_core.label(versions[-1].version), versions=[_version_out(v) for v in versions],
    )


async def _with_versions(session: SessionDep, row: EventType) -> EventTypeOut:
    found = await versions_store.versions_of(session, names=[row.name])
    return _out(row, found.get(row.name))


def _check_schema(schema: dict | None) -> None:
    """422 for an invalid schema and for one that refers outside itself (see core.schemas)."""
    if schema is None:
        return
    try:
        check_schema(schema)
    except UnusableSchema as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"schema refused: {exc}") from exc


async def _get_or_404(session: SessionDep, name: str) -> EventType:
    row = await crud.get_event_type(session, name=name)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"event type {name} not found")
    return row


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=EventTypeOut, response_model_by_alias=True,
    responses=CONFLICT,
)
async def create_event_type(body: EventTypeCreate, session: SessionDep) -> EventTypeOut:
    """Register an event type (its v1); with a JSON Schema, published `data` of this type must satisfy it."""
    if body.name in RESERVED_NAMES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{body.name} is a reserved name")
    _check_schema(body.schema_)
    row = await crud.create_event_type(
        session, name=body.name, description=body.description, json_schema=body.schema_
    )
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"event type {body.name} already exists")
    return _out(row)


@router.get("", response_model=Page[EventTypeOut], response_model_by_alias=True)
async def list_event_types(session: SessionDep, paging: EventTypePaging) -> dict:
    """The catalog: each type with its versions, schemas, examples and deprecations."""
    rows, cursor = await crud.page_by_id(
        session, select(EventType), EventType.id, limit=paging.limit, cursor=paging.id_cursor("etp")
    )
    found = await versions_store.versions_of(session, names=[r.name for r in rows])
    return {"data": [_out(r, found.get(r.name)) for r in rows], "next_cursor": cursor}


@router.get("/asyncapi", response_model=dict[str, Any])
async def export_asyncapi(session: SessionDep) -> dict[str, Any]:
    """The whole catalog as an AsyncAPI 3.0 document: one message per type and version."""
    rows = (await session.exec(select(EventType).order_by(EventType.name))).all()
    found = await versions_store.versions_of(session, names=[r.name for r in rows])
    return catalog.asyncapi([(r, found.get(r.name) or [versions_store.implicit_v1(r)]) for r in rows])


@router.get("/{name}", response_model=EventTypeOut, response_model_by_alias=True)
async def get_event_type(name: str, session: SessionDep) -> EventTypeOut:
    return await _with_versions(session, await _get_or_404(session, name))


@router.patch("/{name}", response_model=EventTypeOut, response_model_by_alias=True)
async def update_event_type(name: str, body: EventTypeUpdate, session: SessionDep) -> EventTypeOut:
    row = await _get_or_404(session, name)
    changes = body.model_dump(exclude_unset=True)
    if "schema_" in changes:
        _check_schema(changes["schema_"])
        changes["json_schema"] = changes.pop("schema_")
    row = await crud.save(session, row, changes)
    await versions_store.mirror_latest(session, name=name, changes=changes)  # the type's fields are its latest's
    return await _with_versions(session, row)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_event_type(name: str, session: SessionDep) -> None:
    """The type and all its versions."""
    row = await _get_or_404(session, name)
    await versions_store.delete_versions(session, name=name)
    await session.delete(row)
    await session.commit()


async def _check_version_fields(
    name: str, number: int, known: list[int], changes: dict[str, Any], schema: dict | None
) -> dict[str, Any]:
    """The version's fields as stored, or 422: schema rules, example against the schema,
    transformations from existing other versions that compile."""
    if "schema_" in changes:
        _check_schema(changes["schema_"])
        changes["json_schema"] = schema = changes.pop("schema_")
    for source, expression in (changes.get("transforms") or {}).items():
        source_number = versions_core.number(source)
        if source_number == number or source_number not in known:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"transforms: {source} is not another version of {name}",
            )
        try:
            versions_core.check_expression(expression)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"transforms.{source}: {exc}") from None
    example = changes.get("example")
    if example is not None and schema is not None:
        try:
            await check_data(f"{name}@{versions_core.label(number)}", schema, example)
        except SchemaViolation as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"example: {exc}") from exc
    return changes


async def _version_or_404(
    session: SessionDep, row: EventType, version: str
) -> tuple[EventTypeVersion, list[EventTypeVersion]]:
    known = await versions_store.versions_of(session, names=[row.name])
    rows = known.get(row.name) or [versions_store.implicit_v1(row)]
    number = versions_core.number(version)
    match = next((v for v in rows if v.version == number), None)
    if match is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"event type {row.name} has no version {version}")
    return match, rows


@router.post(
    "/{name}/versions", status_code=status.HTTP_201_CREATED, response_model=EventTypeVersionOut,
    response_model_by_alias=True, responses=CONFLICT,
)
async def create_version(name: str, body: EventTypeVersionCreate, session: SessionDep) -> EventTypeVersionOut:
    """Add the type's next version; it becomes the latest (what publishing without a version means)."""
    row = await _get_or_404(session, name)
    existing = (await versions_store.versions_of(session, names=[name])).get(name) or [versions_store.implicit_v1(row)]
    number = existing[-1].version + 1
    fields = await _check_version_fields(
        name, number, [v.version for v in existing], body.model_dump(exclude_unset=True), None
    )
    version = await versions_store.add_version(session, event_type=row, fields=fields)
    if version is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"another version of {name} was added meanwhile; try again"
        )
    return _version_out(version)


@router.get("/{name}/versions/{version}", response_model=EventTypeVersionOut, response_model_by_alias=True)
async def get_version(name: str, version: VersionPath, session: SessionDep) -> EventTypeVersionOut:
    match, _ = await _version_or_404(session, await _get_or_404(session, name), version)
    return _version_out(match)


@router.patch("/{name}/versions/{version}", response_model=EventTypeVersionOut, response_model_by_alias=True)
async def update_version(
    name: str, version: VersionPath, body: EventTypeVersionUpdate, session: SessionDep
) -> EventTypeVersionOut:
    """Change a version: its schema, example, transformations, or deprecation and sunset date."""
    row = await _get_or_404(session, name)
    match, rows = await _version_or_404(session, row, version)
    changes = await _check_version_fields(
        name, match.version, [v.version for v in rows], body.model_dump(exclude_unset=True), match.json_schema
    )
    if changes.get("deprecated") is None:
        changes.pop("deprecated", None)  # null leaves it as it is
    if changes.get("sunset_at") is not None:
        changes.setdefault("deprecated", True)  # a sunset date deprecates
    if not match.id:  # the implicit v1 of a type without versions: written now
        rows = await versions_store.ensure_rows(session, event_type=row)
        match = rows[0]
    latest = match.version == rows[-1].version
    version_row = await versions_store.update_version(
        session, row=match, changes=changes, mirror_to=row if latest else None
    )
    return _version_out(version_row)


@router.get("/{name}/usage", response_model=EventTypeUsage)
async def usage(name: str, session: SessionDep) -> EventTypeUsage:
    """Per version: endpoints pinned to it and deliveries in the last day, so an operator knows
    when a deprecated version can go."""
    row = await _get_or_404(session, name)
    rows = (await versions_store.versions_of(session, names=[name])).get(name) or [versions_store.implicit_v1(row)]
    latest = rows[-1].version
    pinned: dict[int, int] = {}
    unpinned = 0
    for _, entries in await versions_store.subscribed_endpoints(session):
        if not subscribed(entries, name):
            continue
        pin = versions_core.pin_for(entries, name)
        if pin is None:
            unpinned += 1
        else:
            number = latest if pin == versions_core.LATEST else versions_core.number(pin)
            pinned[number] = pinned.get(number, 0) + 1
    delivered = await versions_store.deliveries_by_version(session, name=name, since=utcnow() - versions_store.DAY)
    return EventTypeUsage(
        name=name,
        unpinned_endpoints=unpinned,
        versions=[
            VersionUsage(
                version=versions_core.label(v.version), deprecated=v.deprecated, sunset_at=v.sunset_at,
                endpoints=pinned.get(v.version, 0), deliveries_last_day=delivered.get(v.version, 0),
            )
            for v in rows
        ],
    )
