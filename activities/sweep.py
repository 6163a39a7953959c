"""Activities of the sweep workflow: page through deliveries, signal their event workflows."""

import asyncio
from itertools import groupby

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client

from hookline.core.config import Settings
from hookline.core.messages import DeliveryPage, DeliveryPageInput, DeliveryRef, ReplayRequest, SignalPageInput
from hookline.store import crud, hot_path
from hookline.services import event_workflow_client

SIGNAL_CONCURRENCY = 16


class SweepActivities:
    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._client = client
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def page_deliveries(self, input: DeliveryPageInput) -> DeliveryPage:
        clauses = crud.delivery_filter(
            app_id=input.app_id,
            endpoint_id=input.endpoint_id,
            statuses=input.statuses,
            since=input.since,
            up_to_delivery_id=input.up_to_delivery_id,
        )
        async with self._sessions() as session:
            rows = await hot_path.delivery_refs_page(
                session, clauses=clauses, after_delivery_id=input.after_delivery_id, limit=input.limit
            )
        refs = [
            DeliveryRef(delivery_id=d.id, event_id=d.event_id, app_id=d.app_id, event_type=e.type) for d, e in rows
        ]
        return DeliveryPage(deliveries=refs, next_after=refs[-1].delivery_id if len(refs) == input.limit else None)

    @activity.defn
    async def signal_page(self, input: SignalPageInput) -> None:
        """Signal each event workflow once, however many of its deliveries are on the page."""
        by_event = [
            list(group)
            for _, group in groupby(sorted(input.deliveries, key=lambda d: d.event_id), key=lambda d: d.event_id)
        ]
        gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)

        async def reach(refs: list[DeliveryRef]) -> None:
            async with gate:
                await self._reach(input, refs)
                activity.heartbeat()

        await asyncio.gather(*(reach(refs) for refs in by_event))

    async def _reach(self, input: SignalPageInput, refs: list[DeliveryRef]) -> None:
        first = refs[0]
        if input.operation != "replay":
            assert input.endpoint_id is not None
            running = await event_workflow_client.signal_endpoint(
                self._client, event_id=first.event_id, endpoint_id=input.endpoint_id, change=input.operation
            )
            if running or input.operation != "resume":
                return
            # A held delivery whose workflow is gone (terminated by hand): start it again.
        await event_workflow_client.replay(
            self._client,
            self._settings,
            event_id=first.event_id,
            app_id=first.app_id,
            event_type=first.event_type,
            request=ReplayRequest(
                request_id=f"{input.request_id}:{first.event_id}", delivery_ids=[r.delivery_id for r in refs]
            ),
        )
