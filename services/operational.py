"""Operational events: what Hookline tells operators about itself, published to `app_hookline`.

They go through the normal publish (recorded, signed and delivered like every event), each with an
idempotency key derived from the fact it reports, so a retried activity publishes it once.
"""

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core.config import Settings
from hookline.core.operational import DELIVERY_DEAD_LETTERED, HOOKLINE_APP_ID
from hookline.services.publishing import publish_event
from hookline.store import health


async def announce(
    *, session: AsyncSession, client: Client, settings: Settings, type: str, app_id: str, data: dict, key: str
) -> None:
    """Publish `type` about something of `app_id` (`data` besides `app_id`), once for `key`.

    Nothing is published about app_hookline's own endpoints (a failing subscriber would report on
    itself without end), nor while no endpoint of app_hookline subscribes to the type: a dead
    endpoint's flood of dead letters must not cost an event and a workflow each for nobody.
    """
    if app_id == HOOKLINE_APP_ID or not await health.has_subscriber(session, event_type=type):
        return
    await publish_event(
        session=session, client=client, settings=settings, app_id=HOOKLINE_APP_ID, type=type,
        data={"app_id": app_id, **data}, idempotency_key=f"{type}:{key}",
    )


async def announce_dead_letter(
    *, session: AsyncSession, client: Client, settings: Settings, app_id: str, endpoint_id: str, event_id: str,
    delivery_id: str, attempts: int,
) -> None:
    """`delivery.dead_lettered`; keyed on the delivery's attempt count, so a replayed delivery that
    dead-letters again after new attempts is announced again."""
    await announce(
        session=session, client=client, settings=settings, type=DELIVERY_DEAD_LETTERED, app_id=app_id,
        data={"endpoint_id": endpoint_id, "event_id": event_id, "delivery_id": delivery_id},
        key=f"{delivery_id}:{attempts}",
    )
