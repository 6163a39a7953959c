"""How the delivery activity reaches beyond the store about endpoint health: start an endpoint's
health watch (workflows/health.py) and publish operational events.

The worker hands a `HealthNotifier` to the delivery activity (worker.py), rather than the activity
importing this module, which imports the workflows that import the activity.
"""

import logging

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from hookline.core.config import Settings
from hookline.core.messages import EndpointHealthInput
from hookline.core.operational import health_workflow_id
from hookline.services import operational
from hookline.workflows.health import EndpointHealthWorkflow

log = logging.getLogger("hookline.health")


async def watch(client: Client, settings: Settings, *, endpoint_id: str) -> None:
    """Start the endpoint's watch unless one runs: it turns the endpoint failing, probes, and ends
    with a recovery or a disable. Starting it again later (a new run of failures) is allowed."""
    await client.start_workflow(
        EndpointHealthWorkflow.run,
        EndpointHealthInput(
            endpoint_id=endpoint_id,
            probe_s=settings.breaker_probe_s,
            auto_disable_after_s=settings.auto_disable_after_s,
            delivery_timeout_s=settings.delivery_timeout_s,
        ),
        id=health_workflow_id(endpoint_id),
        task_queue=settings.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


class HealthNotifier:
    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._client = client
        self._sessions = sessions
        self._settings = settings

    async def watch(self, endpoint_id: str) -> None:
        """Best effort: if Temporal cannot be reached, the endpoint's next failed attempt asks again."""
        try:
            await watch(self._client, self._settings, endpoint_id=endpoint_id)
        except Exception:
            log.warning("could not start the health watch of endpoint %s", endpoint_id, exc_info=True)

    async def announce(self, *, type: str, app_id: str, data: dict, key: str) -> None:
        async with self._sessions() as session:
            await operational.announce(
                session=session, client=self._client, settings=self._settings, type=type, app_id=app_id, data=data,
                key=key,
            )

    async def announce_dead_letter(
        self, *, app_id: str, endpoint_id: str, event_id: str, delivery_id: str, attempts: int
    ) -> None:
        async with self._sessions() as session:
            await operational.announce_dead_letter(
                session=session, client=self._client, settings=self._settings, app_id=app_id,
                endpoint_id=endpoint_id, event_id=event_id, delivery_id=delivery_id, attempts=attempts,
            )
