"""The audit trail, read back: who changed what through the API, newest first."""

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from hookline.api.deps import PagingDep, SessionDep
from hookline.api.schemas import Page
from hookline.store import audit

router = APIRouter(prefix="/v1/audit-log", tags=["audit"])

# Filters take only what entries can hold, so a typo is a 422 rather than an empty page.
APP_ID = r"^app_[0-9a-z]{1,60}$"
CREDENTIAL_ID = r"^(admin|key_[0-9A-Za-z]{1,60})$"
ACTION = r"^(secret\.read|(POST|PUT|PATCH|DELETE) /v1/[A-Za-z0-9_{}/.-]{1,250})$"
TARGET_ID = r"^[A-Za-z0-9_.*-]{1,256}$"


class AuditEntryOut(BaseModel):
    id: str
    created_at: datetime
    credential_id: str
    action: str
    app_id: str | None
    target_id: str | None
    status_code: int
    fields: list[str] | None


def _bound_app(request: Request) -> str | None:
    """The application an app-bound API key may see; None for the admin credential."""
    credential = getattr(request.state, "credential", None)
    return getattr(credential, "app_id", None)


@router.get("", response_model=Page[AuditEntryOut])
async def list_audit_log(
    request: Request,
    session: SessionDep,
    paging: PagingDep,
    app_id: Annotated[str | None, Query(pattern=APP_ID)] = None,
    credential_id: Annotated[str | None, Query(pattern=CREDENTIAL_ID)] = None,
    action: Annotated[
        str | None,
        Query(pattern=ACTION, description='e.g. "PATCH /v1/apps/{app_id}/endpoints/{endpoint_id}" or "secret.read"'),
    ] = None,
    target_id: Annotated[str | None, Query(pattern=TARGET_ID)] = None,
    since: Annotated[
        datetime | None, Query(description="Entries at or after this time (UTC if no zone is given)")
    ] = None,
) -> dict:
    """Changes made through the API (and secret reads), each with the credential that made it."""
    bound = _bound_app(request)
    if bound is not None:
        if app_id is not None and app_id != bound:  # as for any other application's resources
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"application {app_id} not found")
        app_id = bound
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    rows, cursor = await audit.page(
        session, limit=paging.limit, cursor=paging.id_cursor("aud"), app_id=app_id,
        credential_id=credential_id, action=action, target_id=target_id, since=since,
    )
    return {"data": rows, "next_cursor": cursor}
