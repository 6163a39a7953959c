"""Reads and writes of API keys. The store holds a key's hash, never the key."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.store import db
from hookline.store.crud import page_by_id
from hookline.store.tables import ApiKey, core_table, utcnow

# last_used_at is written at most this often per key, so using a key stays one indexed read.
LAST_USED_EVERY = timedelta(minutes=1)


async def create_key(
    session: AsyncSession, *, key_id: str, key_hash: str, prefix: str, name: str, scopes: list[str],
    app_id: str | None, expires_at: datetime | None,
) -> ApiKey:
    row = ApiKey(
        id=key_id, key_hash=key_hash, prefix=prefix, name=name, scopes=scopes, app_id=app_id,
        created_at=utcnow(), expires_at=expires_at, last_used_at=None, revoked_at=None,
    )
    session.add(row)
    await session.commit()
    return row


async def key_for_auth(session: AsyncSession, *, key_id: str) -> Any:
    """What authenticating a key needs, by primary key (Core, as for every publish: see store/hot_path.py)."""
    keys = core_table(ApiKey)
    stmt = core_select(
        keys.c.id, keys.c.key_hash, keys.c.scopes, keys.c.app_id, keys.c.expires_at, keys.c.last_used_at,
        keys.c.revoked_at,
    ).where(keys.c.id == key_id)
    return (await (await session.connection()).execute(stmt)).first()


async def touch_last_used(session: AsyncSession, *, key_id: str, now: datetime) -> None:
    """Set last_used_at unless another request (or API process) did within LAST_USED_EVERY."""
    keys = core_table(ApiKey)
    stmt = (
        update(keys)
        .where(keys.c.id == key_id)
        .where(or_(keys.c.last_used_at.is_(None), keys.c.last_used_at < now - LAST_USED_EVERY))
        .values(last_used_at=now)
    )
    await db.write(session, lambda conn: conn.execute(stmt))


async def page_keys(session: AsyncSession, *, limit: int, cursor: str | None) -> tuple[Sequence[ApiKey], str | None]:
    """Keys not revoked, newest first."""
    stmt = select(ApiKey).where(ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    return await page_by_id(session, stmt, ApiKey.id, limit=limit, cursor=cursor)


async def get_key(session: AsyncSession, *, key_id: str) -> ApiKey | None:
    row = await session.get(ApiKey, key_id)
    return row if row is not None and row.revoked_at is None else None


async def revoke_key(session: AsyncSession, *, key: ApiKey) -> None:
    """Kept, marked revoked: authentication refuses it from the next request on."""
    key.revoked_at = utcnow()
    session.add(key)
    await session.commit()
