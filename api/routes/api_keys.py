"""API keys: credentials for customers' services and tools, each with scopes (see api/auth.py)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from hookline.api.auth import ADMIN, KEY_PREFIX, key_hash, key_prefix, new_key
from hookline.api.deps import KeyPaging, SessionDep
from hookline.api.schemas import IdRef, Input, Name, Page
from hookline.core.ids import new_id
from hookline.store import crud, keys
from hookline.store.tables import ApiKey, utcnow

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])

Scope = Literal["admin", "app:read", "app:write", "events:publish"]


class ApiKeyCreate(Input):
    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=4)]
    app_id: IdRef | None = None
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "ApiKeyCreate":
        if len(set(self.scopes)) != len(self.scopes):
            raise ValueError("scopes must not repeat")
        if ADMIN in self.scopes:
            if self.app_id is not None or len(self.scopes) > 1:
                raise ValueError("an admin key has the admin scope alone and no app_id")
        elif self.app_id is None:
            raise ValueError("app:read, app:write and events:publish keys need an app_id")
        if self.expires_at is not None and self.expires_at <= utcnow():
            raise ValueError("expires_at must be in the future")
        return self


class ApiKeyOut(BaseModel):
    id: str
    prefix: str = Field(description=f"The key's first characters ({KEY_PREFIX}…), not secret: tells keys apart")
    name: str
    scopes: list[str]
    app_id: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown in this response only")


async def _key_or_404(session: SessionDep, key_id: str) -> ApiKey:
    row = await keys.get_key(session, key_id=key_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"api key {key_id} not found")
    return row


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, session: SessionDep) -> ApiKeyCreated:
    """Create a key. `key` is in this response only: Hookline keeps a hash of it."""
    if body.app_id is not None and not await crud.app_exists(session, app_id=body.app_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"application {body.app_id} not found")
    key_id = new_id("key")
    key = new_key(key_id)
    row = await keys.create_key(
        session, key_id=key_id, key_hash=key_hash(key), prefix=key_prefix(key), name=body.name,
        scopes=list(body.scopes), app_id=body.app_id, expires_at=body.expires_at,
    )
    return ApiKeyCreated(
        id=row.id, key=key, prefix=row.prefix, name=row.name, scopes=row.scopes, app_id=row.app_id,
        created_at=row.created_at, expires_at=row.expires_at, last_used_at=None,
    )


@router.get("", response_model=Page[ApiKeyOut])
async def list_api_keys(session: SessionDep, paging: KeyPaging) -> dict:
    """Keys not revoked, newest first, without the keys themselves."""
    rows, cursor = await keys.page_keys(session, limit=paging.limit, cursor=paging.id_cursor("key"))
    return {"data": rows, "next_cursor": cursor}


@router.get("/{key_id}", response_model=ApiKeyOut)
async def get_api_key(key_id: str, session: SessionDep) -> ApiKey:
    return await _key_or_404(session, key_id)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: str, session: SessionDep) -> None:
    """Revoke the key: every API process refuses it (401) from the next request on."""
    await keys.revoke_key(session, key=await _key_or_404(session, key_id))
