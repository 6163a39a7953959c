"""The schema is created on first start, and completed on a database made by an older version."""

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from hookline.core.config import Settings
from hookline.store.db import create_schema, dispose, make_engine
from tests.harness import PostgresCluster


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.stack)])
async def test_an_index_added_since_the_database_was_created_is_added_on_start(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    engine = make_engine(Settings(database_url=url, data_dir=tmp_path))

    def event_indexes(conn: object) -> set[str]:
        return {i["name"] for i in inspect(conn).get_indexes("events")}

    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            assert "ix_events_undispatched" in await conn.run_sync(event_indexes)
            await conn.execute(text("DROP INDEX ix_events_undispatched"))  # as an older version left it
            await conn.execute(text("INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_x', 'kept', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))

        await create_schema(engine)
        async with engine.begin() as conn:
            assert "ix_events_undispatched" in await conn.run_sync(event_indexes)
            assert (await conn.execute(text("SELECT name FROM applications"))).scalars().all() == ["kept"]
    finally:
        await dispose(engine)
