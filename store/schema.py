"""The schema's version: `hookline migrate` brings a database to the current revision; processes check it.

The revisions are alembic's, in store/migrations/versions/ (shipped in the package). The first,
the baseline, is the schema that start-up code created before migrations existed: on such a
database it creates only what is missing, so the database is recognised, not recreated.
"""

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, inspect, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
# Two `hookline migrate` at once on PostgreSQL (two deploy jobs, say) take turns on this lock.
_PG_LOCK = 0x486F6F6B  # "Hook"


class SchemaNotCurrent(RuntimeError):
    """The database is not at the revision this version of Hookline runs on."""


def sync_url(url: str) -> str:
    """The synchronous driver of a store URL: alembic runs migrations on a plain connection."""
    for prefix, sync in (
        ("sqlite+aiosqlite://", "sqlite://"),
        ("postgresql+asyncpg://", "postgresql+psycopg://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
    ):
        if url.startswith(prefix):
            return sync + url[len(prefix):]
    return url


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # An attribute, not a main option: an option is %-interpolated, and passwords hold any character.
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "store/migrations/versions/ has no revision"
    return head


def _current(conn: Connection) -> tuple[str | None, bool]:
    """The database's revision (None when unversioned), and whether it holds Hookline's tables."""
    revision = MigrationContext.configure(conn).get_current_revision()
    return revision, "applications" in inspect(conn).get_table_names()


def problem(conn: Connection) -> str | None:
    """Why a process must not start on this database, or None when its schema is current."""
    revision, has_tables = _current(conn)
    head = head_revision()
    if revision == head:
        return None
    if revision is None:
        state = "has a schema from before migrations" if has_tables else "has no schema yet"
    elif revision in {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}:
        state = f"is at revision {revision}, behind {head}"
    else:
        return (
            f"the database is at revision {revision}, which this version of Hookline does not know "
            f"(its newest is {head}): was it migrated by a newer version?"
        )
    return _advice(state)


def _advice(state: str) -> str:
    return f"the database {state}: run `hookline migrate` first, then start this process again"


def check(database_url: str, wait_s: float = 30) -> None:
    """Raise SchemaNotCurrent unless the schema is current; wait up to wait_s for the database to answer."""
    url = make_url(sync_url(database_url))
    if (
        url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        and not Path(url.database).exists()
    ):
        # Connecting would create an empty file, or wait for a directory that nobody will make.
        raise SchemaNotCurrent(_advice("has no schema yet"))
    engine = create_engine(url)
    deadline = time.monotonic() + wait_s
    delay = 0.5
    try:
        while True:
            try:
                with engine.connect() as conn:
                    reason = problem(conn)
                break
            except OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5)
    finally:
        engine.dispose()
    if reason is not None:
        raise SchemaNotCurrent(reason)


async def ensure_current(engine: AsyncEngine) -> None:
    """check() on an engine a process already holds (API start-up, worker, producer)."""
    async with engine.connect() as conn:
        reason = await conn.run_sync(problem)
    if reason is not None:
        raise SchemaNotCurrent(reason)


def migrate(database_url: str) -> tuple[str | None, str]:
    """Upgrade the database to the head revision (idempotent); return its revision before and after.

    An unversioned database with Hookline's tables was made by the start-up code of a version from
    before migrations: the baseline completes it (as that code did) and records it.
    """
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            before, _ = _current(conn)
            config = alembic_config(database_url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            after, _ = _current(conn)
    finally:
        engine.dispose()
    assert after is not None
    return before, after
