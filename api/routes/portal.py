"""The subscriber portal: short-lived access to one application, and the page that uses it.

`POST …/portal-access` makes an `app:write` API key bound to the application, with an expiry
(api/auth.py authenticates it like any key: after `expires_at` it gets 401). The portal itself
is a static page and a small script (api/portal/, shipped as package data) that call the /v1
API with that key. The key travels in the URL's fragment, which browsers never send: it reaches
no access log, proxy or Referer header.
"""

from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hookline.api.auth import key_hash, key_prefix, new_key
from hookline.api.deps import AppDep, CredentialDep, SessionDep, SettingsDep
from hookline.api.schemas import Input
from hookline.core.ids import new_id
from hookline.store import keys
from hookline.store.tables import utcnow

# Bounds of a portal link's life: long enough to load the page on a slow link, short enough
# that a link forwarded by mistake soon opens nothing.
MIN_TTL_S = 30
MAX_TTL_S = 86400

router = APIRouter(prefix="/v1/apps/{app_id}", tags=["portal"])
pages = APIRouter(tags=["portal"], include_in_schema=False)


class PortalAccessCreate(Input):
    expires_in_s: Annotated[int, Field(ge=MIN_TTL_S, le=MAX_TTL_S, strict=True)] | None = Field(
        default=None, description="Seconds the link works; default HOOKLINE_PORTAL_ACCESS_TTL_S"
    )


class PortalAccess(BaseModel):
    url: str = Field(description="Opens the portal of this application; the token is in its fragment")
    token: str = Field(description="An app:write API key bound to this application; shown in this response only")
    expires_at: datetime


async def _expiry(session: SessionDep, credential: CredentialDep, ttl_s: int) -> datetime:
    """Now + ttl, but never beyond the caller's own key: a portal cannot prolong itself."""
    expires_at = utcnow() + timedelta(seconds=ttl_s)
    if credential.id.startswith("key_"):
        own = await keys.get_key(session, key_id=credential.id)
        if own is not None and own.expires_at is not None:
            expires_at = min(expires_at, own.expires_at)
    return expires_at


def _portal_url(request: Request, public_url: str | None, *, app_id: str, token: str, expires_at: datetime) -> str:
    base = (public_url or str(request.base_url)).rstrip("/")
    return f"{base}/portal#app={app_id}&token={token}&expires={int(expires_at.timestamp())}"


@router.post("/portal-access", status_code=status.HTTP_201_CREATED, response_model=PortalAccess)
async def create_portal_access(
    app: AppDep, request: Request, session: SessionDep, settings: SettingsDep, credential: CredentialDep,
    body: PortalAccessCreate | None = None,
) -> PortalAccess:
    """A link to the subscriber portal of this application, working until `expires_at`."""
    ttl_s = body.expires_in_s if body and body.expires_in_s is not None else settings.portal_access_ttl_s
    expires_at = await _expiry(session, credential, ttl_s)
    key_id = new_id("key")
    token = new_key(key_id)
    await keys.create_key(
        session, key_id=key_id, key_hash=key_hash(token), prefix=key_prefix(token), name=f"portal {app.id}",
        scopes=["app:write"], app_id=app.id, expires_at=expires_at,
    )
    url = _portal_url(request, settings.public_url, app_id=app.id, token=token, expires_at=expires_at)
    return PortalAccess(url=url, token=token, expires_at=expires_at)


# --- the page ------------------------------------------------------------------------------------

# The page runs its own script only, talks to this origin only, and cannot be framed; the token
# in the fragment leaks nowhere through Referer.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_FILES = {"index.html": "text/html; charset=utf-8", "portal.js": "text/javascript; charset=utf-8",
          "portal.css": "text/css; charset=utf-8"}


def _asset(name: str) -> Response:
    content = resources.files("hookline.api").joinpath("portal", name).read_bytes()
    return Response(content, media_type=_FILES[name], headers=_HEADERS)


@pages.get("/portal")
async def portal_page() -> Response:
    return _asset("index.html")


@pages.get("/portal/portal.js")
async def portal_script() -> Response:
    return _asset("portal.js")


@pages.get("/portal/portal.css")
async def portal_style() -> Response:
    return _asset("portal.css")
