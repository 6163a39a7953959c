"""Hookline's worker with bench-only tweaks, to measure a product change before making it.

    python bench/variant_worker.py TWEAK [TWEAK ...]      (bench/run.py --worker-variant a,b)

It runs `worker.main()` unchanged except for what the tweaks patch in this process only:

  nosandbox    Worker(workflow_runner=UnsandboxedWorkflowRunner())
  autoscale    autoscaling workflow and activity task pollers
  quiet-httpx  the `httpx` logger at WARNING (no INFO line per delivery)
  onequery     the deliver activity loads delivery, endpoint and event in one SELECT
  nosa         no upsert of the HooklineEndpointIds search attribute (measures its cost only)
  bulkresolve  resolve_targets reads the page's existing deliveries in one SELECT and inserts the
               missing ones in one flush (was a SELECT + INSERT round trip per endpoint, all
               inside the write transaction)

Nothing here is used by Hookline itself; product files are not touched.
"""

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TWEAKS = {"nosandbox", "autoscale", "quiet-httpx", "onequery", "nosa", "bulkresolve"}


def apply(tweaks: list[str]) -> None:
    unknown = set(tweaks) - TWEAKS
    if unknown:
        raise SystemExit(f"unknown tweaks {sorted(unknown)}; known: {sorted(TWEAKS)}")
    import temporalio.worker

    import worker as worker_module

    extra: dict = {}
    if "nosandbox" in tweaks:
        extra["workflow_runner"] = temporalio.worker.UnsandboxedWorkflowRunner()
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
    if "onequery" in tweaks:
        _patch_onequery()
    if "bulkresolve" in tweaks:
        _patch_bulkresolve()


def _patch_bulkresolve() -> None:
    from sqlmodel import col, select

    from core.event_types import subscribed
    from core.ids import new_id
    from store import queries
    from store.tables import Delivery, Endpoint, utcnow

    async def ensure_deliveries(session, *, event, after_endpoint_id, limit, scan=2000):  # type: ignore[no-untyped-def]
        found: list = []
        after = after_endpoint_id
        scanned = 0
        while len(found) < limit and scanned < scan:  # the same paging as store.queries.ensure_deliveries
            stmt = select(Endpoint).where(Endpoint.app_id == event.app_id, Endpoint.status != "disabled")
            if after:
                stmt = stmt.where(Endpoint.id > after)
            batch = (await session.exec(stmt.order_by(col(Endpoint.id)).limit(limit))).all()
            if not batch:
                after = None
                break
            scanned += len(batch)
            for endpoint in batch:
                after = endpoint.id
                if subscribed(endpoint.event_types, event.type):
                    found.append(endpoint)
                if len(found) >= limit:
                    break
            if len(batch) < limit and len(found) < limit:
                after = None
                break
        existing = {}
        if found:
            stmt = select(Delivery).where(
                Delivery.event_id == event.id, col(Delivery.endpoint_id).in_([ep.id for ep in found])
            )
            existing = {d.endpoint_id: d for d in (await session.exec(stmt)).all()}
        now = utcnow()
        fresh = []
        for ep in found:
            if ep.id not in existing:
                d = Delivery(
                    id=new_id("dlv"), app_id=event.app_id, event_id=event.id, endpoint_id=ep.id,
                    status="paused" if ep.status == "paused" else "pending",
                    workflow_id=event.workflow_id, created_at=now, updated_at=now,
                )
                existing[ep.id] = d
                fresh.append(d)
        session.add_all(fresh)
        await session.commit()  # one flush: the INSERTs go as one executemany
        return [(existing[ep.id], ep) for ep in found], after

    queries.ensure_deliveries = ensure_deliveries


def _patch_onequery() -> None:
    """deliver() with one SELECT … JOIN for the delivery, its endpoint and its event (was three gets)."""
    from sqlmodel import col, select
    from temporalio import activity
    from temporalio.exceptions import ApplicationError

    from activities import delivery as mod
    from core.messages import DeliverInput, DeliverResult
    from store.tables import Delivery, Endpoint, Event

    original = mod.DeliveryActivities.deliver

    @activity.defn(name="deliver")
    async def deliver(self, input: DeliverInput) -> DeliverResult:  # type: ignore[no-untyped-def]
        async with self._sessions() as session:
            stmt = (
                select(Delivery, Endpoint, Event)
                .join(Endpoint, col(Endpoint.id) == col(Delivery.endpoint_id))
                .join(Event, col(Event.id) == col(Delivery.event_id))
                .where(Delivery.id == input.delivery_id)
            )
            row = (await session.exec(stmt)).first()
            if row is None:  # missing delivery, endpoint or event: the original path decides
                return await original.__wrapped__(self, input) if hasattr(original, "__wrapped__") else await original(self, input)
            delivery, endpoint, event = row
            if delivery.status == "succeeded":
                return DeliverResult(status_code=delivery.last_status_code or 200)
            if delivery.status == "dead_lettered":
                raise ApplicationError(delivery.last_error or "dead-lettered", type=mod.DEAD_LETTERED, non_retryable=True)
            if endpoint.status == "paused":
                raise ApplicationError("endpoint is paused", type=mod.ENDPOINT_PAUSED, non_retryable=True)
            if endpoint.status == "disabled":
                await self._close(session, delivery, "endpoint is disabled")
            if not self._settings.allow_private_targets and await mod.resolves_to_private(endpoint.url):
                await self._close(session, delivery, "endpoint resolves to a private address")
            await self._attempt(session, delivery, endpoint, event, input)
            return DeliverResult(status_code=delivery.last_status_code or 200)

    mod.DeliveryActivities.deliver = deliver  # type: ignore[method-assign]


if __name__ == "__main__":
    apply([t for t in sys.argv[1:] if t])
    import worker as worker_module

    worker_module.main()
