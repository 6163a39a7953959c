"""The FastAPI application: routers, error shapes, and the resources it holds for its lifetime."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from api.audit import AuditTrail
from api.deps import require_token, token_ok
from api.limits import BodySizeLimit
from api.routes import apps, deliveries, endpoints, event_types, events, health
from api.routes import audit as audit_log
from core.config import Settings, get_settings
from core.temporal import connect_temporal
from core.version import VERSION
from services.errors import Conflict, TemporalRefused, TemporalUnavailable, UnknownApplication, from_rpc_error
from store.db import create_schema, dispose, make_engine, make_sessionmaker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        await create_schema(engine)
        app.state.settings = settings
        app.state.sessions = make_sessionmaker(engine)
        # Lazy: the API starts and answers while Temporal is away, and reconnects when it is back.
        app.state.temporal = await connect_temporal(settings, lazy=True)
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

    @app.middleware("http")
    async def refuse_nul(request: Request, call_next):  # type: ignore[no-untyped-def]
        # No id or parameter holds a NUL, and PostgreSQL cannot even compare one: 404/422, not a 500.
        if "\x00" in request.scope["path"]:
            return JSONResponse({"detail": "not found"}, status_code=status.HTTP_404_NOT_FOUND)
        if any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
            return JSONResponse(
                {"detail": "query parameters cannot contain NUL characters"},
                status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        return await call_next(request)

    @app.middleware("http")
    async def authenticate_first(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Before the body is parsed, so an unauthenticated caller learns nothing from a 422.
        if request.url.path.startswith("/v1") and not token_ok(settings, request.headers.get("authorization")):
            return JSONResponse(
                {"detail": "missing or invalid bearer token"},
                status_code=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        readable = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in errors[:5]
        )
        return JSONResponse(
            {"detail": readable or "invalid request", "errors": jsonable_encoder(errors, exclude={"input", "ctx"})},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(UnknownApplication)
    async def unknown_app(_request: Request, exc: UnknownApplication) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(TemporalUnavailable)
    async def temporal_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the workflow service is unavailable, try again: {exc}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(TemporalRefused)
    async def temporal_refused(_request: Request, exc: Exception) -> JSONResponse:
        # Not the caller's fault and not passing: the deployment (namespace, search attributes) needs fixing.
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_502_BAD_GATEWAY)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        """A Temporal call made outside `reaching_temporal`."""
        mapped = from_rpc_error(exc)
        if isinstance(mapped, TemporalUnavailable):
            return await temporal_unavailable(request, mapped)
        return await temporal_refused(request, mapped)

    protected = [Depends(require_token)]
    for module in (apps, event_types, endpoints, events, deliveries):
        app.include_router(module.router, dependencies=protected)
    app.include_router(audit_log.router, dependencies=protected)
    app.include_router(health.router)
    # Added last, so outermost: it logs every answer and audits each change after its status is known.
    app.add_middleware(AuditTrail, access_log_on=settings.access_log)
    return app
