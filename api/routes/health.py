import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from hookline.api.deps import SessionDep
from hookline.core.metrics import ENDPOINTS_BY_HEALTH
from hookline.store import health

log = logging.getLogger("hookline.api.metrics")

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """Liveness: the API process answers."""
    return {"status": "ok"}


@router.get("/metrics", response_class=Response)
async def metrics(session: SessionDep) -> Response:
    """Prometheus metrics of this API process, and of the store's endpoints by health."""
    try:
        counts = await health.count_by_health(session)
    except SQLAlchemyError:
        # The process's own figures still matter while the store is away; a stale count would mislead.
        log.warning("could not count endpoints by health for /metrics", exc_info=True)
        ENDPOINTS_BY_HEALTH.clear()
    else:
        for label, count in counts.items():
            ENDPOINTS_BY_HEALTH.labels(label).set(count)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
