"""A soak: a steady publish rate for minutes, the memory of every process sampled. Does any grow?

    python bench/soak.py                                   # 20 events/s for 10 minutes (≈ 12 min)
    python bench/soak.py --rate 5 --minutes 1 --warm-up-minutes 0.3 --sample-every 5   # a quick try

Starts the stack as bench/run.py does (Temporal dev server, API, `--workers N` workers, the
receiver; no ceiling; `--database postgres` for a throwaway PostgreSQL store), creates one
application with `--endpoints` endpoints, then publishes `--rate` events/s on a fixed schedule
(each publish on its own task, at most `--in-flight` at once) for `--minutes`. Every
`--sample-every` seconds it prints a line: the VmRSS of the Temporal server, the API and every
worker (and PostgreSQL, summed over its processes), and how many events were published and
delivered so far (a growing gap means Hookline is not keeping up with the rate, which by itself
grows memory).

The verdict takes the samples after the warm-up (`--warm-up-minutes`, default 2) up to the end
of publishing: a process is flat when every one of them is within ±10 % (`--tolerance`) of its
first; otherwise it names the process, its growth and slope (MB/min). After publishing it waits
(at most `--drain-seconds`) for every delivery and reports missing and duplicate ones. Every
process is stopped by PID at the end; a JSON result is written under bench/results/. Not part
of the test suite.
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
    Bench, Children, add_stack_arguments, group_sample, interrupt_on_sigterm, proc_sample, run_stack_bench, save_result,
    stack_options,
)

WATCHED = ("temporal", "api", "worker", "postgres")  # worker2, worker3 … start with "worker"


def watched(children: Children) -> dict[str, tuple[int, bool]]:
    """name → (PID, is a process group) of what the verdict is about."""
    pids = {c.name: (c.pid, False) for c in children.all if c.name.startswith(WATCHED)}
    pids.update({name: (pid, True) for name, pid in children.groups.items()})
    return pids


def rss_mb(pid: int, group: bool) -> float | None:
    got = group_sample(pid) if group else proc_sample(pid)
    return round(got[0] / 1024, 1) if got else None


async def soak(args: argparse.Namespace, b: Bench, children: Children) -> dict[str, Any]:
    b.start_stack()
    await b.setup()
    app_id = await b._create_app("soak", [f"/s/{k}" for k in range(args.endpoints)])
    await b.scenario("warm", "hookline", 5, args.endpoints, 0, app_id)  # imports, connections, caches
    await b._receiver_arrivals()

    procs = watched(children)
    published: set[str] = set()
    errors: list[str] = []
    seen: Counter[tuple[str, str]] = Counter()
    samples: list[dict[str, Any]] = []
    slots = asyncio.Semaphore(args.in_flight)
    late = 0
    start = time.monotonic()
    ends = start + args.minutes * 60

    async def publish(i: int) -> None:
        try:
            r = await b.http.post(f"/v1/apps/{app_id}/events",
                                  json={"type": "bench.soak", "data": {"n": i, "run": b.run_tag, "note": "x" * 200}})
            if r.status_code == 202:
                published.add(r.json()["id"])
            else:
                errors.append(f"publish {i}: HTTP {r.status_code} {r.text[:200]}")
        except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
            errors.append(f"publish {i}: {type(exc).__name__}: {exc}")
        finally:
            slots.release()

    async def publisher() -> None:
        nonlocal late
        tasks = set()
        i = 0
        while (due := start + i / args.rate) < ends:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if slots.locked():
                late += 1  # the API is slower than the rate: this one waits for a slot
            await slots.acquire()
            task = asyncio.create_task(publish(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks)

    async def fetch() -> None:
        for event_id, path, _at in await b._receiver_arrivals():
            seen[(event_id, path)] += 1

    def sample(phase: str) -> None:
        t = time.monotonic() - start
        row = {"t_s": round(t, 1), "phase": phase, "published": len(published),
               "delivered": len(seen), "rss_mb": {name: rss_mb(pid, group) for name, (pid, group) in procs.items()}}
        samples.append(row)
        print(f"  {row['t_s']:7.1f} s  {phase:<8} published {row['published']:6d}  delivered {row['delivered']:7d}  "
              + "  ".join(f"{k} {v}" for k, v in row["rss_mb"].items()), flush=True)

    pub = asyncio.create_task(publisher())
    sample("start")
    next_sample = start + args.sample_every
    while not pub.done():
        children.check()
        await fetch()
        if time.monotonic() >= next_sample:
            sample("warm-up" if time.monotonic() - start < args.warm_up_minutes * 60 else "steady")
            next_sample += args.sample_every
        await asyncio.sleep(0.5)
    await pub
    sample("steady")
    drain_ends = time.monotonic() + args.drain_seconds
    expected = len(published) * args.endpoints
    while len(seen) < expected and time.monotonic() < drain_ends:
        await fetch()
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)
    await fetch()
    sample("drained")
    delivered_ids = {event_id for event_id, _ in seen}
    return {
        "rate": args.rate, "minutes": args.minutes, "endpoints": args.endpoints,
        "published": len(published), "publish_errors": len(errors), "errors": errors[:10], "late_publishes": late,
        "deliveries_expected": expected, "delivered": len(seen),
        "missing": expected - len([k for k in seen if k[0] in published]),
        "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "foreign": len(delivered_ids - published),
        "samples": samples, "verdict": verdict(samples, args.tolerance),
    }


def slope_mb_per_min(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return round(60 * sum((t - mt) * (v - mv) for t, v in points) / var, 2) if var else None


def verdict(samples: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Per process: flat, or how it moved, over the steady samples (after warm-up, while publishing)."""
    steady = [s for s in samples if s["phase"] == "steady"]
    out: dict[str, Any] = {}
    if len(steady) < 2:
        return {"error": "fewer than two samples after the warm-up: run longer or sample more often"}
    for name in steady[0]["rss_mb"]:
        points = [(s["t_s"], s["rss_mb"][name]) for s in steady if s["rss_mb"].get(name) is not None]
        if len(points) < 2:
            continue
        first, last = points[0][1], points[-1][1]
        values = [v for _, v in points]
        flat = all(abs(v - first) <= tolerance * first for v in values)
        out[name] = {
            "flat": flat, "first_mb": first, "last_mb": last, "min_mb": min(values), "max_mb": max(values),
            "growth_percent": round(100 * (last - first) / first, 1) if first else None,
            "slope_mb_per_min": slope_mb_per_min(points),
        }
    return out


