"""How the API answers what went wrong: one JSON shape, and the table of statuses OpenAPI documents."""

from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from hookline.api.schemas import ErrorOut, ValidationErrorOut
from hookline.services.errors import (
    Conflict, NotFound, TemporalRefused, TemporalUnavailable, UnknownApplication, from_rpc_error,
)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownApplication, unknown_app)  # type: ignore[arg-type]
    app.add_exception_handler(Conflict, conflict)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, not_found)  # type: ignore[arg-type]
    app.add_exception_handler(TemporalUnavailable, temporal_unavailable)
    app.add_exception_handler(TemporalRefused, temporal_refused)
    app.add_exception_handler(RPCError, temporal_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(InterfaceError, store_unavailable)


async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    readable = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in errors[:5]
    )
    return JSONResponse(
        {"detail": readable or "invalid request", "errors": jsonable_encoder(errors, exclude={"input", "ctx"})},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    # FastAPI answers a body it cannot decode at all (not UTF-8) with 400; to a client it is
    # malformed JSON like any other, and the API documents that as 422.
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == "There was an error parsing the body":
        return JSONResponse(
            {"detail": "request body is not valid JSON"}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    return await http_exception_handler(request, exc)


async def unknown_app(_request: Request, exc: UnknownApplication) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)


async def temporal_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"the workflow service is unavailable, try again: {exc}"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def store_unavailable(_request: Request, _exc: Exception) -> JSONResponse:
    # The store is down or restarting (the engine logs the outage and reconnects by itself). The
    # exception's text may hold the database URL, and the URL a password: none of it goes out.
    return JSONResponse(
        {"detail": "the database is unavailable, try again"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


async def temporal_refused(_request: Request, exc: Exception) -> JSONResponse:
    # Not the caller's fault and not passing: the deployment (namespace, search attributes) needs fixing.
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_502_BAD_GATEWAY)


async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
    """A Temporal call made outside `reaching_temporal`."""
    mapped = from_rpc_error(exc)
    if isinstance(mapped, TemporalUnavailable):
        return await temporal_unavailable(request, mapped)
    return await temporal_refused(request, mapped)


# --- what OpenAPI says each route can answer -----------------------------------------------------

def _error(description: str, model: type = ErrorOut, /, **headers: str) -> dict[str, Any]:
    documented: dict[str, Any] = {"description": description, "model": model}
    if headers:
        documented["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return documented


INVALID = _error(
    "Malformed body, path id or query parameter (`detail` sums it up, `errors` lists each problem)",
    ValidationErrorOut,
)
TOO_LARGE = _error("Request body over HOOKLINE_MAX_BODY_BYTES")

# Every route: the body limit and the NUL guard (api/middleware.py) run before routing.
PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {413: TOO_LARGE, 422: INVALID}

# Every /v1 route, on top of what its handler raises.
V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or invalid credentials", **{"WWW-Authenticate": "Bearer"}),
    403: _error("The credential's scopes do not allow this route"),
    404: _error("Unknown id (or one of another application)"),
    **PUBLIC_RESPONSES,
    429: _error("Over the credential's request budget", **{"Retry-After": "Seconds to wait"}),
}

CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("The resource's state does not allow this")}

# Routes that reach Temporal.
TEMPORAL: dict[int | str, dict[str, Any]] = {
    502: _error("Temporal refused the call: the deployment needs fixing"),
    503: _error("Temporal or the database is unreachable; try again", **{"Retry-After": "Seconds to wait"}),
}
