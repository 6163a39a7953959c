"""Short store reads and writes the event workflow needs; run as local activities."""

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from hookline.core.config import Settings
from hookline.core.messages import (
    DeliveryTarget,
    MarkDeliveryInput,
    PrepareReplayInput,
    ResolveTargetsInput,
    ResolveTargetsResult,
)
from hookline.core.metrics import DEAD_LETTERS, DELIVERIES_REPLAYED
from hookline.core.retry import effective_schedule
from hookline.core.summaries import url_host
from hookline.core.statuses import UNSETTLED_STATUSES, DeliveryStatus, EndpointStatus
from hookline.store import hot_path
from hookline.store.hot_path import FanOutDelivery, FanOutEndpoint
from hookline.store.tables import Delivery, Endpoint


class BookkeepingActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._sessions = sessions
        self._settings = settings

    def _target(self, delivery: Delivery | FanOutDelivery, endpoint: Endpoint | FanOutEndpoint) -> DeliveryTarget:
        return DeliveryTarget(
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            retry=effective_schedule(endpoint.retry, self._settings),
            paused=endpoint.status == EndpointStatus.PAUSED,
            host=url_host(endpoint.url),
        )

    @activity.defn
    async def resolve_targets(self, input: ResolveTargetsInput) -> ResolveTargetsResult:
        """The next page of subscribed endpoints, each with its delivery row (created once)."""
        async with self._sessions() as session:
            event = await hot_path.event_to_fan_out(session, event_id=input.event_id)
            if event is None:  # deleted with its application: nothing to deliver
                return ResolveTargetsResult(targets=[])
            pairs, next_after = await hot_path.ensure_deliveries(
                session, event=event, after_endpoint_id=input.after_endpoint_id, limit=input.limit
            )
            targets = [self._target(d, e) for d, e in pairs if d.status in UNSETTLED_STATUSES]
            return ResolveTargetsResult(targets=targets, next_after=next_after)

    @activity.defn
    async def mark_delivery(self, input: MarkDeliveryInput) -> bool:
        async with self._sessions() as session:
            moved = await hot_path.set_delivery_status(
                session,
                delivery_id=input.delivery_id,
                status=DeliveryStatus(input.status),
                only_from=UNSETTLED_STATUSES,
                error=input.error,
            )
        if moved and input.status == "dead_lettered":  # Temporal stopped retrying its activity
            DEAD_LETTERS.labels("gave_up").inc()
        return moved

    @activity.defn
    async def prepare_replay(self, input: PrepareReplayInput) -> list[DeliveryTarget]:
        async with self._sessions() as session:
            rows = await hot_path.restart_deliveries(
                session,
                event_id=input.event_id,
                delivery_ids=input.delivery_ids,
                endpoint_id=input.endpoint_id,
                after_delivery_id=input.after_delivery_id,
                limit=input.limit,
            )
            DELIVERIES_REPLAYED.inc(len(rows))
            return [self._target(d, e) for d, e in rows]
