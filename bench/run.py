"""Hookline's throughput and latency benchmark, against the bare Temporal ceiling, in one run.

    python bench/run.py                 # defaults: --events 200 --concurrency 16; ≈ 70 s on 2 cores

Starts, on free 127.0.0.1 ports and in a temporary directory, the stack exactly as
`hookline dev` runs it (the Temporal dev server from `cli.dev_server_command` on a SQLite file
with the WAL pragmas, its worker processes `python -m hookline.cli worker`, an API `python -m hookline.cli api`,
SQLite for Hookline's store, or with --database postgres a throwaway PostgreSQL cluster from
the machine's server binaries, bench/pg.py), a fast receiver (bench/receiver.py) and a bare Temporal worker
with no-op activities on a task queue of its own (bench/ceiling.py). Then, in order:

  L   low load: events published one at a time to one endpoint, each waited for (latency)
  L0  the same against the ceiling: W1 started one at a time
  A   N events to one endpoint, published with bounded concurrency
  W1  N workflows → 1 no-op activity, started with the same concurrency
  B   N events to one application with ten endpoints (10 × N deliveries)
  W2  N workflows → 10 no-op activities (gather), started with the same concurrency

and prints, per scenario: deliveries/s (first publish → last arrival), end-to-end latency
(publish call start → receiver arrival), publish latency (the POST's round trip), peak RSS and
mean CPU of the processes it started, and their CPU time per delivery (first publish → every
workflow closed); then Hookline / ceiling for A/W1 and B/W2, in deliveries/s and in CPU.
On a shared, noisy machine compare within one run: the ceiling ran beside Hookline.

Every process it starts is stopped by its PID at the end, on error and on Ctrl-C; the
temporary directory is removed. Only a JSON result under bench/results/ (git-ignored) stays,
unless --no-save. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import httpx  # noqa: E402

from hookline.cli import dev_server_command, wait_for_port  # noqa: E402
from hookline.core.config import DEV_PARTITIONS  # noqa: E402
from hookline.core.config import Settings  # noqa: E402
from hookline.core.crypto import generate_key  # noqa: E402

DEV_WORKERS = Settings.model_fields["dev_workers"].default

TOKEN = "hl_bench_" + secrets.token_hex(8)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes -----------------------------------------------------------------------------------

@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


class Children:
    """The processes this run started, each in a session of its own, stopped newest first by PID."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Child] = []
        # Process trees that are not children (PostgreSQL's postmaster): name → root PID, sampled
        # as one (RSS and CPU summed over the root and its direct children).
        self.groups: dict[str, int] = {}
        self.cleanups: list[Callable[[], None]] = []  # run after the processes are stopped

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> Child:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches only this driver, which stops them in order
            )
        child = Child(name, proc, log)
        self.all.append(child)
        return child

    def check(self) -> None:
        for child in self.all:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} (pid {child.pid}) exited with {child.proc.returncode}:\n{child.tail()}")

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM, newest first, each waited for (the workers before the Temporal server they
        talk to); SIGKILL for one that has not exited after `timeout` seconds."""
        for child in reversed(self.all):
            if child.proc.poll() is not None:
                continue
            try:
                os.kill(child.pid, signal.SIGTERM)
                child.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                try:
                    os.kill(child.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.proc.wait()
        while self.cleanups:
            try:
                self.cleanups.pop()()
            except Exception as exc:  # noqa: BLE001 - the others must run still
                print(f"clean-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all CPUs; /proc/stat less idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def proc_sample(pid: int) -> tuple[int, float] | None:
    """(VmRSS in KiB, CPU seconds user + system) of one process, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    fields = stat[stat.rindex(")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    return rss, cpu


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes that map them."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)


def group_sample(root: int) -> tuple[int, float] | None:
    """Like proc_sample, summed over `root` and its direct children (a postmaster and its
    backends), with PSS for memory: VmRSS would count shared_buffers once per backend."""
    total = proc_sample(root)
    if total is None:
        return None
    mem, cpu = pss_kib(root), total[1]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == root:
            got = proc_sample(pid := int(stat.parent.name))
            if got:
                mem, cpu = mem + pss_kib(pid), cpu + got[1]
    return mem, cpu


class Sampler:
    """Peak VmRSS and CPU time of the started processes (and this driver) over one scenario."""

    def __init__(self, children: Children, every: float = 0.1) -> None:
        self.pids = {c.name: c.pid for c in children.all}
        self.pids["driver"] = os.getpid()
        self.groups = dict(children.groups)
        self.every = every
        self.peak: dict[str, int] = {}
        self.cpu0: dict[str, float] = {}
        self.cpu1: dict[str, float] = {}
        self.cpu2: dict[str, float] = {}
        self.t0 = self.t1 = self.t2 = 0.0
        self._task: asyncio.Task | None = None

    def _sample(self, cpu_into: dict[str, float] | None = None) -> None:
        if cpu_into is not None:
            cpu_into["(machine)"] = machine_busy_s()
        for name, pid in [*self.pids.items(), *self.groups.items()]:
            got = group_sample(pid) if name in self.groups else proc_sample(pid)
            if got is None:
                continue
            self.peak[name] = max(self.peak.get(name, 0), got[0])
            if cpu_into is not None:
                cpu_into[name] = got[1]

    async def _loop(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.every)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._sample(self.cpu0)
        self._task = asyncio.create_task(self._loop())

    def mark(self) -> None:
        """The deliveries are in: CPU % is taken up to here."""
        self._sample(self.cpu1)
        self.t1 = time.monotonic()

    async def stop(self) -> None:
        """The workflows have closed: CPU time per delivery is taken up to here."""
        self._sample(self.cpu2)
        self.t2 = time.monotonic()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def report(self, deliveries: int) -> dict[str, Any]:
        span = max(self.t1 - self.t0, 1e-9)
        ours = sum(self.cpu1[k] - self.cpu0[k] for k in self.cpu1 if k in self.cpu0 and k != "(machine)")
        others = (self.cpu1["(machine)"] - self.cpu0["(machine)"]) - ours
        return {
            # Busy CPU of everything else on the machine meanwhile (other work, the kernel): noise.
            "others_cpu_percent": round(100 * max(others, 0.0) / span, 1),
            "rss_peak_mb": {k: round(v / 1024, 1) for k, v in self.peak.items()},
            "cpu_percent": {
                k: round(100 * (self.cpu1[k] - self.cpu0[k]) / span, 1) for k in self.cpu1 if k in self.cpu0 and k != "(machine)"
            },
            # From the first publish until every workflow has closed, so the whole cost of the work.
            "cpu_ms_per_delivery": {
                k: round(1000 * (self.cpu2[k] - self.cpu0[k]) / deliveries, 2)
                for k in self.cpu2 if k in self.cpu0 and k != "(machine)"
            } if deliveries else {},
            "window_s": round(span, 2),
        }


def stack_options(args: argparse.Namespace, **extra: Any) -> argparse.Namespace:
    """What Bench.start_stack reads, for the scripts that start the stack without the ceiling
    (bench/fanout.py, bench/soak.py): `args` gives workers, database, worker_env."""
    return argparse.Namespace(
        fairness=True, workers=args.workers, worker_variant=None, worker_env=args.worker_env,
        ceiling_workers=0, ceiling_sandbox="on", bytecode_cache=False, database=args.database,
        temporal_config=args.temporal_config,
        scenario_timeout=60, low_load_gap=0.05, **extra,
    )


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, default=DEV_WORKERS,
                        help=f"Hookline worker processes [{DEV_WORKERS}, as `hookline dev`]")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="Hookline's store: SQLite, or a throwaway PostgreSQL cluster (bench/pg.py) [sqlite]")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the Hookline workers")
    parser.add_argument("--temporal-config", action="append", default=[], metavar="KEY=VALUE",
                        help="extra dynamic config of the Temporal dev server, e.g. "
                        "limit.historyCount.suggestContinueAsNew=100 to see continue-as-new in a small run")


