"""Activities of an endpoint's health watch (workflows/health.py): the breaker's transitions, each
announced as an operational event, and the choice of the delivery a probe sends.

Each is safe to retry: the transition is a conditional UPDATE that one caller wins, and the
announcement and the sweep after it are keyed on the endpoint and its `failing_since`.
"""

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.client import Client

from hookline.core.config import Settings
from hookline.core.messages import HealthChange, ProbeTarget
from hookline.core.metrics import BREAKER_TRANSITIONS
from hookline.core.operational import ENDPOINT_DISABLED, ENDPOINT_FAILING, ENDPOINT_RECOVERED, FAILING, HEALTHY
from hookline.core.retry import effective_schedule
from hookline.services import controls, operational
from hookline.store import health
from hookline.store.tables import Endpoint


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "-"


class HealthActivities:
    def __init__(self, client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings):
        self._client = client
        self._sessions = sessions
        self._settings = settings

    async def _announce(self, session: AsyncSession, type: str, app_id: str, change: HealthChange, reason: str) -> None:
        await operational.announce(
            session=session, client=self._client, settings=self._settings, type=type, app_id=app_id,
            data={"endpoint_id": change.endpoint_id, "reason": reason},
            key=f"{change.endpoint_id}:{_iso(change.failing_since)}",
        )

    @activity.defn
    async def turn_failing(self, input: HealthChange) -> HealthChange:
        """Open the breaker if the count reached the threshold; the result carries `failing_since`
        while the endpoint is failing (also when it already was), None otherwise."""
        async with self._sessions() as session:
            won = await health.turn_failing(
                session, endpoint_id=input.endpoint_id, threshold=self._settings.breaker_failures
            )
            state = await health.read_health(session, endpoint_id=input.endpoint_id)
            if state is None or state.health != FAILING or state.status == "disabled":
                return HealthChange(endpoint_id=input.endpoint_id)
            change = HealthChange(endpoint_id=input.endpoint_id, failing_since=state.failing_since)
            if won:
                BREAKER_TRANSITIONS.labels(FAILING).inc()
            reason = f"{state.consecutive_failures} failed attempts in a row"
            await self._announce(session, ENDPOINT_FAILING, state.app_id, change, reason)
            return change

    @activity.defn
    async def pick_probe(self, input: HealthChange) -> ProbeTarget:
        async with self._sessions() as session:
            endpoint = await session.get(Endpoint, input.endpoint_id)
            if endpoint is not None and endpoint.status == "disabled":
                # Disabled otherwise (a probe met 410 Gone, or an operator): what the breaker held closes.
                await controls.close_deliveries(self._client, self._settings, input.endpoint_id)
                return ProbeTarget(over=True)
            if endpoint is None or endpoint.health != FAILING:
                return ProbeTarget(over=True)
            if endpoint.status == "paused":  # the operator holds it: no probe until resumed
                return ProbeTarget()
            retry = effective_schedule(endpoint.retry, self._settings)
            delivery_id = await health.probe_candidate(session, endpoint_id=input.endpoint_id)
            return ProbeTarget(delivery_id=delivery_id, retry=retry)

    @activity.defn
    async def recover(self, input: HealthChange) -> None:
        """Close the breaker after a probe got through, announce it, release what it held."""
        async with self._sessions() as session:
            if await health.turn_healthy(session, endpoint_id=input.endpoint_id):
                BREAKER_TRANSITIONS.labels(HEALTHY).inc()
            state = await health.read_health(session, endpoint_id=input.endpoint_id)
            if state is None or state.health != HEALTHY:
                return  # deleted, or failing again already: a new watch has it
            await self._announce(session, ENDPOINT_RECOVERED, state.app_id, input, "a probe delivery succeeded")
        await controls.release_held(self._client, self._settings, input.endpoint_id)

    @activity.defn
    async def auto_disable(self, input: HealthChange) -> None:
        """Failing for HOOKLINE_AUTO_DISABLE_AFTER_S: disable, announce, dead-letter what is open."""
        reason = (
            f"auto-disabled: failing since {_iso(input.failing_since)}, "
            f"no probe succeeded in {self._settings.auto_disable_after_s:g}s"
        )
        async with self._sessions() as session:
            if await health.disable_failing(session, endpoint_id=input.endpoint_id, reason=reason):
                BREAKER_TRANSITIONS.labels("disabled").inc()
            state = await health.read_health(session, endpoint_id=input.endpoint_id)
            if state is None or state.disabled_reason != reason:
                return  # deleted, or disabled by an operator meanwhile: theirs to announce
            await self._announce(session, ENDPOINT_DISABLED, state.app_id, input, reason)
        await controls.close_deliveries(self._client, self._settings, input.endpoint_id)
