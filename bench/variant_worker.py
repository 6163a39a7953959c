"""Hookline's worker with bench-only tweaks, to measure a product change before making it.

    python bench/variant_worker.py TWEAK [TWEAK ...]      (bench/run.py --worker-variant a,b)

It runs `worker.main()` unchanged except for what the tweaks patch in this process only:

  nosandbox    Worker(workflow_runner=UnsandboxedWorkflowRunner()): now the product's default,
               so a no-op unless HOOKLINE_WORKFLOW_SANDBOX=true
  passthrough  the sandbox with every module passed through (no re-import per workflow run);
               measured no better than the sandbox
  autoscale    autoscaling workflow and activity task pollers
  quiet-httpx  the `httpx` logger at WARNING (no INFO line per delivery)
  wftN         a fixed N workflow task slots instead of the product's by-CPU ones, e.g. wft8
               (the by-CPU target itself: --worker-env HOOKLINE_WORKER_TARGET_CPU=0.8)
  pollsN       N workflow task pollers, half of them on the shared (not sticky) queue, e.g. polls8
  nosa         no upsert of the HooklineEndpointIds search attribute (measures its cost only)

Nothing here is used by Hookline itself; product files are not touched. (The former `onequery`
and `bulkresolve` tweaks are now in the product: store.hot_path.load_for_delivery and
store.hot_path.ensure_deliveries.)
"""

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TWEAKS = {"nosandbox", "passthrough", "autoscale", "quiet-httpx", "nosa"}


def apply(tweaks: list[str]) -> None:
    unknown = {t for t in tweaks if not t.startswith(("wft", "polls"))} - TWEAKS
    if unknown:
        raise SystemExit(f"unknown tweaks {sorted(unknown)}; known: {sorted(TWEAKS)}")
    import temporalio.worker

    from hookline import worker as worker_module

    extra: dict = {}
    if "nosandbox" in tweaks:
        extra["workflow_runner"] = temporalio.worker.UnsandboxedWorkflowRunner()
    if "passthrough" in tweaks:
        from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

        extra["workflow_runner"] = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        )
    for tweak in tweaks:
        if tweak.startswith("wft"):
            # worker.worker_tuner's fixed branch, at N instead of its WORKFLOW_TASK_SLOTS.
            os.environ["HOOKLINE_WORKER_TARGET_CPU"] = "0"
            worker_module.WORKFLOW_TASK_SLOTS = int(tweak[3:])
        if tweak.startswith("polls"):
            extra["max_concurrent_workflow_task_polls"] = int(tweak[5:])
            extra["nonsticky_to_sticky_poll_ratio"] = 1.0
    if "autoscale" in tweaks:
        extra["workflow_task_poller_behavior"] = temporalio.worker.PollerBehaviorAutoscaling()
        extra["activity_task_poller_behavior"] = temporalio.worker.PollerBehaviorAutoscaling()
    if extra:
        real = temporalio.worker.Worker

        def patched(*args, **kwargs):  # type: ignore[no-untyped-def]
            return real(*args, **{**kwargs, **extra})

        worker_module.Worker = patched  # type: ignore[assignment]
    if "quiet-httpx" in tweaks:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    if "nosa" in tweaks:
        import temporalio.workflow

        temporalio.workflow.upsert_search_attributes = lambda *_a, **_k: None  # type: ignore[assignment]


if __name__ == "__main__":
    apply([t for t in sys.argv[1:] if t])
    from hookline import worker as worker_module

    worker_module.main()