# --- running a bench script -------------------------------------------------------------------------

def interrupt_on_sigterm() -> None:
    """A SIGTERM interrupts like Ctrl-C, so a killed bench still stops its children."""
    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)


def report_failure(headline: str, children: Children) -> None:
    """The failure, then every child's log tail: what went wrong is usually in a child."""
    print(f"\n{headline}", file=sys.stderr)
    for child in children.all:
        print(f"--- {child.name} (pid {child.pid}) log tail ---\n{child.tail(1500)}", file=sys.stderr)


def stop_children(children: Children) -> None:
    # A second Ctrl-C must not cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    children.stop_all()


def run_stack_bench(what: str, options: argparse.Namespace, tmp: Path, children: Children,
                    work: Callable[[Bench], Awaitable[dict[str, Any]]], max_seconds: float) -> tuple[dict[str, Any], int]:
    """Run `work` against a Bench within max_seconds, then stop every child and remove tmp whatever happened.
    Returns the result ({} if none) and the exit code so far (130 interrupted, 1 failed)."""
    async def body() -> dict[str, Any]:
        b = Bench(options, tmp, children)
        try:
            return await asyncio.wait_for(work(b), max_seconds)
        finally:
            await b.close()

    try:
        return asyncio.run(body()), 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return {}, 130
    except Exception as exc:  # noqa: BLE001
        report_failure(f"{what} failed: {type(exc).__name__}: {exc!r}", children)
        return {}, 1
    finally:
        stop_children(children)
        shutil.rmtree(tmp, ignore_errors=True)


