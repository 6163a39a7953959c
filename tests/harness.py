"""Real parts for the tests: a Temporal dev server, worker and API processes, PostgreSQL, receivers.

Nothing here is mocked: every piece is the program a user runs, started on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.cli import dev_server_command, wait_for_port
from hookline.core.config import Settings
from hookline.store.db import dispose, make_engine, make_sessionmaker

TOKEN = "test-admin-token"
# One key for the test session: stacks restarted by a test still read what they stored.
ENCRYPTION_KEY = "dGVzdC1vbmx5LWtleS10ZXN0LW9ubHkta2V5LXRlc3Q="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process in its own session, with its output in a log file for failures."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""


class TemporalServer:
    def __init__(self, work_dir: Path, db_file: Path | None = None, dynamic_config: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.db_file = db_file
        self.work_dir = work_dir
        self.dynamic_config = dynamic_config or {}
        self.proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TemporalServer:
        cmd = dev_server_command(port=self.port, ui_port=None, db_file=self.db_file)
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        self.proc = Proc("temporal", cmd, dict(os.environ), self.work_dir).start()
        wait_for_port(self.port, 60, self.proc.proc)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


class PostgresCluster:
    """A throwaway PostgreSQL 15 cluster on a loopback port (as the postgres user when root)."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hookline-pg-"))
        self.bin = self._find_bin()

    @staticmethod
    def _find_bin() -> Path:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        found = candidates[0] if candidates else shutil.which("initdb")
        if not found:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        return Path(found).parent

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and pg_ctl refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
        return self.restart()

    def restart(self) -> PostgresCluster:
        """Start the server on its data directory (after kill(): with crash recovery)."""
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", opts, "-l", str(self.dir / "pg.log"), "-w", "start")
        return self

    def kill(self) -> None:
        """kill -9 of the server and every backend, as a crashed machine leaves it."""
        postmaster = int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        children = [int(stat.split()[0]) for stat in _proc_stats() if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster]
        for pid in [postmaster, *children]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in [postmaster, *children]):
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL processes survived kill -9")
            time.sleep(0.1)
        # A zombie nobody reaps (no init in a container) keeps its PID: the lock file would name
        # a "running" postmaster. After a real crash the PID is gone, and so is the lock.
        (self.dir / "data" / "postmaster.pid").unlink(missing_ok=True)
        for leftover in (f".s.PGSQL.{self.port}.lock", f".s.PGSQL.{self.port}"):
            (self.dir / leftover).unlink(missing_ok=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = "hl_" + uuid.uuid4().hex[:10]
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _proc_stats() -> list[str]:
    stats = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            stats.append(Path(stat).read_text())
        except OSError:
            pass
    return stats


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return "zombie"


@dataclass
class Stack:
    """One worker and one API process against a Temporal server and a database."""

    temporal: TemporalServer
    database_url: str
    work_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    task_queue: str = field(default_factory=lambda: "hl-" + uuid.uuid4().hex[:8])
    api_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    worker: Proc | None = None
    api: Proc | None = None
    migrated: bool = False

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOOKLINE_TEMPORAL_ADDRESS": self.temporal.address,
            "HOOKLINE_DATABASE_URL": self.database_url,
            "HOOKLINE_DATA_DIR": str(self.work_dir),
            "HOOKLINE_TASK_QUEUE": self.task_queue,
            "HOOKLINE_ADMIN_TOKEN": TOKEN,
            "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
            # The receivers are plain http on 127.0.0.1; secrets are stored encrypted as in production.
            "HOOKLINE_ENV": "development",
            "HOOKLINE_ENCRYPTION_KEY": ENCRYPTION_KEY,
            "HOOKLINE_DELIVERY_TIMEOUT_S": "2",
            # Short enough for a test to see the old secret stop signing.
            "HOOKLINE_SECRET_ROTATION_GRACE_S": "4",
            "HOOKLINE_WORKER_METRICS_PORT": str(self.worker_metrics_port),
            # The tests make many requests, bad credentials included, from one address with one
            # token: budgets off here; tests/test_rate_limits.py runs a stack of its own with them on.
            "HOOKLINE_API_RATE_LIMIT_PER_S": "0",
            "HOOKLINE_AUTH_FAILURES_PER_MIN": "0",
            **self.extra_env,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sqlite_file(self) -> Path:
        """The database file of a stack on SQLite."""
        assert self.database_url.startswith("sqlite:///"), self.database_url
        return Path(self.database_url.removeprefix("sqlite:///"))

    def migrate(self) -> None:
        """`hookline migrate`, as a deployment runs it before starting the processes (once per stack)."""
        if not self.migrated:
            cmd = [sys.executable, "-m", "hookline.cli", "migrate"]
            result = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
            self.migrated = True

    def start_worker(self) -> Proc:
        self.migrate()
        self.worker = Proc("worker", [sys.executable, "-m", "hookline.cli", "worker"], self.env, self.work_dir).start()
        wait_for_port(self.worker_metrics_port, 60, self.worker.proc)  # the worker's first act
        return self.worker

    def start_api(self) -> Proc:
        self.migrate()
        self.api = Proc("api", [sys.executable, "-m", "hookline.cli", "api", "--port", str(self.api_port)], self.env, self.work_dir).start()
        wait_for_port(self.api_port, 60, self.api.proc)
        return self.api

    def start(self) -> Stack:
        self.start_api()
        self.start_worker()
        return self

    def stop(self) -> None:
        for proc in (self.api, self.worker):
            if proc:
                proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()}" for p in (self.worker, self.api, self.temporal.proc) if p)


