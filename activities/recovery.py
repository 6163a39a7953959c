"""Activity of the recovery schedule: start the fan-out of events whose publish stopped halfway."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from hookline.core.config import Settings
from hookline.store import hot_path
from hookline.store.tables import utcnow
from hookline.services import event_workflow_client

PAGE = 200
# A publish records the event, then waits up to 5 s for Temporal to start its workflow (longer
# under load), and the workflow marks it dispatched when it resolves its first page. Only events
# well past that are stragglers; younger ones may still be under way. (Under a backlog longer
# than this, events whose workflow did start are found too: starting them again is a no-op.)
STRAGGLER_AGE = timedelta(minutes=2)


class RecoveryActivities:
    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._client = client
        self._sessions = sessions
        self._settings = settings

    @activity.defn
    async def dispatch_stragglers(self) -> int:
        """Start the workflow of every event recorded but never dispatched; returns how many.

        Publishing records the event, then starts its workflow, which marks it dispatched. A
        process that dies in between leaves a row with no fan-out. Starting is idempotent by
        workflow id, so an event whose start did go through is only marked. An event Temporal
        refuses is logged and left for the next run; it does not hold up the others.
        """
        recorded_before = utcnow() - STRAGGLER_AGE
        started = refused = 0
        after: str | None = None
        async with self._sessions() as session:
            while events := await hot_path.undispatched_events(
                session, recorded_before=recorded_before, after_event_id=after, limit=PAGE
            ):
                for event in events:
                    after = event.id
                    try:
                        await event_workflow_client.start_fan_out(
                            self._client, self._settings, event_id=event.id, app_id=event.app_id, event_type=event.type
                        )
                    except RPCError as exc:
                        refused += 1
                        activity.logger.warning("could not start the fan-out of %s: %s", event.id, exc)
                        continue
                    await hot_path.mark_dispatched(session, event=event)
                    started += 1
                    activity.heartbeat(after)
        if started or refused:
            activity.logger.warning(
                "fan-outs a publisher left unstarted: %d started, %d refused (tried again next run)", started, refused
            )
        return started
