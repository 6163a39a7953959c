"""Activity of the recovery schedule: start the fan-out of events whose publish stopped halfway."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client

from core.config import Settings
from store import queries
from store.tables import utcnow
from workflows import dispatch

PAGE = 200


class RecoveryActivities:
    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._client = client
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def dispatch_stragglers(self) -> int:
        """Start the workflow of every event recorded but never dispatched; returns how many.

        Publishing records the event, then starts its workflow, then marks it dispatched. A
        process that dies in between leaves a row with no fan-out. Rows younger than the
        recovery interval are left alone: their publish may still be under way. Starting is
        idempotent by workflow id, so an event whose start did go through is only marked.
        """
        recorded_before = utcnow() - timedelta(seconds=self._settings.dispatch_recovery_s)
        started = 0
        async with self._sessions() as session:
            while events := await queries.undispatched_events(session, recorded_before=recorded_before, limit=PAGE):
                for event in events:
                    await dispatch.start_fan_out(
                        self._client, self._settings, event_id=event.id, app_id=event.app_id, event_type=event.type
                    )
                    await queries.mark_dispatched(session, event=event)
                    started += 1
                    activity.heartbeat(started)
        if started:
            activity.logger.warning("started the fan-out of %d event(s) whose publish stopped halfway", started)
        return started
