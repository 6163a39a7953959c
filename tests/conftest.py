"""Session fixtures: one real stack on SQLite and one on PostgreSQL, shared by the tests.

Tests isolate themselves by creating their own application (tenants never see each other),
so one Temporal server, worker and API per database serve the whole session.
"""

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness import ApiClient, PostgresCluster, Receiver, Stack, TemporalServer, api_client, isolated_stack


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hookline-tests-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def temporal(work_dir: Path) -> Iterator[TemporalServer]:
    server = TemporalServer(work_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(work_dir: Path) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(work_dir).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sqlite_stack(temporal: TemporalServer, work_dir: Path) -> Iterator[Stack]:
    yield from isolated_stack(temporal, work_dir, f"sqlite:///{work_dir / 'hookline.db'}")


@pytest.fixture(scope="session")
def postgres_stack(temporal: TemporalServer, postgres: PostgresCluster, work_dir: Path) -> Iterator[Stack]:
    # In Temporal's sandbox: the core flow runs on both stacks, so the workflows meet the
    # sandbox's determinism checks as well as the default unsandboxed runner.
    yield from isolated_stack(temporal, work_dir, postgres.create_database(), HOOKLINE_WORKFLOW_SANDBOX="true")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def any_stack(request: pytest.FixtureRequest) -> Stack:
    """The core flow runs on both databases."""
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture
async def api(sqlite_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(sqlite_stack):
        yield client


@pytest.fixture
async def any_api(any_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(any_stack):
        yield client


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def path() -> str:
    """A receiver path of this test's own."""
    import uuid

    return f"/hook/{uuid.uuid4().hex[:12]}"
