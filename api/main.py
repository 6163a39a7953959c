"""The FastAPI application: routers, error shapes, and the resources it holds for its lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from hookline.api.audit import AuditTrail
from hookline.api.auth import Gatekeeper
from hookline.api.deps import require_credential
from hookline.api.errors import PUBLIC_RESPONSES, V1_RESPONSES, install_error_handlers
from hookline.api.limits import BodySizeLimit
from hookline.api.middleware import known_query_only, refuse_nul
from hookline.api.routes import api_keys, apps, deliveries, endpoints, event_types, events, health, portal
from hookline.api.routes import audit as audit_log
from hookline.core import telemetry
from hookline.core.config import Settings, get_settings
from hookline.core.temporal import connect_temporal
from hookline.core.version import VERSION
from hookline.store.db import dispose, make_engine, make_sessionmaker
from hookline.store.schema import ensure_current
from hookline.store.health import ensure_hookline_app


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        await ensure_current(engine)  # `hookline migrate` changes the schema, never the API
        app.state.settings = settings
        app.state.sessions = make_sessionmaker(engine)
        async with app.state.sessions() as session:
            await ensure_hookline_app(session)
        # Lazy: the API starts and answers while Temporal is away, and reconnects when it is back.
        app.state.temporal = await connect_temporal(settings, lazy=True, interceptors=telemetry.temporal_interceptors())
        try:
            yield
        finally:
            await dispose(engine)

    app = FastAPI(
        title="Hookline",
        version=VERSION,
        description="Durable webhook delivery on Temporal.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    app.middleware("http")(refuse_nul)

    app.middleware("http")(Gatekeeper(app, settings).middleware)  # authenticates before the body is parsed

    install_error_handlers(app)

    protected = [Depends(require_credential)]
    for module in (apps, event_types, endpoints, events, deliveries, api_keys, portal):
        app.include_router(module.router, dependencies=[*protected, Depends(known_query_only)], responses=V1_RESPONSES)
    app.include_router(health.router, dependencies=[Depends(known_query_only)], responses=PUBLIC_RESPONSES)
    app.include_router(portal.pages, dependencies=[Depends(known_query_only)])
    app.include_router(audit_log.router, dependencies=[*protected, Depends(known_query_only)], responses=V1_RESPONSES)
    # Added last, so outermost: it logs every answer and audits each change after its status is known.
    app.add_middleware(AuditTrail, access_log_on=settings.access_log)
    # Outermost of all, with tracing on: the request's span holds everything above.
    telemetry.instrument_api(app)
    return app
