"""Tenant fairness: how long application Y's events wait while application X's backlog drains.

    python bench/fairness.py                                 # fairness on, then off; ≈ 2.5 min on 2 cores
    python bench/fairness.py --modes on --partitions 4       # as an older `hookline dev` data directory

Per mode it starts the stack as bench/run.py does (the `hookline dev` shape: the Temporal dev
server on a SQLite file, two worker processes, the API, SQLite for Hookline's store, the fast
receiver), then X publishes --backlog events (2,000) to its one endpoint, --concurrency in
flight, and from --y-after seconds on Y publishes one event every --y-every seconds to an
endpoint of its own, until X's last delivery arrives. Y's latency is publish call start →
arrival at the receiver (one monotonic clock for every process of the machine).

Modes: `on` is the dev server as `hookline dev` starts it (cli.FAIRNESS_CONFIG); `off` is the
same without that dynamic config. The event workflows carry the application id as fairness key
in both (services/event_workflow_client.py): keys alone change nothing.

Every process it starts is stopped by its PID; the temporary directories are removed; a JSON
result goes under bench/results/ (git-ignored) unless --no-save. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hookline.core.config import DEV_PARTITIONS  # noqa: E402
from run import DEV_WORKERS, Bench, Children, Outcome, Sampler, interrupt_on_sigterm, ms, save_result  # noqa: E402

# Of each mode's share of --max-seconds: kept for stopping the stack, and for Y's last arrivals.
STOP_S = 12
TAIL_S = 5


async def measure(args: argparse.Namespace, fair: bool, budget_s: float) -> dict[str, Any]:
    """One mode, on a stack of its own that is stopped before this returns, within `budget_s`."""
    ends = time.monotonic() + budget_s - STOP_S
    tmp = Path(tempfile.mkdtemp(prefix="hookline-fairness-"))
    children = Children(tmp)
    options = argparse.Namespace(
        fairness=fair, workers=DEV_WORKERS, worker_variant=args.worker_variant, worker_env=args.worker_env, ceiling_workers=0,
        temporal_config=args.temporal_config, partitions=args.partitions,
        ceiling_sandbox="on", bytecode_cache=False, scenario_timeout=60, low_load_gap=0.05,
    )
    b = Bench(options, tmp, children)
    try:
        b.start_stack()
        await b.setup()
        app_x = b.app_a  # one endpoint, /a
        app_y = await b._create_app("bench-y", ["/y"])
        await b.scenario("warm-x", "hookline", 5, 1, 0, app_x)
        await b.scenario("warm-y", "hookline", 5, 1, 0, app_y)
        return await _flood(b, args, app_x, app_y, ends)
    except Exception:
        for child in children.all:
            print(f"--- {child.name} (pid {child.pid}) log tail ---\n{child.tail(1500)}", file=sys.stderr)
        raise
    finally:
        await b.close()
        children.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


async def _flood(b: Bench, args: argparse.Namespace, app_x: str, app_y: str, ends: float) -> dict[str, Any]:
    x = Outcome("X", "hookline", args.backlog, 1, args.concurrency)
    y = Outcome("Y", "hookline", 0, 1, 1)
    await b._receiver_arrivals()  # the warm-up's
    drained = asyncio.Event()
    sampler = Sampler(b.children)
    sampler.start()
    started = time.monotonic()
    # X may not drain on a busy machine: Y is measured while X has a backlog either way.
    deadline = min(started + args.drain_timeout, ends - TAIL_S)
    numbers = iter(range(args.backlog))

    async def x_lane() -> None:
        for i in numbers:
            await b._publish(x, app_x, i)

    async def y_publisher() -> None:
        await asyncio.sleep(args.y_after)
        sends = []
        while not drained.is_set() and time.monotonic() < deadline:
            # Not awaited in turn: Y's cadence must not depend on how long its publishes take.
            sends.append(asyncio.create_task(b._publish(y, app_y, len(sends))))
            await asyncio.sleep(args.y_every)
        await asyncio.gather(*sends)

    async def collect() -> None:
        while time.monotonic() < deadline:
            for arrival in await b._receiver_arrivals():
                (x if arrival[1] == "/a" else y).arrivals.append(arrival)
            if flood.done() and len({a[0] for a in x.arrivals}) >= len(x.starts):
                drained.set()
                return
            await asyncio.sleep(0.05)
        x.errors.append(f"X not drained within the time box: {len(x.arrivals)} of {len(x.starts)} arrived")
        drained.set()

    flood = asyncio.gather(*(x_lane() for _ in range(args.concurrency)))
    publisher = asyncio.create_task(y_publisher())
    await collect()
    sampler.mark()
    flood.cancel()  # X still publishing at the end of the time box: stop there
    try:
        await flood
    except asyncio.CancelledError:
        pass
    await publisher
    # Y's last events, published while X drained, may still be on their way.
    tail_deadline = time.monotonic() + TAIL_S
    while len({a[0] for a in y.arrivals}) < len(y.starts) and time.monotonic() < tail_deadline:
        y.arrivals += [a for a in await b._receiver_arrivals() if a[1] == "/y"]
        await asyncio.sleep(0.05)
    await sampler.stop()
    stages = await _y_stages(b, y)
    xf, yf = x.figures(), y.figures()
    last_x = max((at for _i, _k, at in x.arrivals), default=started)
    # Y's events still on their way had waited at least this long (their latency is more).
    now = time.monotonic()
    arrived = {a[0] for a in y.arrivals}
    missing = [now - start for event_id, (start, _end) in y.starts.items() if event_id not in arrived]
    return {
        "x_events": len(x.starts),
        "x_arrived": xf["deliveries_arrived"],
        "x_drain_s": round(last_x - started, 1),
        "x_deliveries_per_s": xf["deliveries_per_s"],
        "y_events": len(y.starts),
        "y_arrived": yf["deliveries_arrived"],
        "y_e2e_ms": yf["e2e_ms"],
        "y_publish_ms": yf["publish_ms"],
        "y_missing": len(missing),
        "y_missing_waited_s": {"min": round(min(missing), 1), "max": round(max(missing), 1)} if missing else None,
        "y_stages_ms": stages,
        "errors": (x.errors + y.errors)[:10],
        **sampler.report(xf["deliveries_arrived"] + yf["deliveries_arrived"]),
    }


async def _y_stages(b: Bench, y: Outcome) -> dict[str, Any]:
    """Where Y's time went, from each Y workflow's history: the API (publish call start → workflow
    started), the task queue (first workflow task scheduled → picked up by a worker: what fairness
    orders), and the worker (picked up → arrival at the receiver)."""
    from hookline.core.ids import event_workflow_id
    from temporalio.api.enums.v1 import EventType

    wall_minus_mono = time.time() - time.monotonic()
    arrival = {event_id: at for event_id, _k, at in y.arrivals}
    api, queue, worker = [], [], []
    worst: list[tuple[float, float]] = []  # (publish, s after Y's first; queue wait, ms)
    first = min((start for start, _end in y.starts.values()), default=0.0)
    for event_id, (start, _end) in y.starts.items():
        if event_id not in arrival:
            continue
        history = await b.temporal.get_workflow_handle(event_workflow_id(event_id)).fetch_history()
        times: dict[int, float] = {}
        for event in history.events:
            times.setdefault(event.event_type, event.event_time.ToDatetime().timestamp() - wall_minus_mono)
        started = times[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
        scheduled = times[EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
        picked = times[EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]
        api.append(started - start)
        queue.append(picked - scheduled)
        worst.append((round(start - first, 1), round((picked - scheduled) * 1000)))
        worker.append(arrival[event_id] - picked)
    worst.sort(key=lambda w: -w[1])
    return {"api": ms(api), "queue": ms(queue), "worker": ms(worker), "queue_worst": worst[:8]}


def print_mode(mode: str, r: dict[str, Any]) -> None:
    e, p = r["y_e2e_ms"], r["y_publish_ms"]
    print(f"\n[fairness {mode}]")
    print(f"  X backlog      {r['x_arrived']}/{r['x_events']} arrived, drained in {r['x_drain_s']} s"
          f" ({r['x_deliveries_per_s']} deliveries/s)")
    print(f"  Y publish → receiver  p50 {e['p50']} ms  p99 {e['p99']} ms  max {e['max']} ms"
          f"  ({r['y_arrived']}/{r['y_events']} events; publish POST p50 {p['p50']} ms, p99 {p['p99']} ms)")
    for stage, f in r["y_stages_ms"].items():
        if stage == "queue_worst":
            print(f"    longest queue waits (s after Y's first publish, ms): {f}")
            continue
        print(f"    {stage:<7} p50 {f['p50']} ms  p99 {f['p99']} ms  max {f['max']} ms")
    print("  CPU % (mean)   " + "  ".join(f"{k} {v}" for k, v in r["cpu_percent"].items())
          + f"  | everything else on the machine {r['others_cpu_percent']}")
    if r["y_missing"]:
        w = r["y_missing_waited_s"]
        print(f"  Y not arrived  {r['y_missing']} events, waiting {w['min']}–{w['max']} s so far (not in the percentiles)")
    for err in r["errors"][:3]:
        print(f"  ! {err}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    modes = args.modes.split(",")
    for mode in modes:
        results[mode] = await measure(args, fair=mode == "on", budget_s=args.max_seconds / len(modes))
        print_mode(mode, results[mode])
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=2000, help="X's events [2000]")
    parser.add_argument("--concurrency", type=int, default=16, help="X's publish calls in flight [16]")
    parser.add_argument("--y-after", type=float, default=3.0, help="Y's first event, s after X's first [3]")
    parser.add_argument("--y-every", type=float, default=0.5, help="s between Y's events [0.5]")
    parser.add_argument("--drain-timeout", type=float, default=120, help="stop waiting for X's drain after this, s [120]")
    parser.add_argument("--modes", default="on,off", help="comma-separated: on, off [on,off]")
    parser.add_argument("--max-seconds", type=float, default=175,
                        help="time box of the whole run, shared equally by the modes; X's drain is cut short to keep it [175]")
    parser.add_argument("--partitions", type=int, default=DEV_PARTITIONS,
                        help=f"partitions per task queue, as `hookline dev` on a new data directory [{DEV_PARTITIONS}]")
    parser.add_argument("--temporal-config", action="append", default=[], metavar="KEY=VALUE",
                        help="extra dynamic config of the dev server, e.g. matching.numTaskqueueReadPartitions=1")
    parser.add_argument("--worker-variant", default=None, help="tweaks of bench/variant_worker.py, comma-separated")
    parser.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment of the worker processes, e.g. HOOKLINE_WORKER_MAX_CONCURRENT_ACTIVITIES=50")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/fairness-<time>.json")
    args = parser.parse_args()

    interrupt_on_sigterm()
    started = time.time()
    load_before = os.getloadavg()
    print(f"hookline fairness bench: X backlog {args.backlog} events ({args.concurrency} in flight), Y every "
          f"{args.y_every} s; {os.cpu_count()} CPUs, load {load_before[0]:.2f}", flush=True)
    try:
        results = asyncio.run(asyncio.wait_for(main_async(args), args.max_seconds + 60))  # a stuck stop
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    load_after = os.getloadavg()
    print(f"\n  load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); "
          f"wall time {time.time() - started:.0f} s")
    if not args.no_save:
        save_result("fairness", started, {"args": vars(args), "loadavg_before": load_before, "loadavg_after": load_after,
                                          "wall_s": round(time.time() - started, 1), "modes": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
