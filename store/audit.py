"""The audit trail: one row per change made through the API, written once, read newest first."""

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.ids import new_id
from hookline.store.crud import page_by_id
from hookline.store.tables import AuditEntry, utcnow


async def record(
    session: AsyncSession,
    *,
    credential_id: str,
    action: str,
    app_id: str | None,
    target_id: str | None,
    status_code: int,
    fields: list[str] | None,
) -> AuditEntry:
    entry = AuditEntry(
        id=new_id("aud"), created_at=utcnow(), credential_id=credential_id, action=action,
        app_id=app_id, target_id=target_id, status_code=status_code, fields=fields,
    )
    session.add(entry)
    await session.commit()
    return entry


async def page(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    app_id: str | None = None,
    credential_id: str | None = None,
    action: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
) -> tuple[Sequence[AuditEntry], str | None]:
    """Entries matching every filter given, newest first."""
    stmt = select(AuditEntry)
    for column, value in (
        (AuditEntry.app_id, app_id),
        (AuditEntry.credential_id, credential_id),
        (AuditEntry.action, action),
        (AuditEntry.target_id, target_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        stmt = stmt.where(AuditEntry.created_at >= since)
    return await page_by_id(session, stmt, AuditEntry.id, limit=limit, cursor=cursor)
