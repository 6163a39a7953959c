"""`hookline rekey`: seal every stored secret and header value again under the newest key."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.store.tables import Endpoint, core_table


async def rekey_endpoints(sessions: async_sessionmaker[AsyncSession], *, batch: int = 500) -> int:
    """Rewrite each endpoint's sealed columns (read with any key, written with the first); the count rewritten.

    Clear values left by older versions are sealed too. A row written meanwhile (every write sets
    `updated_at`) is left alone: its writer sealed it with the keys it runs with.
    """
    endpoints = core_table(Endpoint)
    sealed = (endpoints.c.secret, endpoints.c.previous_secret, endpoints.c.headers)
    rewritten, after = 0, ""
    while True:
        async with sessions() as session:
            conn = await session.connection()
            stmt = select(endpoints.c.id, endpoints.c.updated_at, *sealed).where(endpoints.c.id > after)
            rows = (await conn.execute(stmt.order_by(endpoints.c.id).limit(batch))).all()
            if not rows:
                return rewritten
            for row in rows:
                result = await conn.execute(
                    update(endpoints)
                    .where(endpoints.c.id == row.id, endpoints.c.updated_at == row.updated_at)
                    .values(secret=row.secret, previous_secret=row.previous_secret, headers=row.headers)
                )
                rewritten += result.rowcount
            await session.commit()
            after = rows[-1].id
