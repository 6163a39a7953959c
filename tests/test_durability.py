"""Nothing accepted is lost, proven by killing the real processes.

These tests kill things, so they run on a stack of their own: a Temporal dev server persisted
to a SQLite file (so kill -9 and a restart on the same port and file keep its state), a worker
and an API on their own SQLite database. `hookline dev` is tested as a user runs it: started,
stopped with SIGTERM mid-retry, and started again on the same data dir.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hookline.cli import wait_for_port
from hookline.core.config import Settings
from hookline.core.temporal import APP_ID_ATTR, ENDPOINT_IDS_ATTR, EVENT_TYPE_ATTR, connect_temporal
from tests.harness import (
    KEEPS_RETRYING, TWO_TRIES, ApiClient, Proc, Receiver, Stack, StackFactory, TemporalServer, api_client, free_port, holds_for,
    wait_for, wait_until,
)

# Endpoints retry with KEEPS_RETRYING: long enough that the kill lands mid-retries, quickly enough
# to finish fast once fixed (Temporal schedules retries in whole seconds).
LOAD = 60  # deliveries in flight when something is killed


class PersistedTemporal(TemporalServer):
    """A dev server on a SQLite file that can be killed and started again on the same port and file."""

    def __init__(self, work_dir: Path) -> None:
        super().__init__(work_dir, db_file=work_dir / "temporal.db")
        self.past: list[Proc] = []  # earlier runs, for their logs

    def restart(self) -> PersistedTemporal:
        assert self.proc is not None and self.proc.proc is not None and self.proc.proc.poll() is not None, "still running"
        self.past.append(self.proc)
        return self.start()  # self.port and self.db_file are unchanged

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (earlier run) ---\n{p.log()}" for p in self.past)


@pytest.fixture(scope="module")
def durable(make_stack: StackFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    temporal = PersistedTemporal(tmp_path_factory.mktemp("durability")).start()
    # These tests keep LOAD deliveries retrying against a 503 across crashes; the circuit breaker
    # would hold them after a few failures (tests/test_endpoint_health.py covers that), so it is off.
    try:
        stack = make_stack("durability", temporal=temporal, HOOKLINE_BREAKER_FAILURES="1000000")
        yield stack
        stack.stop()  # before its Temporal server goes
    finally:
        temporal.stop()


@pytest.fixture
async def dapi(durable: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(durable):
        yield client


@contextmanager
def logs_on_failure(*sources: Callable[[], str]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for source in sources:
            print(source())
        raise


class Rows(list):
    """Rows of a listing, shown by status counts when a wait fails."""

    def __repr__(self) -> str:
        return f"{len(self)} rows, statuses {dict(Counter(r.get('status') for r in self))}; first: {list(self[:2])!r}"


async def listing(api: ApiClient, url: str) -> Rows:
    return Rows(await api.every(url))


def deliveries(api: ApiClient, app_id: str) -> Callable[[], Any]:
    return lambda: listing(api, f"/v1/apps/{app_id}/deliveries")


async def failing_load(api: ApiClient, receiver: Receiver, path: str) -> tuple[str, list[str]]:
    """LOAD events to an endpoint answering 503, each retried a few times already."""
    receiver.set(path, 503)
    app_id = await api.create_app("durability")
    await api.create_endpoint(app_id, receiver.url(path), retry=KEEPS_RETRYING)
    ids = [(await api.publish(app_id, "order.created", {"n": i}))["id"] for i in range(LOAD)]
    await wait_until(
        deliveries(api, app_id),
        lambda rows: len(rows) == LOAD and all(d["attempts"] >= 2 and d["status"] == "retrying" for d in rows),
        timeout=60,
        every=0.5,
    )
    return app_id, ids


async def recover_and_check(api: ApiClient, receiver: Receiver, path: str, app_id: str, ids: list[str], timeout: float) -> None:
    """The receiver is fixed: every accepted event reaches it and every delivery reads succeeded."""
    fixed_at = time.time()
    receiver.set(path, 200)
    rows = await wait_until(
        deliveries(api, app_id),
        lambda rows: len(rows) == len(ids) and all(d["status"] == "succeeded" for d in rows),
        timeout=timeout,
        every=0.5,
    )
    assert sorted(d["event_id"] for d in rows) == sorted(ids)  # one delivery per event, none lost
    assert all(d["last_status_code"] == 200 for d in rows)
    # Answered 200 after the fix, by webhook-id: each accepted event got through.
    delivered = {r.headers["webhook-id"] for r in receiver.at(path) if r.at >= fixed_at}
    assert delivered == set(ids), f"missing: {sorted(set(ids) - delivered)[:5]}"


# --- 1. the worker is killed mid-retries -------------------------------------------------------

@pytest.mark.timeout(150)
async def test_worker_killed_mid_retries_loses_nothing(dapi: ApiClient, durable: Stack, receiver: Receiver, path: str) -> None:
    old = durable.worker
    assert old is not None
    with logs_on_failure(durable.logs, old.log):
        app_id, ids = await failing_load(dapi, receiver, path)

        old.kill()  # kill -9, mid-retries: attempts in flight, retry timers pending
        killed_at = time.time()
        await asyncio.sleep(3)  # retries fall due with no worker to run them
        new_worker = durable.start_worker()
        started_at = time.time()
        # Nothing sent while no worker ran: the killed one was the only sender.
        assert not [r for r in receiver.at(path) if killed_at + 1 < r.at < started_at]
        assert new_worker is not old and old.proc is not None and old.proc.returncode == -signal.SIGKILL

        await recover_and_check(dapi, receiver, path, app_id, ids, timeout=60)
        rows = await deliveries(dapi, app_id)()
        assert all(d["attempts"] >= 3 for d in rows)  # two or more failures, then the success


# --- 2. the Temporal server is killed mid-retries ----------------------------------------------

@pytest.mark.timeout(180)
async def test_temporal_killed_mid_retries_loses_nothing(dapi: ApiClient, durable: Stack, receiver: Receiver, path: str) -> None:
    temporal = durable.temporal
    assert isinstance(temporal, PersistedTemporal)
    with logs_on_failure(durable.logs, temporal.logs):
        app_id, ids = await failing_load(dapi, receiver, path)
        try:
            temporal.kill()  # kill -9, with its SQLite file

            # The API survives Temporal going away: reads answer, a publish is refused cleanly.
            assert (await dapi.http.get(f"/v1/apps/{app_id}/events", params={"limit": 1})).status_code == 200
            refused = uuid.uuid4().hex
            r = await dapi.http.post(f"/v1/apps/{app_id}/events", json={"type": "order.created", "data": {"refused": refused}})
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/json")
            assert isinstance(r.json()["detail"], str) and r.json()["detail"]
            refused_markers = {refused}
            # A pause that cannot reach the event workflows is refused whole: the URL sent with it stays unchanged too.
            [endpoint] = (await dapi.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"]
            endpoint_url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
            r = await dapi.http.patch(endpoint_url, json={"status": "paused", "url": "http://127.0.0.1:9/elsewhere"})
            assert r.status_code == 503, r.text
            after = (await dapi.http.get(endpoint_url)).json()
            assert (after["status"], after["url"]) == ("active", endpoint["url"])
            worker = durable.worker
            assert worker is not None and worker.proc is not None
            await holds_for(lambda: worker.proc.poll() is None, 2)  # the worker does not exit while Temporal is down
            assert durable.api is not None and durable.api.proc is not None and durable.api.proc.poll() is None
        finally:
            if temporal.proc is not None and temporal.proc.proc is not None and temporal.proc.proc.poll() is not None:
                temporal.restart()  # same port, same file

        # Publishing works again once it is back (the API reconnects by itself).
        deadline = time.monotonic() + 45
        while True:
            marker = uuid.uuid4().hex
            r = await dapi.http.post(f"/v1/apps/{app_id}/events", json={"type": "order.created", "data": {"after": marker}})
            if r.status_code == 202:
                ids.append(r.json()["id"])
                break
            assert r.status_code == 503 and r.json()["detail"], r.text
            refused_markers.add(marker)
            assert time.monotonic() < deadline, f"publishing still refused after Temporal came back: {r.text}"
            await asyncio.sleep(1)
        for i in range(3):
            ids.append((await dapi.publish(app_id, "order.created", {"after": i}))["id"])

        # A refused request changed nothing: only accepted events are listed.
        listed = await listing(dapi, f"/v1/apps/{app_id}/events")
        assert sorted(e["id"] for e in listed) == sorted(ids)
        assert not {str(v) for e in listed for v in e["data"].values()} & refused_markers

        assert durable.worker is not None and durable.worker.proc is not None and durable.worker.proc.poll() is None
        await recover_and_check(dapi, receiver, path, app_id, ids, timeout=90)


# --- 3. a hanging receiver ----------------------------------------------------------------------

@pytest.mark.timeout(90)
async def test_hanging_receiver_costs_one_timeout_per_attempt_and_delays_no_one_else(
    dapi: ApiClient, durable: Stack, receiver: Receiver, path: str
) -> None:
    slow, fast = f"{path}/slow", f"{path}/fast"
    receiver.set(slow, 200, delay=5)  # the stack's HOOKLINE_DELIVERY_TIMEOUT_S is 2
    app_id = await dapi.create_app("hanging")
    await dapi.create_endpoint(app_id, receiver.url(slow), event_types=["order.slow"], retry=TWO_TRIES)
    await dapi.create_endpoint(app_id, receiver.url(fast), event_types=["order.fast"])
    with logs_on_failure(durable.logs):
        stuck = await dapi.publish(app_id, "order.slow", {"hang": True})
        await wait_for(lambda: len(receiver.at(slow)) >= 1, timeout=15)
        hang_started = receiver.at(slow)[0].at

        # While the slow endpoint hangs, events to the fast one go out at once.
        async def publish_fast(i: int) -> tuple[str, float]:
            event = await dapi.publish(app_id, "order.fast", {"i": i})
            return event["id"], time.time()

        published = dict(await asyncio.gather(*(publish_fast(i) for i in range(10))))
        await wait_for(lambda: {r.headers["webhook-id"] for r in receiver.at(fast)} >= set(published), timeout=15)
        arrived = {r.headers["webhook-id"]: r.at for r in reversed(receiver.at(fast))}  # first arrival each
        lags = {event_id: arrived[event_id] - at for event_id, at in published.items()}
        assert max(lags.values()) < 1.5, lags
        # All of them within the slow endpoint's first attempt, which still hangs for its 2 s timeout.
        assert max(arrived.values()) < hang_started + 2, (hang_started, sorted(arrived.values()))
        for event_id in published:  # the receiver answered; the record follows
            done = await dapi.wait_event(app_id, event_id, timeout=10)
            assert [d["status"] for d in done["deliveries"]] == ["succeeded"]

        # The slow delivery: each attempt is one timeout of about 2 s, then it is dead-lettered.
        done = await dapi.wait_event(app_id, stuck["id"], timeout=30)
        [delivery] = done["deliveries"]
        assert delivery["status"] == "dead_lettered" and delivery["attempts"] == 2
        assert "timed out" in delivery["last_error"]
        attempts = await dapi.attempts(app_id, delivery["id"])
        assert [a["number"] for a in attempts] == [1, 2]
        for attempt in attempts:
            assert attempt["status_code"] is None
            assert "timed out after 2s" in attempt["error"], attempt
            assert 1900 <= attempt["duration_ms"] <= 3500, attempt
        assert len(receiver.at(slow)) == 2  # one request per attempt, no hidden retries


# --- 4. `hookline dev`, stopped and started again -------------------------------------------------

def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> dict[int, str]:
    """Live child processes of `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def _alive(pid: int, cmdline: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return False
    return now == cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z"


class DevRun:
    """One `hookline dev`, started as a user starts it, in a session of its own."""

    def __init__(self, data_dir: Path, api_port: int, temporal_port: int, ui_port: int, log_dir: Path) -> None:
        self.cmd = [
            sys.executable, "-m", "hookline.cli", "dev", "--port", str(api_port), "--temporal-port", str(temporal_port),
            "--ui-port", str(ui_port), "--data-dir", str(data_dir),
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        self.log_path = log_dir / f"dev-{uuid.uuid4().hex[:6]}.log"
        self.cwd = log_dir
        self.api_port = api_port
        self.proc: subprocess.Popen | None = None
        self.children: dict[int, str] = {}

    async def start(self) -> DevRun:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        await asyncio.to_thread(wait_for_port, self.api_port, 90, self.proc)
        await wait_for(lambda: "Hookline is running" in self.output(), timeout=15)
        self.children = _children(self.proc.pid)
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float, signum: int = signal.SIGTERM) -> float:
        """SIGTERM, as a service manager stops it (SIGHUP: its terminal closed); returns how long it took."""
        assert self.proc is not None
        began = time.monotonic()
        self.proc.send_signal(signum)
        self.proc.wait(timeout)
        return time.monotonic() - began

    def cleanup(self) -> None:
        """Only on failure: kill this run and whatever of its children is left, by pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid, cmdline in self.children.items():
            if _alive(pid, cmdline):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.stack  # `hookline dev` starts its own Temporal server, workers and API
@pytest.mark.timeout(200)
async def test_hookline_dev_stops_cleanly_and_resumes_unfinished_deliveries(
    tmp_path: Path, receiver: Receiver, path: str
) -> None:
    data_dir = tmp_path / "data"
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    ports = {"api": api_port, "temporal": temporal_port, "web ui": ui_port}
    runs: list[DevRun] = []

    async def run() -> DevRun:
        runs.append(DevRun(data_dir, api_port, temporal_port, ui_port, tmp_path))
        # The delivery fails about once a second until the restart; the circuit breaker would hold it.
        runs[-1].env["HOOKLINE_BREAKER_FAILURES"] = "1000000"
        return await runs[-1].start()

    def outputs() -> str:
        return "\n".join(f"--- hookline dev #{i + 1} ---\n{r.output()[-8000:]}" for i, r in enumerate(runs))

    try:
        with logs_on_failure(outputs, lambda: (data_dir / "temporal.log").read_text(errors="replace")[-4000:]):
            first = await run()
            token = (data_dir / "admin-token").read_text().strip()
            assert token.startswith("hl_") and (data_dir / "admin-token").stat().st_mode & 0o077 == 0
            banner = first.output()
            for shown in (
                f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{api_port}/docs", f"127.0.0.1:{temporal_port}",
                f"http://127.0.0.1:{ui_port}", token,
            ):
                assert shown in banner, f"{shown!r} not in:\n{banner}"
            assert len(first.children) == 4, first.children  # temporal, two workers (the default), api
            assert sum(c.endswith("-m hookline.cli worker") for c in first.children.values()) == 2, first.children
            [server] = [c for c in first.children.values() if " server start-dev " in c]
            # A new data directory: one partition per task queue (tenant fairness), recorded there.
            assert "matching.enableFairness=true" in server and "matching.numTaskqueueReadPartitions=1" in server
            assert (data_dir / "temporal-partitions").read_text() == "1\n"
            assert _port_open(ui_port)

            api = ApiClient(f"http://127.0.0.1:{api_port}", token=token)
            try:
                assert (await api.http.get("/docs")).status_code == 200
                receiver.set(path, 503)
                app_id = await api.create_app("dev")
                endpoint = await api.create_endpoint(app_id, receiver.url(path), retry=KEEPS_RETRYING)
                event = await api.publish(app_id, "order.created", {"dev": True})
                await api.wait_event(
                    app_id, event["id"], lambda e: bool(e["deliveries"]) and e["deliveries"][0]["attempts"] >= 1, timeout=30
                )

                # The Web UI can filter this event's workflow by application, type and endpoint.
                client = await connect_temporal(Settings(temporal_address=f"127.0.0.1:{temporal_port}"))
                described = await client.get_workflow_handle(event["workflow_id"]).describe()
                attrs = described.typed_search_attributes
                assert attrs.get(APP_ID_ATTR) == app_id
                assert attrs.get(EVENT_TYPE_ATTR) == "order.created"
                assert attrs.get(ENDPOINT_IDS_ATTR) == [endpoint["id"]]

                before = (await api.event(app_id, event["id"]))["deliveries"][0]
                assert before["status"] == "retrying", before  # unfinished when stopped

                took = first.terminate(timeout=40)
                assert first.proc is not None and first.proc.returncode == 0, first.output()[-3000:]
                assert took < 30, f"hookline dev took {took:.1f}s to stop"
                assert "stopped" in first.output()
                left = {name: port for name, port in ports.items() if _port_open(port)}
                assert not left, f"still listening after hookline dev stopped: {left}"
                assert not {pid: c for pid, c in first.children.items() if _alive(pid, c)}, "children left running"

                # Started again on the same data dir: the unfinished delivery completes.
                await run()
                assert (data_dir / "admin-token").read_text().strip() == token
                fixed_at = time.time()
                receiver.set(path, 200)
                done = await api.wait_event(app_id, event["id"], timeout=60)
                [delivery] = done["deliveries"]
                assert delivery["status"] == "succeeded", delivery
                assert delivery["attempts"] >= 2
                assert [r.headers["webhook-id"] for r in receiver.at(path) if r.at >= fixed_at][:1] == [event["id"]]
            finally:
                await api.aclose()

            # Its terminal closed (SIGHUP): it stops everything too, and leaves nothing behind.
            second = runs[-1]
            [server] = [c for c in second.children.values() if " server start-dev " in c]
            assert "matching.numTaskqueueReadPartitions=1" in server  # what the directory's server ran with
            assert second.terminate(timeout=40, signum=signal.SIGHUP) < 30
            assert second.proc is not None and second.proc.returncode == 0, second.output()[-3000:]
            assert "stopped" in second.output()
            assert not {name: port for name, port in ports.items() if _port_open(port)}
            assert len(second.children) == 4 and not {pid: c for pid, c in second.children.items() if _alive(pid, c)}
    finally:
        for r in runs:
            r.cleanup()
