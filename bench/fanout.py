"""One event to N endpoints: is every one delivered exactly once, within Temporal's limits?

    python bench/fanout.py                      # 10,000 endpoints; --max-seconds 900
    python bench/fanout.py --endpoints 200      # a quick try

Starts the stack as bench/run.py does (Temporal dev server, API, `--workers N` workers, the
receiver; no ceiling; `--database postgres` for a throwaway PostgreSQL store), then:

1. creates one application and N endpoints through the API (POST /v1/apps/{id}/endpoints,
   `--create-concurrency` calls in flight), each at its own receiver path /f/<k>: the way a user
   would, and what the API's checks cost is part of the setup time it prints;
2. publishes ONE event and waits until every path has received it;
3. waits for the event's workflow to close, then walks its run chain back through the
   histories (each run's start names the run it continued): the runs (continue-as-new count),
   each run's history length and size, every workflow task failure with its cause (what a
   Temporal limit hit, such as the pending-activity limit, looks like), the final status.

It prints the time to the last arrival, deliveries/s, duplicates and missing paths, the peak RSS
of the worker(s), API and Temporal server (and PostgreSQL, summed over its processes), and the
most pending activities seen on the workflow (sampled every second; the dev server's limit is
2,000). Every process is stopped by PID at the end; a JSON result is written under bench/results/.
Bounded by --max-seconds. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (  # noqa: E402
    Bench, Children, Sampler, add_stack_arguments, interrupt_on_sigterm, run_stack_bench, save_result, stack_options,
)

from hookline.core.ids import event_workflow_id  # noqa: E402

# The dev server's default limit.numPendingActivities.error: a workflow task that schedules past it fails.
PENDING_ACTIVITY_LIMIT = 2000


async def create_endpoints(b: Bench, app_id: str, n: int, concurrency: int) -> float:
    """N endpoints at /f/0 … /f/N-1; returns the seconds it took."""
    start = time.monotonic()
    todo = iter(range(n))

    async def lane() -> None:
        for k in todo:
            r = await b.http.post(
                f"/v1/apps/{app_id}/endpoints", json={"url": f"http://127.0.0.1:{b.receiver_port}/f/{k}"}
            )
            if r.status_code != 201:
                raise RuntimeError(f"endpoint {k}: HTTP {r.status_code} {r.text[:200]}")
            if k and k % 1000 == 0:
                print(f"  {k} endpoints created ({time.monotonic() - start:.0f} s)", flush=True)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.monotonic() - start


async def run_chain(b: Bench, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of the workflow, first to last, from the histories (not visibility, which lags)."""
    from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause

    runs: list[dict[str, Any]] = []
    run_id = (await b.temporal.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        handle = b.temporal.get_workflow_handle(workflow_id, run_id=run_id)
        desc = await handle.describe()
        history = await handle.fetch_history()
        failures = Counter(
            WorkflowTaskFailedCause.Name(e.workflow_task_failed_event_attributes.cause)
            for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        )
        started = history.events[0].workflow_execution_started_event_attributes
        info = desc.raw_description.workflow_execution_info
        runs.append({
            "run_id": run_id, "status": desc.status.name if desc.status else None,
            "history_length": info.history_length, "history_size_bytes": info.history_size_bytes,
            "workflow_task_failures": dict(failures),
        })
        run_id = started.continued_execution_run_id
    return runs[::-1]


async def fanout(args: argparse.Namespace, b: Bench, children: Children) -> dict[str, Any]:
    b.start_stack()
    await b.setup()
    r = await b.http.post("/v1/apps", json={"name": f"fanout-{args.endpoints}"})
    r.raise_for_status()
    app_id = r.json()["id"]
    create_s = await create_endpoints(b, app_id, args.endpoints, args.create_concurrency)
    print(f"{args.endpoints} endpoints created in {create_s:.1f} s ({args.endpoints / create_s:.0f}/s)", flush=True)
    await b._receiver_arrivals()  # skip anything from setup

    sampler = Sampler(children, every=0.5)
    sampler.start()
    start = time.monotonic()
    r = await b.http.post(f"/v1/apps/{app_id}/events",
                          json={"type": "bench.fanout", "data": {"run": b.run_tag, "note": "x" * 200}})
    if r.status_code != 202:
        raise RuntimeError(f"publish: HTTP {r.status_code} {r.text[:200]}")
    event_id = r.json()["id"]
    workflow_id = event_workflow_id(event_id)
    handle = b.temporal.get_workflow_handle(workflow_id)
    seen: Counter[str] = Counter()
    last_arrival = start
    max_pending = 0
    next_describe = 0.0
    closed = False
    deadline = start + args.wait_seconds
    reported = 0

    async def fetch() -> None:
        nonlocal last_arrival
        for arrival_id, path, at in await b._receiver_arrivals():
            if arrival_id == event_id:
                seen[path] += 1
                last_arrival = max(last_arrival, at)

    while time.monotonic() < deadline:
        children.check()
        await fetch()
        if len(seen) // 1000 > reported:
            reported = len(seen) // 1000
            print(f"  {len(seen)} arrived ({time.monotonic() - start:.0f} s)", flush=True)
        if time.monotonic() >= next_describe:
            desc = await handle.describe()
            max_pending = max(max_pending, len(desc.raw_description.pending_activities))
            closed = desc.status is not None and desc.status.name != "RUNNING"
            next_describe = time.monotonic() + 1
        if len(seen) >= args.endpoints:
            break
        await asyncio.sleep(0.2)
    sampler.mark()
    while not closed and time.monotonic() < deadline:  # the workflow records the last attempts, then completes
        await asyncio.sleep(0.5)
        desc = await handle.describe()
        closed = desc.status is not None and desc.status.name != "RUNNING"
    await sampler.stop()
    await fetch()  # a duplicate would have arrived by now
    runs = await run_chain(b, workflow_id)
    span = last_arrival - start
    usage = sampler.report(sum(seen.values()))
    return {
        "endpoints": args.endpoints, "create_s": round(create_s, 1),
        "arrived": len(seen), "missing": args.endpoints - len(seen),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "time_to_last_arrival_s": round(span, 2),
        "deliveries_per_s": round(len(seen) / span, 1) if span > 0 else None,
        "workflow_closed": closed, "final_status": runs[-1]["status"] if runs else None,
        "continue_as_new": len(runs) - 1, "runs": runs,
        "max_history_length": max((x["history_length"] for x in runs), default=0),
        "workflow_task_failures": sum(sum(x["workflow_task_failures"].values()) for x in runs),
        "max_pending_activities_seen": max_pending, "pending_activity_limit": PENDING_ACTIVITY_LIMIT,
        "rss_peak_mb": usage["rss_peak_mb"], "cpu_ms_per_delivery": usage["cpu_ms_per_delivery"],
    }


def verdict(f: dict[str, Any]) -> list[str]:
    """What is wrong, empty when the figure holds."""
    wrong = []
    if f["missing"]:
        wrong.append(f"{f['missing']} endpoints never received the event")
    if f["duplicates"]:
        wrong.append(f"{f['duplicates']} duplicate deliveries")
    if f["final_status"] != "COMPLETED":
        wrong.append(f"the workflow ended {f['final_status']} (closed: {f['workflow_closed']})")
    if f["workflow_task_failures"]:
        wrong.append(f"{f['workflow_task_failures']} workflow task failures (a Temporal limit?): "
                     + ", ".join(f"{k} {v}" for x in f["runs"] for k, v in x["workflow_task_failures"].items()))
    return wrong


def print_result(f: dict[str, Any]) -> None:
    print(f"\nfan-out: 1 event → {f['endpoints']} endpoints")
    print(f"  arrived        {f['arrived']}/{f['endpoints']}  missing {f['missing']}  duplicates {f['duplicates']}")
    print(f"  last arrival   {f['time_to_last_arrival_s']} s after the publish call  ({f['deliveries_per_s']} deliveries/s)")
    print(f"  workflow       {f['final_status']}; {f['continue_as_new']} continue-as-new; history lengths "
          + ", ".join(str(x["history_length"]) for x in f["runs"])
          + f"; workflow task failures {f['workflow_task_failures']}")
    print(f"  pending        at most {f['max_pending_activities_seen']} pending activities seen "
          f"(limit {f['pending_activity_limit']})")
    print("  RSS peak MB    " + "  ".join(f"{k} {v}" for k, v in f["rss_peak_mb"].items() if k not in ("driver", "receiver")))
    per = f["cpu_ms_per_delivery"]
    print("  CPU ms/deliv.  " + "  ".join(f"{k} {v}" for k, v in per.items() if v and k != "driver"))
    wrong = verdict(f)
    print("  verdict        " + ("holds: every endpoint once, no limit hit" if not wrong else "MISSES: " + "; ".join(wrong)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=int, default=10_000,
                        help="endpoints of the one application [10000, HOOKLINE_MAX_ENDPOINTS_PER_APP's default]")
    parser.add_argument("--create-concurrency", type=int, default=16, help="endpoint-creation calls in flight [16]")
    parser.add_argument("--wait-seconds", type=float, default=600, help="stop waiting for arrivals after this, s [600]")
    parser.add_argument("--max-seconds", type=float, default=900, help="abort the whole run after this, s [900]")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/fanout-<time>.json")
    parser.add_argument("--env", action="append", default=[], metavar="HOOKLINE_X=VALUE",
                        help="a setting of the API and the workers, e.g. HOOKLINE_FANOUT_WINDOW=20")
    add_stack_arguments(parser)
    args = parser.parse_args()
    if args.endpoints < 1 or args.create_concurrency < 1:
        parser.error("--endpoints and --create-concurrency must be ≥ 1")
    if any(not kv.startswith("HOOKLINE_") or "=" not in kv for kv in args.env):
        parser.error("--env takes HOOKLINE_NAME=VALUE")

    tmp = Path(tempfile.mkdtemp(prefix="hookline-fanout-"))
    children = Children(tmp)
    # Past the default limit (10,000), the API must allow it.
    options = stack_options(args, stack_env={
        "HOOKLINE_MAX_ENDPOINTS_PER_APP": str(max(args.endpoints, 10_000)), **dict(kv.split("=", 1) for kv in args.env)
    })

    interrupt_on_sigterm()
    started = time.time()
    print(f"hookline fan-out bench: 1 event → {args.endpoints} endpoints; store {args.database}, "
          f"{args.workers} workers; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    result, rc = run_stack_bench("fan-out bench", options, tmp, children,
                                 lambda b: fanout(args, b, children), args.max_seconds)
    if result:
        print_result(result)
        rc = rc or (1 if verdict(result) else 0)
        print(f"  wall time {time.time() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")
        if not args.no_save:
            save_result("fanout", started, {"args": vars(args), "result": result})
    return rc


if __name__ == "__main__":
    sys.exit(main())
