"""Per-application limits, checked where the resource is created."""

from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.core.config import Settings
from hookline.services.errors import Conflict
from hookline.store.quotas import count_endpoints


async def check_endpoint_quota(session: AsyncSession, *, settings: Settings, app_id: str) -> None:
    """Conflict (409) when the application has `HOOKLINE_MAX_ENDPOINTS_PER_APP` endpoints already.

    Checked before the insert, not under a lock: creates racing at the limit may pass it by as
    many as run at once. It is a guard against runaway scripts, not a billing meter.
    """
    limit = settings.max_endpoints_per_app
    if await count_endpoints(session, app_id=app_id) >= limit:
        raise Conflict(
            f"application {app_id} has {limit} endpoints, the most HOOKLINE_MAX_ENDPOINTS_PER_APP allows; "
            "delete one or raise the limit"
        )
