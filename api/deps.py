"""FastAPI dependencies: the session, the Temporal client, settings, auth and paging."""

import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from core.config import Settings
from store import queries
from store.tables import Application, Endpoint


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]

_bearer = HTTPBearer(auto_error=False)


def token_ok(settings: Settings, authorization: str | None) -> bool:
    expected = settings.admin_token
    if not authorization or expected is None:
        return False
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), expected.encode())


def require_token(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Declares the bearer scheme in OpenAPI; the middleware in api.main has checked it already."""
    header = f"Bearer {credentials.credentials}" if credentials else None
    if not token_ok(settings, header):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=250, description="Page size")] = 50,
        cursor: Annotated[str | None, Query(max_length=128, description="next_cursor of the previous page")] = None,
    ):
        self.limit = limit
        self.cursor = cursor

    def id_cursor(self, prefix: str) -> str | None:
        """The cursor of a list paged on ids: only an id of that list's kind, else 422."""
        if self.cursor is not None and not re.fullmatch(rf"{prefix}_[0-9a-f]{{28}}", self.cursor):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="cursor is not one this list returned")
        return self.cursor


PagingDep = Annotated[Paging, Depends()]


async def get_app_or_404(app_id: str, session: SessionDep) -> Application:
    app = await queries.get_app(session, app_id=app_id)
    if app is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"application {app_id} not found")
    return app


AppDep = Annotated[Application, Depends(get_app_or_404)]


async def get_endpoint_or_404(app: AppDep, endpoint_id: str, session: SessionDep) -> Endpoint:
    endpoint = await queries.get_endpoint(session, app_id=app.id, endpoint_id=endpoint_id)
    if endpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"endpoint {endpoint_id} not found")
    return endpoint


EndpointDep = Annotated[Endpoint, Depends(get_endpoint_or_404)]
