"""The worker process: settings → Temporal client + store + HTTP clients → Worker."""

import asyncio
import logging
import signal
from datetime import timedelta

from prometheus_client import start_http_server
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from hookline.activities.delivery import DeliveryActivities
from hookline.activities.http import ClientPool
from hookline.activities.bookkeeping import BookkeepingActivities
from hookline.activities.health import HealthActivities
from hookline.activities.recovery import RecoveryActivities
from hookline.activities.sweep import SweepActivities
from hookline.core.config import Settings, get_settings
from hookline.core.metrics import WORKER_REGISTRY
from hookline.core.temporal import connect_temporal
from hookline.services.endpoint_health import HealthNotifier
from hookline.services.recovery import ensure_recovery_schedule
from hookline.store.db import create_schema, dispose, make_engine, make_sessionmaker
from hookline.store.health import ensure_hookline_app
from hookline.workflows.event import EventWorkflow
from hookline.workflows.health import EndpointHealthWorkflow
from hookline.workflows.recovery import DispatchRecoveryWorkflow
from hookline.workflows.sweep import DeliverySweepWorkflow

log = logging.getLogger("hookline.worker")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port, addr=settings.host, registry=WORKER_REGISTRY)
    engine = make_engine(settings)
    await create_schema(engine)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        await ensure_hookline_app(session)
    http = ClientPool(public_only=not settings.allow_private_targets)
    client = await connect_temporal(settings, wait_s=120)
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
            workflow_runner=SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner(),
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
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            max_concurrent_local_activities=settings.worker_max_concurrent_activities,
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request with its URL at INFO; endpoint URLs often carry credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(get_settings(), stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
