"""Migrations: `hookline migrate` brings a database with data in it to the current schema; the API and
workers refuse to start on a schema that is behind.

The released schema is built from the baseline revision itself (never from today's tables.py), so
these tests keep proving the upgrade path as revisions are added.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel, select

from hookline.core.config import Settings
from hookline.store import tables
from hookline.store.db import dispose, make_engine, make_sessionmaker
from hookline.store.schema import BASELINE, alembic_config, head_revision, migrate, sync_url
from tests.harness import ENCRYPTION_KEY, TOKEN, PostgresCluster

# Runs `hookline migrate` and the API and worker as processes, on SQLite and on PostgreSQL.
pytestmark = pytest.mark.stack

NOW = "2026-01-02 03:04:05"
# One row in every table, as the released version wrote them (secrets in clear, as before encryption).
ROWS = [
    f"INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'kept', '{NOW}', '{NOW}')",
    f"INSERT INTO event_types (id, name, created_at, updated_at) VALUES ('et_1', 'invoice.paid', '{NOW}', '{NOW}')",
    "INSERT INTO endpoints (id, app_id, url, secret, status, event_types, created_at, updated_at) VALUES "
    f"('ep_1', 'app_1', 'https://example.com/hook', 'whsec_old', 'active', '[\"invoice.paid\"]', '{NOW}', '{NOW}')",
    "INSERT INTO events (id, app_id, type, data, workflow_id, dispatched, created_at) VALUES "
    f"('evt_1', 'app_1', 'invoice.paid', '{{\"id\": 1}}', 'wf_1', true, '{NOW}')",
    "INSERT INTO deliveries (id, app_id, event_id, endpoint_id, status, attempts, cycle_attempts, workflow_id, "
    f"created_at, updated_at) VALUES ('dlv_1', 'app_1', 'evt_1', 'ep_1', 'succeeded', 1, 1, 'wf_1', '{NOW}', '{NOW}')",
    "INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code) VALUES "
    f"('dlv_1', 1, '{NOW}', 12, 200)",
    "INSERT INTO api_keys (id, key_hash, prefix, name, scopes, created_at) VALUES "
    f"('key_1', 'hash', 'hl_live_ab', 'ci', '[\"events:write\"]', '{NOW}')",
    "INSERT INTO audit_entries (id, created_at, credential_id, action, status_code) VALUES "
    f"('aud_1', '{NOW}', 'admin', 'POST /v1/apps', 201)",
]
MODELS = [tables.Application, tables.EventType, tables.Endpoint, tables.Event, tables.Delivery, tables.Attempt,
          tables.ApiKey, tables.AuditEntry]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hookline.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


def released_database(url: str, *, versioned: bool) -> None:
    """A database as the released version left it, with data: the baseline's schema and one row a table.

    Unversioned, it is what the start-up code of a version from before migrations made (no
    alembic_version), minus an index added after it was created.
    """
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, BASELINE)
            for row in ROWS:
                conn.execute(text(row))
            if not versioned:
                conn.execute(text("DROP TABLE alembic_version"))
                conn.execute(text("DROP INDEX ix_events_undispatched"))
    finally:
        engine.dispose()


def schema_differences(url: str) -> list:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


async def rows_through_the_models(url: str, tmp_path: Path) -> dict[str, int]:
    """Every table read through today's models: a column a revision forgot fails here."""
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))
    try:
        async with make_sessionmaker(engine)() as session:
            counts = {model.__tablename__: len((await session.exec(select(model))).all()) for model in MODELS}
            endpoint = await session.get(tables.Endpoint, "ep_1")
            assert endpoint is not None and endpoint.secret == "whsec_old" and endpoint.event_types == ["invoice.paid"]
            return counts
    finally:
        await dispose(engine)


@pytest.mark.parametrize("versioned", [True, False], ids=["baseline", "before-migrations"])
async def test_migrate_brings_a_released_database_with_data_to_the_current_schema(
    database_url: str, versioned: bool, tmp_path: Path
) -> None:
    released_database(database_url, versioned=versioned)

    before, after = migrate(database_url)

    assert (before, after) == (BASELINE if versioned else None, head_revision())
    assert await rows_through_the_models(database_url, tmp_path) == {m.__tablename__: 1 for m in MODELS}
    # The migrated schema is exactly what tables.py declares: a schema change without its revision fails here.
    assert schema_differences(database_url) == []
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        assert "ix_events_undispatched" in {i["name"] for i in inspect(conn).get_indexes("events")}
    engine.dispose()


def _cli(command_name: str, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOOKLINE_DATABASE_URL": url,
        "HOOKLINE_DATA_DIR": str(tmp_path),
        "HOOKLINE_ADMIN_TOKEN": TOKEN,
        "HOOKLINE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "HOOKLINE_TEMPORAL_ADDRESS": "127.0.0.1:9",  # never reached: the schema check comes first
    }
    return subprocess.run(
        [sys.executable, "-m", "hookline.cli", command_name], env=env, capture_output=True, text=True, timeout=120
    )


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hookline.db'}"
    first = _cli("migrate", url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"to revision {head_revision()}" in first.stdout
    released_rows = ROWS[0]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(released_rows))

    again = _cli("migrate", url, tmp_path)

    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        assert conn.execute(text("SELECT name FROM applications")).scalars().all() == ["kept"]
    engine.dispose()


@pytest.mark.parametrize("state", ["empty", "before-migrations", "unknown-revision"])
@pytest.mark.parametrize("process", ["api", "worker"])
def test_the_api_and_the_worker_refuse_a_schema_that_is_not_current(process: str, state: str, tmp_path: Path) -> None:
    db = tmp_path / "hookline.db"
    url = f"sqlite:///{db}"
    if state != "empty":
        released_database(url, versioned=state == "unknown-revision")
    if state == "unknown-revision":  # migrated by a newer version than this one
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
        engine.dispose()

    result = _cli(process, url, tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "refuses to start" in result.stderr and "Traceback" not in result.stderr
    if state == "unknown-revision":
        assert "ffff_from_the_future" in result.stderr and "newer version" in result.stderr
    else:
        assert "`hookline migrate`" in result.stderr
    # It changed nothing: no schema made, no version recorded.
    if state == "empty":
        assert not db.exists()
    elif state == "before-migrations":
        engine = create_engine(url)
        with engine.connect() as conn:
            assert "alembic_version" not in inspect(conn).get_table_names()
        engine.dispose()
