"""Engine and sessions: the one place that knows which database Hookline talks to."""

import asyncio

from sqlalchemy import Connection, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from core.config import Settings
from store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def async_url(url: str) -> str:
    """Map the URLs people write to the async drivers Hookline runs on."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def make_engine(settings: Settings) -> AsyncEngine:
    url = async_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # The API and the worker are separate processes writing one file: WAL plus a busy
        # timeout lets them take turns instead of failing with "database is locked".
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def _create_missing(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)
    # create_all skips tables that exist, with their indexes: an index added since a database was
    # created is added here.
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and indexes (idempotent); migrations can take over from this later."""
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_create_missing)
            return
        except DBAPIError:
            # The API and the worker may both start on an empty database at once.
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)
