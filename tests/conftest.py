"""Session fixtures: one real stack on SQLite and one on PostgreSQL, shared by the tests.

Tests isolate themselves by creating their own application (tenants never see each other),
so one Temporal server, worker and API per database serve the whole session.

Every test that needs real processes (a Temporal server, worker, API, PostgreSQL) is marked
`stack` here, by the fixtures it uses: `pytest -m "not stack"` runs the fast tier alone.
"""

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness import (
    ApiClient, PostgresCluster, Receiver, Stack, StackFactory, TemporalServer, api_client, isolated_stack,
)


# Fixtures that start real processes, directly or through the fixtures they use. A test that
# reaches a stack otherwise (request.getfixturevalue, a dev server of its own) says so with
# `pytest.mark.stack` itself.
STACK_FIXTURES = frozenset({"temporal", "postgres", "any_stack", "sqlite_stack", "postgres_stack", "make_stack"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # A slow test (a multi-process topology) always starts processes.
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.stack)


def _only_for_stack_tests(request: pytest.FixtureRequest, what: str) -> None:
    """Keep the fast tier fast: a test that starts `what` without the `stack` marker (through
    request.getfixturevalue, say) fails and says why."""
    item = getattr(request, "_pyfuncitem", None)  # the test that asked first
    if item is not None and item.get_closest_marker("stack") is None:
        pytest.fail(f"{item.nodeid} starts {what}: mark it @pytest.mark.stack", pytrace=False)


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hookline-tests-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def temporal(work_dir: Path, request: pytest.FixtureRequest) -> Iterator[TemporalServer]:
    _only_for_stack_tests(request, "a Temporal server")
    server = TemporalServer(work_dir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(work_dir: Path, request: pytest.FixtureRequest) -> Iterator[PostgresCluster]:
    _only_for_stack_tests(request, "PostgreSQL")
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


@pytest.fixture(scope="module")
def make_stack(request: pytest.FixtureRequest, work_dir: Path) -> Iterator[StackFactory]:
    """Stacks with settings of the module's own (see StackFactory), stopped when the module is done."""
    factory = StackFactory(
        work_dir, temporal=lambda: request.getfixturevalue("temporal"), postgres=lambda: request.getfixturevalue("postgres")
    )
    yield factory
    factory.stop_all()


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
