from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import select

from hookline.api.deps import AppDep, AttemptPaging, DeliveryId, DeliveryPaging, SessionDep, SettingsDep, TemporalDep
from hookline.api.errors import CONFLICT, TEMPORAL
from hookline.api.schemas import AttemptOut, DeadLetterReplay, DeliveryOut, Page, Replayed
from hookline.services import controls
from hookline.store import crud
from hookline.store.tables import Delivery

router = APIRouter(prefix="/v1/apps/{app_id}", tags=["deliveries"])

DeliveryStatus = Literal["pending", "retrying", "paused", "succeeded", "dead_lettered"]


async def _delivery_or_404(session: SessionDep, app_id: str, delivery_id: str) -> Delivery:
    delivery = await crud.get_delivery(session, app_id=app_id, delivery_id=delivery_id)
    if delivery is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"delivery {delivery_id} not found")
    return delivery


@router.get("/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    app: AppDep,
    session: SessionDep,
    paging: DeliveryPaging,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    endpoint_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    stmt = select(Delivery).where(
        *crud.delivery_filter(app_id=app.id, endpoint_id=endpoint_id, statuses=[status_] if status_ else None)
    )
    rows, cursor = await crud.page_by_id(session, stmt, Delivery.id, limit=paging.limit, cursor=paging.id_cursor("dlv"))
    return {"data": rows, "next_cursor": cursor}


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut)
async def get_delivery(app: AppDep, delivery_id: DeliveryId, session: SessionDep) -> Delivery:
    return await _delivery_or_404(session, app.id, delivery_id)


@router.get("/deliveries/{delivery_id}/attempts", response_model=Page[AttemptOut])
async def list_attempts(app: AppDep, delivery_id: DeliveryId, session: SessionDep, paging: AttemptPaging) -> dict:
    """Every HTTP attempt of the delivery, across replays, in attempt order."""
    await _delivery_or_404(session, app.id, delivery_id)
    after = 0
    if paging.cursor is not None:
        if not paging.cursor.isdigit():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this list returned")
        after = int(paging.cursor)
    rows, last = await crud.list_attempts(session, delivery_id=delivery_id, limit=paging.limit, after_number=after)
    return {"data": rows, "next_cursor": str(last) if last is not None else None}


@router.post(
    "/deliveries/{delivery_id}/replay", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryOut,
    responses={**CONFLICT, **TEMPORAL},
)
async def replay_delivery(
    app: AppDep, delivery_id: DeliveryId, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> Delivery:
    """Send this delivery again, whatever its status, with a fresh retry budget."""
    delivery = await _delivery_or_404(session, app.id, delivery_id)
    await controls.replay_delivery(session=session, client=client, settings=settings, delivery=delivery)
    return delivery


@router.post("/dead-letters/replay", status_code=status.HTTP_202_ACCEPTED, response_model=Replayed, responses=TEMPORAL)
async def replay_dead_letters(
    app: AppDep, session: SessionDep, client: TemporalDep, settings: SettingsDep, body: DeadLetterReplay | None = None
) -> Replayed:
    """Replay every dead letter of the application (or of one endpoint, or updated since a time)."""
    body = body or DeadLetterReplay()
    count = await controls.replay_dead_letters(
        session=session, client=client, settings=settings, app_id=app.id, endpoint_id=body.endpoint_id, since=body.since
    )
    return Replayed(replayed=count)
