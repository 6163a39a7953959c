"""Engine and sessions: the one place that knows which database Hookline talks to."""

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.config import Settings
from hookline.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)


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


T = TypeVar("T")
log = logging.getLogger("hookline.store")

# SQLite engines' synchronous twins (below), by the async engine's sync core.
_TWINS: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()
_WRITE_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hookline-store-write")
# Reads have threads of their own: they must not queue behind writes waiting for SQLite's lock.
_READ_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hookline-store-read")


def _sqlite_pragmas(engine: Engine) -> None:
    # The API and the workers are separate processes writing one file: WAL plus a busy
    # timeout lets them take turns instead of failing with "database is locked".
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


class _OutageLog:
    """Says in the log when the store stops answering, and when it answers again: once each.

    Nothing here retries: pool_pre_ping replaces dead connections, a request that needs the store
    fails meanwhile, and the workflows retry store activities with back-off (STORE_RETRY, at most
    60 s apart) until it is back. The log is how an operator sees a process ride an outage out.
    """

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "the store is unreachable (%s); requests that need it fail and store work is retried "
                "with back-off until it answers again", type(exc).__name__,
            )

    def connected(self) -> None:
        if self.since is not None:
            log.warning("the store answers again after %.1f s; reconnected", time.monotonic() - self.since)
            self.since = None


def _log_outages(engine: Engine) -> None:
    outage = _OutageLog()

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if context.is_disconnect or isinstance(context.sqlalchemy_exception, OperationalError):
            outage.failed(context.original_exception)

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn, _record):  # type: ignore[no-untyped-def]
        outage.connected()


def make_engine(settings: Settings) -> AsyncEngine:
    url = async_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine.sync_engine)
        if engine.url.database not in (None, "", ":memory:"):  # a twin of a memory database would be another one
            twin = create_engine(engine.url.set(drivername="sqlite"), connect_args={"timeout": 30})
            _sqlite_pragmas(twin)
            _TWINS[engine.sync_engine] = twin
        return engine
    engine = create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    _log_outages(engine.sync_engine)
    return engine


async def dispose(engine: AsyncEngine) -> None:
    """Close the engine's connections, and its twin's."""
    twin = _TWINS.pop(engine.sync_engine, None)
    if twin is not None:
        twin.dispose()
    await engine.dispose()


def _twin(session: AsyncSession) -> Engine | None:
    """The synchronous twin of the session's SQLite file engine; None for any other database."""
    bind: Any = session.bind
    return _TWINS.get(bind.sync_engine) if isinstance(bind, AsyncEngine) else None


async def write(session: AsyncSession, work: Callable[[Connection], T]) -> T:
    """Run `work`, the statements of a short write transaction that runs often, and commit.

    SQLite has one write lock for the whole file. Through aiosqlite, every statement is a trip
    to its thread and back through the event loop, and a transaction holds the lock across those
    trips: on a busy worker, milliseconds each, while the other writers sleep in SQLite's busy
    handler. So on SQLite, `work` runs in a thread on a synchronous connection of the same file,
    from BEGIN to COMMIT in one go. On PostgreSQL (and an in-memory SQLite) it runs in the
    session and commits it, so the session must hold no other pending change.

    A cancelled caller does not stop the thread: its transaction still commits or rolls back.
    """
    twin = _twin(session)
    if twin is None:
        result = await session.run_sync(lambda sync_session: work(sync_session.connection()))
        await session.commit()
        return result

    def in_thread() -> T:
        with twin.begin() as conn:
            return work(conn)

    return await asyncio.get_running_loop().run_in_executor(_WRITE_THREADS, in_thread)


async def read(session: AsyncSession, work: Callable[[Connection], T]) -> T:
    """Run `work`, the statements of a short read that runs often (on a delivery's hot path).

    On SQLite, in one trip to a thread on the synchronous twin (see `write`): through aiosqlite,
    checking a connection out, each statement, each fetch and the end of the transaction are a
    trip to its thread and back through the event loop each. The read ends with `work`. On
    PostgreSQL (and an in-memory SQLite) it runs in the session, whose transaction the caller ends.
    """
    twin = _twin(session)
    if twin is None:
        return await session.run_sync(lambda sync_session: work(sync_session.connection()))

    def in_thread() -> T:
        with twin.connect() as conn:  # closing it rolls the read transaction back
            return work(conn)

    return await asyncio.get_running_loop().run_in_executor(_READ_THREADS, in_thread)


async def commit_unless_taken(session: AsyncSession) -> bool:
    """Commit the session's new rows; False, rolled back, when a unique key is taken (by another
    request that wrote first, say)."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
