import asyncio
import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from hookline.core.metrics import DELIVERIES_BY_STATUS, ENDPOINTS_BY_HEALTH
from hookline.store import health, stats

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

# Scrapes (several Prometheus servers, a dashboard's refresh) within this long share one count.
COUNT_TTL_S = 5.0
_counting = asyncio.Lock()


@router.get("/healthz")
async def healthz() -> dict:
    """Liveness: the API process answers."""
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this API process, and the store's deliveries by status and endpoints by health."""
    await _recount(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _recount(request: Request) -> None:
    """Count deliveries by status, unless a count younger than COUNT_TTL_S stands."""
    loop = asyncio.get_running_loop()
    async with _counting:
        if loop.time() - DELIVERIES_BY_STATUS.counted_at < COUNT_TTL_S:
            return
        try:
            async with request.app.state.sessions() as session:
                DELIVERIES_BY_STATUS.counts = await stats.deliveries_by_status(session)
                for label, count in (await health.count_by_health(session)).items():
                    ENDPOINTS_BY_HEALTH.labels(label).set(count)
        except SQLAlchemyError:
            # The process's own metrics still answer; the gauge keeps its last count.
            log.warning("could not count deliveries and endpoints for /metrics", exc_info=True)
        DELIVERIES_BY_STATUS.counted_at = loop.time()
