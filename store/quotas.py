"""Counts that quotas are checked against."""

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.store.tables import Endpoint, core_table


async def count_endpoints(session: AsyncSession, *, app_id: str) -> int:
    endpoints = core_table(Endpoint)
    stmt = core_select(func.count()).select_from(endpoints).where(endpoints.c.app_id == app_id)
    return int((await (await session.connection()).execute(stmt)).scalar_one())