def running_stack(stack: Stack, *, worker: bool = True) -> Iterator[Stack]:
    """For fixtures: start the stack (or its API only), print its logs if anything fails, always stop it."""
    try:
        stack.start() if worker else stack.start_api()
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.stop()


def isolated_stack(temporal: TemporalServer, work_dir: Path, database_url: str, **env: str) -> Iterator[Stack]:
    """For fixtures: a stack of its own on a fresh database, with extra HOOKLINE_* settings."""
    stack = Stack(temporal=temporal, database_url=database_url, work_dir=work_dir, extra_env=env)
    yield from running_stack(stack)


class StackFactory:
    """Stacks of a test module's own, started on demand and all stopped at the end (the `make_stack` fixture).

    `make_stack("quotas", worker=False, HOOKLINE_MAX_ENDPOINTS_PER_APP="3")` starts an API (and, by
    default, a worker) on a fresh database with extra HOOKLINE_* settings. The shared Temporal server
    and PostgreSQL cluster are asked for only when a stack needs them.
    """

    def __init__(
        self, work_dir: Path, temporal: Callable[[], TemporalServer], postgres: Callable[[], PostgresCluster]
    ) -> None:
        self.work_dir = work_dir
        self._temporal, self._postgres = temporal, postgres
        self._started: list[Stack] = []

    def __call__(
        self,
        name: str,
        *,
        worker: bool = True,
        database: str = "sqlite",
        temporal: TemporalServer | None = None,
        **env: str,
    ) -> Stack:
        """A started stack; `database` is "sqlite" (a file named after the stack) or "postgres"."""
        assert database in ("sqlite", "postgres"), database
        if database == "postgres":
            database_url = self._postgres().create_database()
        else:
            database_url = f"sqlite:///{self.work_dir / f'{name}-{uuid.uuid4().hex[:6]}.db'}"
        stack = Stack(
            temporal=temporal or self._temporal(), database_url=database_url, work_dir=self.work_dir, extra_env=env
        )
        self._started.append(stack)
        try:
            stack.start() if worker else stack.start_api()
        except BaseException:
            print(stack.logs())
            raise
        return stack

    def stop_all(self) -> None:
        for stack in reversed(self._started):
            stack.stop()


async def api_client(stack: Stack) -> AsyncIterator[ApiClient]:
    """For fixtures: an API client on the stack, closed afterwards."""
    client = ApiClient(stack.url)
    yield client
    await client.aclose()