def print_result(f: dict[str, Any], tolerance: float) -> None:
    print(f"\nsoak: {f['rate']} events/s × {f['endpoints']} endpoint(s) for {f['minutes']} min")
    print(f"  published {f['published']} (errors {f['publish_errors']}, {f['late_publishes']} waited for a slot);"
          f" delivered {f['delivered']}/{f['deliveries_expected']}, missing {f['missing']}, duplicates {f['duplicates']}")
    for err in f["errors"][:3]:
        print(f"  ! {err}")
    v = f["verdict"]
    if "error" in v:
        print(f"  verdict: {v['error']}")
        return
    for name, x in v.items():
        state = "flat" if x["flat"] else "NOT FLAT"
        print(f"  {name:<9} {state:<9} {x['first_mb']} → {x['last_mb']} MB ({x['growth_percent']:+} %;"
              f" min {x['min_mb']}, max {x['max_mb']}; slope {x['slope_mb_per_min']} MB/min)")
    grew = [name for name, x in v.items() if not x["flat"]]
    print("  verdict: " + (f"flat within ±{tolerance:.0%} after the warm-up" if not grew
                            else "outside ±{:.0%}: {}".format(tolerance, ", ".join(grew))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20, help="events published per second [20]")
    parser.add_argument("--minutes", type=float, default=10, help="how long to publish [10]")
    parser.add_argument("--warm-up-minutes", type=float, default=2, help="samples before this are not judged [2]")
    parser.add_argument("--sample-every", type=float, default=10, help="seconds between RSS samples [10]")
    parser.add_argument("--tolerance", type=float, default=0.10, help="flat = within this fraction of the first steady sample [0.10]")
    parser.add_argument("--endpoints", type=int, default=1, help="endpoints of the application (deliveries per event) [1]")
    parser.add_argument("--in-flight", type=int, default=64, help="publish calls in flight at most [64]")
    parser.add_argument("--drain-seconds", type=float, default=120, help="after publishing, wait this long at most for the deliveries [120]")
    parser.add_argument("--max-seconds", type=float, help="abort the whole run after this, s [minutes × 60 + drain + 180]")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/soak-<time>.json")
    add_stack_arguments(parser)
    args = parser.parse_args()
    if not (0 < args.rate <= 1000) or args.minutes <= 0 or args.sample_every <= 0 or not (1 <= args.endpoints <= 100):
        parser.error("--rate in (0, 1000], --minutes and --sample-every > 0, --endpoints in 1..100")
    if not 0 <= args.warm_up_minutes < args.minutes:
        parser.error("--warm-up-minutes must be shorter than --minutes")
    max_seconds = args.max_seconds or args.minutes * 60 + args.drain_seconds + 180

    tmp = Path(tempfile.mkdtemp(prefix="hookline-soak-"))
    children = Children(tmp)

    interrupt_on_sigterm()
    started = time.time()
    print(f"hookline soak: {args.rate} events/s for {args.minutes} min (warm-up {args.warm_up_minutes} min); store "
          f"{args.database}, {args.workers} workers; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    result, rc = run_stack_bench("soak", stack_options(args), tmp, children,
                                 lambda b: soak(args, b, children), max_seconds)
    if result:
        print_result(result, args.tolerance)
        v = result["verdict"]
        if result["missing"] or result["duplicates"] or "error" in v or any(not x["flat"] for x in v.values()):
            rc = rc or 1
        print(f"  wall time {time.time() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")
        if not args.no_save:
            save_result("soak", started, {"args": vars(args), "result": result})
    return rc


if __name__ == "__main__":
    sys.exit(main())
