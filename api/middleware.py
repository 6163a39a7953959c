"""Request guards: before routing (NUL characters), and before any handler (unknown query parameters)."""

from fastapi import HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response
from fastapi.routing import APIRoute


async def refuse_nul(request: Request, call_next: RequestResponseEndpoint) -> Response:
    # No id or parameter holds a NUL, and PostgreSQL cannot even compare one: 404/422, not a 500.
    if "\x00" in request.scope["path"]:
        return JSONResponse({"detail": "not found"}, status_code=status.HTTP_404_NOT_FOUND)
    if any("\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
        return JSONResponse(
            {"detail": "query parameters cannot contain NUL characters"},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return await call_next(request)


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared_query(route: APIRoute) -> frozenset[str]:
    names = getattr(route, "_hookline_query_names", None)
    if names is None:
        names = frozenset(_query_names(route.dependant))
        route._hookline_query_names = names  # type: ignore[attr-defined]
    return names


def known_query_only(request: Request) -> None:
    """A query parameter the route does not take is refused: `?stauts=failed` must not list everything."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _declared_query(route))
    if unknown:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown query parameter(s): {', '.join(unknown)[:200]}",
        )
