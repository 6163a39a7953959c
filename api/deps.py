"""FastAPI dependencies: the session, the Temporal client, settings, the credential and paging."""

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.auth import Credential, credential_of
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


def require_credential(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Credential:
    """Declares the bearer scheme in OpenAPI; api.auth.Gatekeeper (in the middleware) has
    authenticated and authorized the request already. Refuses, should it ever not have."""
    credential = credential_of(request)
    if credential is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credential


CredentialDep = Annotated[Credential, Depends(require_credential)]


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


async def get_app_or_404(app_id: str, session: SessionDep, credential: CredentialDep) -> Application:
    # The middleware has refused other applications to an app-bound key already; a second lock.
    bound_elsewhere = credential.app_id is not None and credential.app_id != app_id
    app = None if bound_elsewhere else await queries.get_app(session, app_id=app_id)
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
