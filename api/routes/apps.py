from fastapi import APIRouter, HTTPException, status
from sqlmodel import select

from hookline.api.deps import AppDep, AppPaging, CredentialDep, SessionDep
from hookline.api.errors import CONFLICT
from hookline.api.schemas import AppCreate, AppOut, AppUpdate, Page
from hookline.core.operational import HOOKLINE_APP_ID
from hookline.store import crud
from hookline.store.tables import Application

router = APIRouter(prefix="/v1/apps", tags=["applications"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppOut)
async def create_app(body: AppCreate, session: SessionDep) -> Application:
    """Create an application: one of your customers, owning endpoints and events."""
    return await crud.create_app(session, name=body.name)


@router.get("", response_model=Page[AppOut])
async def list_apps(session: SessionDep, paging: AppPaging, credential: CredentialDep) -> dict:
    """Every application; for a key bound to one, that one only. The built-in `app_hookline` is
    read by its id: it is not listed (its id is not time-sortable, it would break newest-first)."""
    stmt = select(Application)
    if credential.app_id is not None:
        stmt = stmt.where(Application.id == credential.app_id)
    else:
        stmt = stmt.where(Application.id != HOOKLINE_APP_ID)
    rows, cursor = await crud.page_by_id(
        session, stmt, Application.id, limit=paging.limit, cursor=paging.id_cursor("app")
    )
    return {"data": rows, "next_cursor": cursor}


@router.get("/{app_id}", response_model=AppOut)
async def get_app(app: AppDep) -> Application:
    return app


@router.patch("/{app_id}", response_model=AppOut)
async def update_app(app: AppDep, body: AppUpdate, session: SessionDep) -> Application:
    return await crud.save(session, app, body.model_dump(exclude_unset=True, exclude_none=True))


@router.delete("/{app_id}", status_code=status.HTTP_204_NO_CONTENT, responses=CONFLICT)
async def delete_app(app: AppDep, session: SessionDep) -> None:
    """Delete the application with its endpoints, events, deliveries and attempts; its API keys
    (portal links included) are revoked.

    `app_hookline`, where Hookline publishes its operational events, cannot be deleted (409)."""
    if app.id == HOOKLINE_APP_ID:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{HOOKLINE_APP_ID} is built in and cannot be deleted")
    await crud.delete_app(session, app=app)