# --- receivers -----------------------------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    """What a path answers: `statuses` in turn (the last one repeats), after `delay` seconds."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._behaviours: dict[str, Behaviour] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                behaviour, status = receiver._answer(self.path, dict(self.headers.items()), body)
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                try:
                    self.send_response(status)
                    for name, value in behaviour.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(behaviour.body)))
                    self.end_headers()
                    self.wfile.write(behaviour.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[Behaviour, int]:
        with self._lock:
            self.received.append(Received(path, {k.lower(): v for k, v in headers.items()}, body, time.time()))
            behaviour = self._behaviours.get(path, Behaviour())
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
            return behaviour, behaviour.statuses[min(n, len(behaviour.statuses) - 1)]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, *statuses: int, delay: float = 0.0, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._behaviours[path] = Behaviour(list(statuses) or [200], delay, headers or {})
            self._counts[path] = 0

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the API, as a client sees it ----------------------------------------------------------------

def steady_retry(max_attempts: int, every_s: float = 1) -> dict[str, Any]:
    """An endpoint's retry schedule: `max_attempts` tries, `every_s` seconds apart (no backoff)."""
    return {"max_attempts": max_attempts, "initial_interval_s": every_s, "backoff_coefficient": 1.0, "max_interval_s": every_s}


# The retry schedules the tests share (1 s is the shortest interval an endpoint may have).
FAST_RETRY = steady_retry(3)  # every endpoint's default in the tests: a failure is final within seconds
TWO_TRIES = steady_retry(2)
KEEPS_RETRYING = steady_retry(50)  # still retrying a minute on: a kill or a pause lands mid-retries
SLOW_RETRY = steady_retry(5, 30)  # a retry the test would notice if it fired early
FAR_OFF_RETRY = steady_retry(3, 600)  # beyond what a delivery waits holding its fan-out slot (a timer)


class ApiClient:
    def __init__(self, base_url: str, token: str = TOKEN) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}, timeout=30)

    async def create_app(self, name: str = "acme") -> str:
        r = await self.http.post("/v1/apps", json={"name": name})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def create_endpoint(self, app_id: str, url: str, **fields: Any) -> dict:
        fields.setdefault("retry", FAST_RETRY)
        r = await self.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    async def secret(self, app_id: str, endpoint_id: str) -> str:
        r = await self.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}/secret")
        assert r.status_code == 200, r.text
        return r.json()["secret"]

    async def publish(self, app_id: str, type: str, data: dict, key: str | None = None) -> dict:
        headers = {"idempotency-key": key} if key else {}
        r = await self.http.post(f"/v1/apps/{app_id}/events", json={"type": type, "data": data}, headers=headers)
        assert r.status_code == 202, r.text
        return r.json()

    async def event(self, app_id: str, event_id: str) -> dict:
        r = await self.http.get(f"/v1/apps/{app_id}/events/{event_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_event(
        self, app_id: str, event_id: str, done: Callable[[dict], bool] | None = None, timeout: float = 30
    ) -> dict:
        """Poll the event until `done` (default: every delivery final) holds."""
        done = done or (lambda e: bool(e["deliveries"]) and all(d["status"] in ("succeeded", "dead_lettered") for d in e["deliveries"]))
        return await wait_until(lambda: self.event(app_id, event_id), done, timeout)

    async def attempts(self, app_id: str, delivery_id: str) -> list[dict]:
        r = await self.http.get(f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts", params={"limit": 250})
        assert r.status_code == 200, r.text
        return r.json()["data"]

    async def pages(self, url: str, limit: int = 250, **params: Any) -> list[list[dict]]:
        """Every page of a list, following next_cursor to the end; each page's shape and size checked."""
        pages: list[list[dict]] = []
        cursor = None
        while True:
            r = await self.http.get(url, params={"limit": limit, **params, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200, f"GET {url} -> {r.status_code} {r.text[:300]}"
            page = r.json()
            assert set(page) == {"data", "next_cursor"} and len(page["data"]) <= limit, page
            pages.append(page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                return pages
            assert isinstance(cursor, str) and cursor
            assert len(pages) < 1000, "the cursor never ends"

    async def every(self, url: str, **params: Any) -> list[dict]:
        """Every item of a list, in the list's order, across all its pages."""
        return [item for page in await self.pages(url, **params) for item in page]

    async def aclose(self) -> None:
        await self.http.aclose()


@contextlib.asynccontextmanager
async def store_sessions(database_url: str, data_dir: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a store, opened as Hookline's processes open it; the engine is disposed after."""
    engine = make_engine(Settings(database_url=database_url, data_dir=data_dir))
    try:
        yield make_sessionmaker(engine)
    finally:
        await dispose(engine)


async def wait_until(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}"[:4000])
        await asyncio.sleep(every)


async def holds_for(check: Callable[[], bool | Awaitable[bool]], seconds: float, every: float = 0.1) -> None:
    """Assert that `check` holds throughout `seconds`: the bounded wait of a "nothing (more) happens"
    check that has no signal to wait for (nothing sent while paused, no second delivery).

    Prefer waiting for a signal where one exists. This fails as soon as the check breaks.
    """
    deadline = time.monotonic() + seconds
    while True:
        held = check()
        if not (held if isinstance(held, bool) else await held):
            raise AssertionError(f"the condition stopped holding {seconds - (deadline - time.monotonic()):.1f}s in")
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(every)


async def wait_for(predicate: Callable[[], bool], timeout: float = 30, every: float = 0.1) -> None:
    async def fetch() -> bool:
        return predicate()

    await wait_until(fetch, bool, timeout, every)