def save_result(kind: str, started: float, record: dict[str, Any]) -> None:
    """Write bench/results/<kind>-<start time>.json and say where."""
    out = BENCH / "results" / f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"  result: {out.relative_to(BENCH.parent)}")


# --- figures -------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(values: list[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {"p50": r(pct(values, 50)), "p99": r(pct(values, 99)), "max": r(max(values) if values else None),
            "mean": r(statistics.fmean(values) if values else None)}


@dataclass
class Outcome:
    name: str
    kind: str  # hookline | ceiling
    events: int
    fan_out: int
    concurrency: int
    starts: dict[str, tuple[float, float]] = field(default_factory=dict)  # id → (call start, call end)
    arrivals: list[tuple[str, str, float]] = field(default_factory=list)  # (id, sub-key, time)
    errors: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    quiesce_s: float | None = None

    def figures(self) -> dict[str, Any]:
        expected = self.events * self.fan_out
        seen = Counter((i, k) for i, k, _ in self.arrivals)
        first_arrival: dict[tuple[str, str], float] = {}
        for i, k, at in self.arrivals:
            first_arrival[(i, k)] = min(at, first_arrival.get((i, k), at))
        e2e = [at - self.starts[i][0] for (i, _k), at in first_arrival.items() if i in self.starts]
        publish = [end - start for start, end in self.starts.values()]
        first_start = min((s for s, _ in self.starts.values()), default=0.0)
        last_start_end = max((e for _, e in self.starts.values()), default=0.0)
        last_arrival = max(first_arrival.values(), default=first_start)
        span = last_arrival - first_start
        return {
            "name": self.name,
            "kind": self.kind,
            "events": self.events,
            "fan_out": self.fan_out,
            "concurrency": self.concurrency,
            "deliveries_expected": expected,
            "deliveries_arrived": len(first_arrival),
            "duplicates": sum(n - 1 for n in seen.values() if n > 1),
            "errors": self.errors[:10],
            "error_count": len(self.errors),
            "span_s": round(span, 3),
            "deliveries_per_s": round(len(first_arrival) / span, 1) if span > 0 else None,
            "events_per_s": round(len({i for i, _ in first_arrival}) / span, 1) if span > 0 else None,
            "publish_rate_per_s": round(len(self.starts) / (last_start_end - first_start), 1)
            if last_start_end > first_start else None,
            "e2e_ms": ms(e2e),
            "publish_ms": ms(publish),
            "quiesce_s": self.quiesce_s,
            **self.usage,
        }


