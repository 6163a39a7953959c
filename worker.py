"""The worker process: settings → Temporal client + store + HTTP clients → Worker."""

import asyncio
import logging
import signal
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable
from datetime import timedelta
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import (
    FixedSizeSlotSupplier,
    ResourceBasedSlotConfig,
    ResourceBasedSlotSupplier,
    ResourceBasedTunerConfig,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerTuner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from hookline.activities.delivery import DeliveryActivities
from hookline.activities.http import ClientPool
from hookline.activities.bookkeeping import BookkeepingActivities
from hookline.activities.health import HealthActivities
from hookline.activities.recovery import RecoveryActivities
from hookline.activities.sweep import SweepActivities
from hookline.core import telemetry
from hookline.core.config import Settings, get_settings
from hookline.core.logs import configure_logging
from hookline.core.metrics import WORKER_REGISTRY
from hookline.core.temporal import connect_temporal
from hookline.services.endpoint_health import HealthNotifier
from hookline.services.recovery import ensure_recovery_schedule
from hookline.store.db import dispose, make_engine, make_sessionmaker
from hookline.store.schema import ensure_current
from hookline.store.health import ensure_hookline_app
from hookline.workflows.event import EventWorkflow
from hookline.workflows.health import EndpointHealthWorkflow
from hookline.workflows.recovery import DispatchRecoveryWorkflow
from hookline.workflows.sweep import DeliverySweepWorkflow

log = logging.getLogger("hookline.worker")

# Workflow tasks one worker holds at most (the SDK's default), and at least, whatever the CPU.
WORKFLOW_TASK_SLOTS = 100
WORKFLOW_TASK_SLOTS_MIN = 10
# The SDK's advice: workflows' memory is hard to predict, leave a fifth of the machine's free.
TARGET_MEMORY = 0.8


def _loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sdk_metrics_runtime() -> tuple[Runtime, str]:
    """A Temporal runtime whose SDK metrics (slots, pollers, schedule-to-start) are served on a
    loopback port of their own, in Prometheus naming; returns it and the URL to read them at."""
    port = _loopback_port()
    config = PrometheusConfig(
        bind_address=f"127.0.0.1:{port}", counters_total_suffix=True, unit_suffix=True, durations_as_seconds=True
    )
    return Runtime(telemetry=TelemetryConfig(metrics=config)), f"http://127.0.0.1:{port}/metrics"


def metrics_app(sdk_metrics_url: str | None) -> Callable[..., Iterable[bytes]]:
    """The worker's /metrics: Hookline's families, then the Temporal SDK's (their names never overlap)."""

    def app(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
        body = generate_latest(WORKER_REGISTRY)
        if sdk_metrics_url is not None:
            try:
                with urllib.request.urlopen(sdk_metrics_url, timeout=2) as sdk:
                    body += sdk.read()
            except OSError:
                log.warning("the Temporal SDK's metrics did not answer; serving Hookline's only")
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    return app


def worker_tuner(settings: Settings) -> WorkerTuner:
    """How many tasks of each kind one worker takes at once.

    Workflow tasks (an event's first task resolves its endpoints and makes every first try) are
    taken only while the machine's CPU is below HOOKLINE_WORKER_TARGET_CPU. What a busy worker
    does not take waits in Temporal's task queue, where fairness orders it between
    applications; taken, it would wait inside the worker, first come first served, behind the
    flooding application's tasks. A worker that waits on slow receivers uses no CPU and keeps
    taking tasks, up to WORKFLOW_TASK_SLOTS.
    """
    workflows: FixedSizeSlotSupplier | ResourceBasedSlotSupplier = FixedSizeSlotSupplier(WORKFLOW_TASK_SLOTS)
    if settings.worker_target_cpu > 0:
        workflows = ResourceBasedSlotSupplier(
            ResourceBasedSlotConfig(minimum_slots=WORKFLOW_TASK_SLOTS_MIN, maximum_slots=WORKFLOW_TASK_SLOTS),
            ResourceBasedTunerConfig(target_memory_usage=TARGET_MEMORY, target_cpu_usage=settings.worker_target_cpu),
        )
    return WorkerTuner.create_composite(
        workflow_supplier=workflows,
        activity_supplier=FixedSizeSlotSupplier(settings.worker_max_concurrent_activities),
        local_activity_supplier=FixedSizeSlotSupplier(settings.worker_max_concurrent_activities),
        nexus_supplier=FixedSizeSlotSupplier(1),  # no Nexus operations: a slot the SDK insists on
    )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:  # one line per scrape is noise
        pass


def serve_metrics(host: str, port: int, sdk_metrics_url: str | None) -> None:
    server = make_server(host, port, metrics_app(sdk_metrics_url), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    runtime: Runtime | None = None
    if settings.worker_metrics_port is not None:
        runtime, sdk_metrics_url = sdk_metrics_runtime()
        serve_metrics(settings.host, settings.worker_metrics_port, sdk_metrics_url)
    engine = make_engine(settings)
    await ensure_current(engine)  # `hookline migrate` changes the schema, never a worker
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await ensure_hookline_app(session)
    proxy = settings.egress_proxy.get_secret_value() if settings.egress_proxy is not None else None
    http = ClientPool(public_only=not settings.allow_private_targets, proxy=proxy)
    client = await connect_temporal(
        settings, wait_s=120, interceptors=telemetry.temporal_interceptors(), runtime=runtime
    )
    delivery = DeliveryActivities(sessions, http, settings, HealthNotifier(client, sessions, settings))
    health = HealthActivities(client, sessions, settings)
    records = BookkeepingActivities(sessions, settings)
    sweep = SweepActivities(client, sessions, settings)
    recovery = RecoveryActivities(client, sessions, settings)
    try:
        async with Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[EventWorkflow, DeliverySweepWorkflow, DispatchRecoveryWorkflow, EndpointHealthWorkflow],
            workflow_runner=SandboxedWorkflowRunner(
                # The tracing interceptor's spans cross the sandbox (core/telemetry.py).
                restrictions=SandboxRestrictions.default.with_passthrough_modules("opentelemetry")
            ) if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
            activities=[
                delivery.deliver,
                records.resolve_targets,
                records.mark_delivery,
                records.prepare_replay,
                sweep.page_deliveries,
                sweep.signal_page,
                recovery.dispatch_stragglers,
                health.turn_failing,
                health.pick_probe,
                health.recover,
                health.auto_disable,
            ],
            tuner=worker_tuner(settings),
            graceful_shutdown_timeout=timedelta(seconds=settings.delivery_timeout_s + 5),
        ):
            try:
                await ensure_recovery_schedule(client, settings)
            except RPCError:
                # Deliveries do not depend on it; the next worker start tries again.
                log.exception("could not create or update the dispatch recovery schedule")
            log.info("worker polling task queue %r at %s", settings.task_queue, settings.temporal_address)
            await stop.wait()
            log.info("worker stopping")
    finally:
        await http.aclose()
        await dispose(engine)


def main() -> None:
    configure_logging(get_settings().log_format)
    telemetry.setup_tracing("hookline-worker")

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(get_settings(), stop)

    asyncio.run(_main())


if __name__ == "__main__":
    # `python worker.py` is `hookline worker`, with its start-up checks (a key, a current schema).
    from hookline.cli import app

    app(["worker"])
