"""FastAPI dependencies: the session, the Temporal client, settings, the credential and paging."""

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.api.auth import Credential, credential_of
from hookline.core.config import Settings
from hookline.store import crud
from hookline.store.tables import Application, Endpoint


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


def id_format(prefix: str) -> str:
    """The format of the ids core.ids.new_id makes with this prefix."""
    return rf"^{prefix}_[0-9a-f]{{28}}$"


# Path ids: a malformed one is 422, a well-formed unknown one 404.
EndpointId = Annotated[str, Path(pattern=id_format("ep"), description="`ep_` and 28 hex digits")]
EventId = Annotated[str, Path(pattern=id_format("evt"), description="`evt_` and 28 hex digits")]
DeliveryId = Annotated[str, Path(pattern=id_format("dlv"), description="`dlv_` and 28 hex digits")]

# Attempt numbers, ASCII digits only (`str.isdigit` also takes "²"); nine fit any database integer.
ATTEMPT_CURSOR = r"^[0-9]{1,9}$"


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


def paging(cursor_pattern: str, cursor_format: str) -> Any:
    """Paging whose `cursor` states (and checks) its list's format, so OpenAPI tells clients."""

    class ListPaging(Paging):
        def __init__(
            self,
            limit: Annotated[int, Query(ge=1, le=250, description="Page size")] = 50,
            cursor: Annotated[
                str | None,
                Query(
                    max_length=128, pattern=cursor_pattern,
                    description=f"next_cursor of the previous page: {cursor_format}",
                ),
            ] = None,
        ):
            super().__init__(limit, cursor)

    return Annotated[ListPaging, Depends()]


PagingDep = Annotated[Paging, Depends()]
AppPaging = paging(id_format("app"), "an application id")
EventTypePaging = paging(id_format("etp"), "an opaque `etp_` id")
EndpointPaging = paging(id_format("ep"), "an endpoint id")
EventPaging = paging(id_format("evt"), "an event id")
DeliveryPaging = paging(id_format("dlv"), "a delivery id")
AttemptPaging = paging(ATTEMPT_CURSOR, "an attempt number")
KeyPaging = paging(id_format("key"), "an API key id")


async def get_app_or_404(app_id: str, session: SessionDep, credential: CredentialDep) -> Application:
    # The middleware has refused other applications to an app-bound key already; a second lock.
    bound_elsewhere = credential.app_id is not None and credential.app_id != app_id
    app = None if bound_elsewhere else await crud.get_app(session, app_id=app_id)
    if app is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"application {app_id} not found")
    return app


AppDep = Annotated[Application, Depends(get_app_or_404)]


async def get_endpoint_or_404(app: AppDep, endpoint_id: EndpointId, session: SessionDep) -> Endpoint:
    endpoint = await crud.get_endpoint(session, app_id=app.id, endpoint_id=endpoint_id)
    if endpoint is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"endpoint {endpoint_id} not found")
    return endpoint


EndpointDep = Annotated[Endpoint, Depends(get_endpoint_or_404)]