# --- the run -------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path, children: Children) -> None:
        self.args = args
        self.tmp = tmp
        self.children = children
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.receiver_port = free_port()
        self.task_queue = "hl-bench-" + secrets.token_hex(4)
        self.ceiling_queue = "ceiling-bench-" + secrets.token_hex(4)
        self.ceiling_file = tmp / "ceiling-arrivals.txt"
        self.ceiling_offset = 0
        self.receiver_seen = 0
        self.run_tag = secrets.token_hex(3)

    # start-up

    def python_env(self) -> dict[str, str]:
        """The environment of the Python children.

        As inherited, like `hookline dev`. The workflow sandbox re-imports the workflow's module for
        every workflow run; with PYTHONDONTWRITEBYTECODE set (as on this workplace's machines) and
        no .pyc beside the source, that includes a compile() of workflows/event.py per event.
        --bytecode-cache gives the children a bytecode cache in the temporary directory
        (PYTHONPYCACHEPREFIX), as an installed package has its .pyc.
        """
        # HOOKLINE_* of the caller's shell would change what is measured: only the bench sets them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.args.bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.tmp / "pycache")
        return env

    def start_stack(self) -> None:
        a = self.args
        temporal = self.children.start(
            "temporal",
            dev_server_command(
                port=self.temporal_port, ui_port=None, db_file=self.tmp / "temporal.db",
                fairness=getattr(a, "fairness", True),  # bench/fairness.py measures without it too
                partitions=getattr(a, "partitions", DEV_PARTITIONS),
            ) + [arg for kv in getattr(a, "temporal_config", []) for arg in ("--dynamic-config-value", kv)],
        )
        receiver = self.children.start(
            "receiver", [sys.executable, str(BENCH / "receiver.py"), "--port", str(self.receiver_port)], self.python_env()
        )
        wait_for_port(self.temporal_port, 60, temporal.proc)
        wait_for_port(self.receiver_port, 30, receiver.proc)
        env = {
            **self.python_env(),
            "HOOKLINE_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "HOOKLINE_DATABASE_URL": f"sqlite:///{self.tmp / 'hookline.db'}",
            "HOOKLINE_DATA_DIR": str(self.tmp),
            "HOOKLINE_TASK_QUEUE": self.task_queue,
            "HOOKLINE_ADMIN_TOKEN": TOKEN,
            "HOOKLINE_ALLOW_PRIVATE_TARGETS": "true",
            # The receiver is plain http on loopback; secrets are encrypted as in production.
            "HOOKLINE_ENV": "development",
            # One credential publishes everything here: its request budget (100/s by default) would
            # measure the limiter, not delivery. Authentication and every other check still run.
            "HOOKLINE_API_RATE_LIMIT_PER_S": "0",
            "HOOKLINE_ENCRYPTION_KEY": generate_key(),
            **getattr(a, "stack_env", {}),  # bench/fanout.py: settings of the API and the workers
        }
        if getattr(a, "database", "sqlite") == "postgres":
            env["HOOKLINE_DATABASE_URL"] = self.start_postgres()
        subprocess.run([sys.executable, "-m", "hookline.cli", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        api = self.children.start("api", [sys.executable, "-m", "hookline.cli", "api", "--port", str(self.api_port)], env)
        wait_for_port(self.api_port, 60, api.proc)
        worker_cmd = [sys.executable, "-m", "hookline.cli", "worker"]
        if a.worker_variant:
            worker_cmd = [sys.executable, str(BENCH / "variant_worker.py"), *a.worker_variant.split(",")]
        worker_env = {**env, **dict(kv.split("=", 1) for kv in a.worker_env)}
        for k in range(a.workers):
            self.children.start("worker" if k == 0 else f"worker{k + 1}", worker_cmd, worker_env)
        self.ceiling_file.touch()
        # One bare worker by default: the SDK's defaults, as the baseline was measured. A second
        # one only takes CPU from the server, which is the ceiling's bottleneck.
        for k in range(a.ceiling_workers):
            self.children.start(
                "ceiling" if k == 0 else f"ceiling{k + 1}",
                [sys.executable, str(BENCH / "ceiling.py"), "--address", f"127.0.0.1:{self.temporal_port}",
                 "--task-queue", self.ceiling_queue, "--arrivals", str(self.ceiling_file), "--sandbox", a.ceiling_sandbox],
                self.python_env(),
            )

    def start_postgres(self) -> str:
        """A throwaway cluster for Hookline's store (Temporal keeps its SQLite file), stopped by
        Children.stop_all after the processes that use it."""
        from pg import PostgresCluster

        cluster = PostgresCluster()
        self.children.cleanups.append(cluster.stop)
        cluster.start()
        self.children.groups["postgres"] = cluster.postmaster_pid()
        return cluster.create_database()

    async def setup(self) -> None:
        from temporalio.client import Client
        from temporalio.contrib.pydantic import pydantic_data_converter

        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.api_port}", headers={"authorization": f"Bearer {TOKEN}"},
            timeout=60, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )
        self.receiver = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.receiver_port}", timeout=30)
        self.temporal = await Client.connect(f"127.0.0.1:{self.temporal_port}", data_converter=pydantic_data_converter)
        self.app_a = await self._create_app("bench-one", ["/a"])
        self.app_b = await self._create_app("bench-ten", [f"/b/{k}" for k in range(10)])

    async def _create_app(self, name: str, paths: list[str]) -> str:
        r = await self.http.post("/v1/apps", json={"name": name})
        r.raise_for_status()
        app_id = r.json()["id"]
        for path in paths:
            r = await self.http.post(
                f"/v1/apps/{app_id}/endpoints", json={"url": f"http://127.0.0.1:{self.receiver_port}{path}"}
            )
            r.raise_for_status()
        return app_id

    async def close(self) -> None:
        for client in ("http", "receiver"):
            if hasattr(self, client):
                await getattr(self, client).aclose()

    # arrivals

    async def _receiver_arrivals(self) -> list[tuple[str, str, float]]:
        r = await self.receiver.get("/arrivals", params={"since": self.receiver_seen})
        got = [tuple(x) for x in r.json()]
        self.receiver_seen += len(got)
        return got  # type: ignore[return-value]

    async def _ceiling_arrivals(self) -> list[tuple[str, str, float]]:
        got = []
        with open(self.ceiling_file, "rb") as f:
            f.seek(self.ceiling_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # whole lines only
        self.ceiling_offset += end
        for line in chunk[:end].decode().splitlines():
            run_id, k, at = line.split()
            got.append((run_id, k, float(at)))
        return got

    async def _collect(self, outcome: Outcome, fetch, expected: int, deadline: float) -> None:
        while len({(i, k) for i, k, _ in outcome.arrivals}) < expected:
            if time.monotonic() > deadline:
                outcome.errors.append(f"timed out waiting: {len(outcome.arrivals)} of {expected} arrived")
                self._diagnose(outcome.name)
                return
            self.children.check()
            outcome.arrivals += await fetch()
            await asyncio.sleep(0.05)

    def _diagnose(self, name: str) -> None:
        """On a stall, with HOOKLINE_BENCH_PYSPY=/path/to/py-spy: dump the Hookline worker's stacks."""
        spy = os.environ.get("HOOKLINE_BENCH_PYSPY")
        worker = next((c for c in self.children.all if c.name == "worker"), None)
        if spy and worker:
            out = self.tmp / f"stall-{name}-worker-stacks.txt"
            with open(out, "wb") as f:
                subprocess.run([spy, "dump", "--pid", str(worker.pid), "--locals"], stdout=f, stderr=subprocess.STDOUT, timeout=60)
            print(f"  worker stacks: {out}", flush=True)

    async def _quiesce(self, task_queue: str, timeout: float = 60) -> float | None:
        """Wait until the task queue has no running workflow, so the next scenario starts clean."""
        start = time.monotonic()
        query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
        while time.monotonic() - start < timeout:
            try:
                count = (await self.temporal.count_workflows(query)).count
            except Exception:  # visibility query unsupported: settle for a pause
                await asyncio.sleep(2)
                return None
            if count == 0:
                return round(time.monotonic() - start, 2)
            await asyncio.sleep(0.1)
        return None

    # publishing

    async def _publish(self, outcome: Outcome, app_id: str, i: int) -> str | None:
        body = {"type": "bench.ping", "data": {"n": i, "run": self.run_tag, "note": "x" * 200}}
        start = time.monotonic()
        try:
            r = await self.http.post(f"/v1/apps/{app_id}/events", json=body)
        except httpx.HTTPError as exc:
            outcome.errors.append(f"publish {i}: {type(exc).__name__}: {exc}")
            return None
        end = time.monotonic()
        if r.status_code != 202:
            outcome.errors.append(f"publish {i}: HTTP {r.status_code} {r.text[:200]}")
            return None
        event_id = r.json()["id"]
        outcome.starts[event_id] = (start, end)
        return event_id

    async def _start_ceiling(self, outcome: Outcome, shape: str, i: int) -> str | None:
        from ceiling import ShapeInput

        run_id = f"{outcome.name}-{self.run_tag}-{i}"
        start = time.monotonic()
        try:
            await self.temporal.start_workflow(shape, ShapeInput(run_id=run_id), id=run_id, task_queue=self.ceiling_queue)
        except Exception as exc:  # noqa: BLE001
            outcome.errors.append(f"start {i}: {type(exc).__name__}: {exc}")
            return None
        outcome.starts[run_id] = (start, time.monotonic())
        return run_id

    async def scenario(
        self, name: str, kind: str, events: int, fan_out: int, concurrency: int, target: str
    ) -> Outcome:
        """`concurrency` 0: one at a time, each waited for at its receiver before the next."""
        outcome = Outcome(name, kind, events, fan_out, max(concurrency, 1))
        fetch = self._receiver_arrivals if kind == "hookline" else self._ceiling_arrivals
        queue = self.task_queue if kind == "hookline" else self.ceiling_queue
        await fetch()  # skip anything still arriving from before

        async def send(i: int) -> str | None:
            if kind == "hookline":
                return await self._publish(outcome, target, i)
            return await self._start_ceiling(outcome, target, i)

        sampler = Sampler(self.children)
        deadline = time.monotonic() + self.args.scenario_timeout
        sampler.start()
        if concurrency == 0:
            for i in range(events):
                sent = await send(i)
                if sent is None:
                    continue
                want = len({(x, k) for x, k, _ in outcome.arrivals}) + fan_out
                await self._collect(outcome, fetch, want, deadline)
                await asyncio.sleep(self.args.low_load_gap)
        else:
            next_i = iter(range(events))

            async def lane() -> None:
                for i in next_i:
                    await send(i)

            await asyncio.gather(*(lane() for _ in range(concurrency)))
            await self._collect(outcome, fetch, len(outcome.starts) * fan_out, deadline)
        sampler.mark()
        outcome.quiesce_s = await self._quiesce(queue)
        await sampler.stop()
        # Only this scenario's ids (a late straggler from before would have another id).
        outcome.arrivals = [a for a in outcome.arrivals if a[0] in outcome.starts]
        outcome.usage = sampler.report(len({(i, k) for i, k, _ in outcome.arrivals}))
        return outcome

    async def warm_up(self) -> None:
        """Connections, imports, caches and the first workflow tasks, outside the figures."""
        await self.scenario("warm-A", "hookline", 5, 1, 0, self.app_a)
        await self.scenario("warm-B", "hookline", 3, 10, 3, self.app_b)
        await self.scenario("warm-W1", "ceiling", 5, 1, 0, "CeilingW1")
        await self.scenario("warm-W2", "ceiling", 3, 10, 3, "CeilingW2")


async def bench(args: argparse.Namespace, tmp: Path, children: Children) -> dict[str, Any]:
    b = Bench(args, tmp, children)
    b.start_stack()
    try:
        await b.setup()
        t = time.monotonic()
        await b.warm_up()
        print(f"stack up; warm-up done in {time.monotonic() - t:.1f}s", flush=True)
        n, c = args.events, args.concurrency
        plan = [
            ("L", "hookline", args.latency_events, 1, 0, b.app_a),
            ("L0", "ceiling", args.latency_events, 1, 0, "CeilingW1"),
            ("A", "hookline", n, 1, c, b.app_a),
            ("W1", "ceiling", n, 1, c, "CeilingW1"),
            ("B", "hookline", n, 10, c, b.app_b),
            ("W2", "ceiling", n, 10, c, "CeilingW2"),
        ]
        results = {}
        for name, kind, events, fan_out, conc, target in plan:
            if args.only and name not in args.only.split(","):
                continue
            outcome = await b.scenario(name, kind, events, fan_out, conc, target)
            results[name] = outcome.figures()
            print_scenario(results[name])
        return results
    finally:
        await b.close()


# --- output --------------------------------------------------------------------------------------

def print_scenario(f: dict[str, Any]) -> None:
    what = {
        "L": "Hookline, low load: 1 event at a time → 1 endpoint",
        "L0": "ceiling, low load: W1 started one at a time",
        "A": "Hookline A: events → 1 endpoint",
        "W1": "ceiling W1: workflow → 1 no-op activity",
        "B": "Hookline B: events → 10 endpoints",
        "W2": "ceiling W2: workflow → 10 no-op activities (gather)",
    }.get(f["name"], f["name"])
    conc = "one at a time" if f["name"] in ("L", "L0") else f"{f['concurrency']} in flight"
    rss, cpu = f["rss_peak_mb"], f["cpu_percent"]
    print(f"\n[{f['name']}] {what}  ({f['events']} events, {conc})")
    print(f"  arrived        {f['deliveries_arrived']}/{f['deliveries_expected']}"
          f"  duplicates {f['duplicates']}  errors {f['error_count']}  in {f['span_s']} s")
    print(f"  throughput     {f['deliveries_per_s']} deliveries/s  ({f['events_per_s']} events/s;"
          f" publish/start calls {f['publish_rate_per_s']}/s)")
    e, p = f["e2e_ms"], f["publish_ms"]
    print(f"  end-to-end     p50 {e['p50']} ms  p99 {e['p99']} ms  max {e['max']} ms")
    label = "publish POST" if f["kind"] == "hookline" else "start call"
    print(f"  {label:<14} p50 {p['p50']} ms  p99 {p['p99']} ms")
    print("  RSS peak MB    " + "  ".join(f"{k} {v}" for k, v in rss.items() if k != "driver"))
    print("  CPU % (mean)   " + "  ".join(f"{k} {v}" for k, v in cpu.items())
          + f"  | everything else on the machine {f['others_cpu_percent']}")
    per = f["cpu_ms_per_delivery"]
    total = sum(v for k, v in per.items() if k != "driver")
    print("  CPU ms/deliv.  " + "  ".join(f"{k} {v}" for k, v in per.items() if v) + f"  (all but driver {total:.1f})")
    if f.get("quiesce_s") is not None:
        print(f"  settled        all workflows closed {f['quiesce_s']} s after the last arrival")
    for err in f["errors"][:3]:
        print(f"  ! {err}")


def print_summary(results: dict[str, Any]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    print("\nsummary")
    for ours, bare, target in (("A", "W1", 0.85), ("B", "W2", 1.0)):
        if ours in results and bare in results:
            x, y = results[ours]["deliveries_per_s"], results[bare]["deliveries_per_s"]
            if x and y:
                ratios[f"{ours}/{bare}"] = round(x / y, 2)
                print(f"  {ours} / {bare}   {x} / {y} deliveries/s = {x / y:.2f} × ceiling  (target ≥ {target})")
            cx, cy = results[ours]["cpu_ms_per_delivery"], results[bare]["cpu_ms_per_delivery"]
            if cx and cy:
                mine = {k: v for k, v in cx.items() if k != "driver" and not k.startswith("ceiling")}
                theirs = {k: v for k, v in cy.items() if k == "temporal" or k.startswith("ceiling")}
                a, b = sum(mine.values()), sum(theirs.values())
                ratios[f"{ours}/{bare} cpu_per_delivery"] = round(a / b, 2) if b else None
                print(f"           CPU per delivery {a:.1f} ms ("
                      + ", ".join(f"{k} {v:.1f}" for k, v in mine.items() if v >= 0.05)
                      + f") vs {b:.1f} ms (" + ", ".join(f"{k} {v:.1f}" for k, v in theirs.items()) + ")"
                      + (f" = {a / b:.2f} × the ceiling's" if b else ""))
    if "L" in results:
        p50 = results["L"]["e2e_ms"]["p50"]
        bare = results.get("L0", {}).get("e2e_ms", {}).get("p50")
        verdict = "meets" if p50 is not None and p50 < 60 else "misses"
        print(f"  low-load publish → receiver p50 {p50} ms (ceiling start → activity {bare} ms); {verdict} the < 60 ms target")
    return ratios


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(
            (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")), ""
        )
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    import temporalio

    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_total": mem, "python": platform.python_version(),
            "temporalio": temporalio.__version__, "platform": platform.platform()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="events per scenario A and B, workflows per W1 and W2 [200]")
    parser.add_argument("--concurrency", type=int, default=16, help="publish / start calls in flight [16]")
    parser.add_argument("--latency-events", type=int, default=30, help="events of the low-load runs L and L0 [30]")
    parser.add_argument("--low-load-gap", type=float, default=0.05, help="pause between low-load events, s [0.05]")
    parser.add_argument("--scenario-timeout", type=float, default=120, help="give up on a scenario after this, s [120]")
    parser.add_argument("--max-seconds", type=float, default=600, help="abort the whole run after this, s [600]")
    parser.add_argument("--only", help="comma-separated scenarios to run, e.g. A,W1 [all]")
    parser.add_argument("--ceiling-sandbox", choices=("on", "off"), default="on",
                        help="workflow sandbox of the ceiling worker: on is the SDK's default; Hookline's worker "
                        "runs without it (HOOKLINE_WORKFLOW_SANDBOX) [on]")
    parser.add_argument("--worker-variant", help="run bench/variant_worker.py with these comma-separated tweaks "
                        "(see its docstring) instead of `python -m hookline.cli worker` "
                        "(experiments only)")
    add_stack_arguments(parser)
    parser.add_argument("--ceiling-workers", type=int, default=1, help="bare ceiling worker processes [1]")
    parser.add_argument("--bytecode-cache", action="store_true",
                        help="give the children a .pyc cache in the temp dir even if PYTHONDONTWRITEBYTECODE is set")
    parser.add_argument("--no-fairness", dest="fairness", action="store_false",
                        help="start the dev server without task-queue fairness (to measure its cost)")
    parser.add_argument("--label", default="", help="free text stored with the result")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/<time>.json")
    parser.add_argument("--keep-logs", action="store_true", help="print where the logs are and keep them")
    args = parser.parse_args()
    if args.events < 1 or args.concurrency < 1 or args.latency_events < 0:
        parser.error("--events and --concurrency must be ≥ 1")

    tmp = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    children = Children(tmp)

    interrupt_on_sigterm()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    started = time.time()
    load_before = os.getloadavg()
    rc = 0
    results: dict[str, Any] = {}
    try:
        print(f"hookline bench: {args.events} events, {args.concurrency} in flight, "
              f"{args.latency_events} low-load events; store {args.database}; {os.cpu_count()} CPUs, load {load_before[0]:.2f}", flush=True)
        results = asyncio.run(asyncio.wait_for(bench(args, tmp, children), args.max_seconds))
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        rc = 130
    except Exception as exc:  # noqa: BLE001
        report_failure(f"benchmark failed: {type(exc).__name__}: {exc}", children)
        rc = 1
    finally:
        stop_children(children)
        failed = rc == 1 or any(r.get("error_count") for r in results.values())
        if failed and not args.keep_logs:
            logs = BENCH / "results" / f"logs-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(started))}"
            logs.mkdir(parents=True, exist_ok=True)
            for f in tmp.glob("*.log"):
                shutil.copy(f, logs)
            for f in tmp.glob("stall-*.txt"):
                shutil.copy(f, logs)
            print(f"something failed: logs copied to {logs.relative_to(ROOT)}", file=sys.stderr)
        if args.keep_logs:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if results:
        ratios = print_summary(results)
        load_after = os.getloadavg()
        print(f"  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); "
              f"wall time {time.time() - started:.0f} s")
        if not args.no_save:
            out_dir = BENCH / "results"
            out_dir.mkdir(exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
            path = out_dir / f"{stamp}.json"
            path.write_text(json.dumps({
                "started_utc": stamp, "args": vars(args), "machine": machine(),
                "loadavg_before": load_before, "loadavg_after": load_after,
                "wall_s": round(time.time() - started, 1), "ratios": ratios, "scenarios": results,
            }, indent=2))
            print(f"  result: {path.relative_to(ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
