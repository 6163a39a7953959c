from fastapi import APIRouter, HTTPException, status
from sqlmodel import select

from hookline.api.deps import EventTypePaging, SessionDep
from hookline.api.errors import CONFLICT
from hookline.api.schemas import EventTypeCreate, EventTypeOut, EventTypeUpdate, Page
from hookline.core.schemas import UnusableSchema, check_schema
from hookline.store import crud
from hookline.store.tables import EventType

router = APIRouter(prefix="/v1/event-types", tags=["event types"])


def _out(row: EventType) -> EventTypeOut:
    return EventTypeOut(
        name=row.name, description=row.description, schema_=row.json_schema,
        created_at=row.created_at, updated_at=row.updated_at,
    )


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
    """Register an event type; with a JSON Schema, published `data` of this type must satisfy it."""
    _check_schema(body.schema_)
    row = await crud.create_event_type(
        session, name=body.name, description=body.description, json_schema=body.schema_
    )
    if row is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"event type {body.name} already exists")
    return _out(row)


@router.get("", response_model=Page[EventTypeOut], response_model_by_alias=True)
async def list_event_types(session: SessionDep, paging: EventTypePaging) -> dict:
    rows, cursor = await crud.page_by_id(
        session, select(EventType), EventType.id, limit=paging.limit, cursor=paging.id_cursor("etp")
    )
    return {"data": [_out(r) for r in rows], "next_cursor": cursor}


@router.get("/{name}", response_model=EventTypeOut, response_model_by_alias=True)
async def get_event_type(name: str, session: SessionDep) -> EventTypeOut:
    return _out(await _get_or_404(session, name))


@router.patch("/{name}", response_model=EventTypeOut, response_model_by_alias=True)
async def update_event_type(name: str, body: EventTypeUpdate, session: SessionDep) -> EventTypeOut:
    row = await _get_or_404(session, name)
    changes = body.model_dump(exclude_unset=True)
    if "schema_" in changes:
        _check_schema(changes["schema_"])
        changes["json_schema"] = changes.pop("schema_")
    return _out(await crud.save(session, row, changes))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_event_type(name: str, session: SessionDep) -> None:
    row = await _get_or_404(session, name)
    await session.delete(row)
    await session.commit()
