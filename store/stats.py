"""Counts for the metrics the API computes at scrape time: one grouped query each."""

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.store.tables import Delivery, core_table


async def deliveries_by_status(session: AsyncSession) -> dict[str, int]:
    """How many deliveries are in each status, over every application."""
    deliveries = core_table(Delivery)
    stmt = core_select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    rows = (await (await session.connection()).execute(stmt)).all()
    await session.commit()  # ends the read
    return {status: count for status, count in rows}
