from datetime import timedelta
from typing import Literal, cast
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, status
from sqlmodel import select

from hookline.api.deps import AppDep, EndpointDep, EndpointPaging, SessionDep, SettingsDep, TemporalDep
from hookline.api.errors import CONFLICT, TEMPORAL
from hookline.api.routes.events import event_out
from hookline.api.schemas import (
    EndpointCreate, EndpointOut, EndpointUpdate, EventOut, Page, SecretOut, SecretRotate, TestEventCreate,
    VersionNotice,
)
from hookline.core import versions as versions_core
from hookline.core.config import Settings
from hookline.core.ids import new_id
from hookline.core.retry import effective_schedule
from hookline.core.signing import generate_secret
from hookline.core.destinations import host_refusal
from hookline.services import controls, publishing, quotas
from hookline.services.errors import SchemaViolation
from hookline.store import crud
from hookline.store import versions as versions_store
from hookline.store.tables import Endpoint, utcnow

router = APIRouter(prefix="/v1/apps/{app_id}/endpoints", tags=["endpoints"])

def endpoint_out(row: Endpoint, settings: Settings) -> EndpointOut:
    return EndpointOut(
        id=row.id, app_id=row.app_id, url=row.url, description=row.description, event_types=row.event_types,
        status=row.status, disabled_reason=row.disabled_reason, retry=effective_schedule(row.retry, settings),
        header_names=list(row.headers or {}), rate_limit=row.rate_limit, created_at=row.created_at,
        updated_at=row.updated_at, failing_since=row.failing_since,
        # The column holds HEALTHY or FAILING only; the model checks it again at run time.
        health=cast(Literal["healthy", "failing"], row.health),
    )


def _check_scheme(url: str, settings: Settings) -> None:
    """Production sends only over TLS: a secret-signed payload must not cross the network in clear."""
    if settings.env == "production" and urlsplit(url).scheme != "https":
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="endpoint url must be https in production (HOOKLINE_ENV=production); "
            "HOOKLINE_ENV=development allows http",
        )


def _check_target(url: str, settings: Settings) -> None:
    host = urlsplit(url).hostname or ""
    why = None if settings.allow_private_targets else host_refusal(host)
    if why is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"endpoint url points at a private address or name ({host}: {why}); "
            "set HOOKLINE_ALLOW_PRIVATE_TARGETS=true to allow",
        )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointOut)
async def create_endpoint(app: AppDep, body: EndpointCreate, session: SessionDep, settings: SettingsDep) -> EndpointOut:
    """Subscribe a URL to the application's events. The secret is read with `GET …/secret`."""
    url = str(body.url)
    _check_scheme(url, settings)
    _check_target(url, settings)
    await quotas.check_endpoint_quota(session, settings=settings, app_id=app.id)
    now = utcnow()
    row = Endpoint(
        id=new_id("ep"), app_id=app.id, url=url, description=body.description, event_types=body.event_types,
        secret=body.secret or generate_secret(), status="active",
        retry=body.retry.model_dump(exclude_none=True) if body.retry else None,
        headers=body.headers, rate_limit=body.rate_limit, created_at=now, updated_at=now,
    )
    session.add(row)
    await session.commit()
    return endpoint_out(row, settings)


async def _with_notices(session: SessionDep, rows: list[Endpoint], settings: Settings) -> list[EndpointOut]:
    """Endpoint reads say which pinned versions are deprecated or past their sunset; only an
    endpoint with pins (`name@v1`) costs a read of the catalog."""
    names = {
        versions_core.split_pin(entry)[0]
        for row in rows for entry in row.event_types or () if "@" in entry
    }
    catalog = await versions_store.versions_of(session, names=sorted(names)) if names else {}
    now = utcnow()
    out = []
    for row in rows:
        result = endpoint_out(row, settings)
        for entry in row.event_types or ():
            name, pin = versions_core.split_pin(entry)
            versions = catalog.get(name)
            if pin is None or not versions:
                continue
            number = versions[-1].version if pin == versions_core.LATEST else versions_core.number(pin)
            version = next((v for v in versions if v.version == number), None)
            if version is not None and version.deprecated:
                sunset = version.sunset_at is not None and version.sunset_at <= now
                result.version_notices.append(
                    VersionNotice(
                        entry=entry, event_type=name, version=versions_core.label(number),
                        sunset_at=version.sunset_at, state="sunset" if sunset else "deprecated",
                    )
                )
        out.append(result)
    return out


@router.get("", response_model=Page[EndpointOut])
async def list_endpoints(app: AppDep, session: SessionDep, paging: EndpointPaging, settings: SettingsDep) -> dict:
    stmt = select(Endpoint).where(Endpoint.app_id == app.id)
    rows, cursor = await crud.page_by_id(session, stmt, Endpoint.id, limit=paging.limit, cursor=paging.id_cursor("ep"))
    return {"data": await _with_notices(session, list(rows), settings), "next_cursor": cursor}


@router.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint: EndpointDep, session: SessionDep, settings: SettingsDep) -> EndpointOut:
    """The endpoint; `version_notices` lists its subscriptions to deprecated versions."""
    [out] = await _with_notices(session, [endpoint], settings)
    return out


@router.patch("/{endpoint_id}", response_model=EndpointOut, responses={**CONFLICT, **TEMPORAL})
async def update_endpoint(
    endpoint: EndpointDep, body: EndpointUpdate, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> EndpointOut:
    """Change fields; `status` pauses, resumes, disables or re-enables the endpoint."""
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        if changes["url"] is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="url cannot be null")
        changes["url"] = str(body.url)
        _check_scheme(changes["url"], settings)
        _check_target(changes["url"], settings)
    if "retry" in changes:
        changes["retry"] = body.retry.model_dump(exclude_none=True) if body.retry else None
    new_status = changes.pop("status", None)
    endpoint = await controls.update_endpoint(
        session=session, client=client, settings=settings, endpoint=endpoint, changes=changes, new_status=new_status
    )
    return endpoint_out(endpoint, settings)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, responses=TEMPORAL)
async def delete_endpoint(
    endpoint: EndpointDep, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> None:
    """Delete the subscription; its open and held deliveries end as dead letters."""
    await controls.delete_endpoint(session=session, client=client, settings=settings, endpoint=endpoint)


@router.get("/{endpoint_id}/secret", response_model=SecretOut)
async def get_secret(endpoint: EndpointDep) -> SecretOut:
    return SecretOut(secret=endpoint.secret)


@router.post("/{endpoint_id}/secret/rotate", response_model=SecretOut)
async def rotate_secret(
    endpoint: EndpointDep, session: SessionDep, settings: SettingsDep, body: SecretRotate | None = None
) -> SecretOut:
    """New secret; the old one keeps signing beside it for `HOOKLINE_SECRET_ROTATION_GRACE_S`."""
    new_secret = (body.secret if body else None) or generate_secret()
    endpoint = await crud.rotate_secret(
        session, endpoint=endpoint, new_secret=new_secret, grace=timedelta(seconds=settings.secret_rotation_grace_s)
    )
    return SecretOut(secret=endpoint.secret)


@router.post("/{endpoint_id}/pause", response_model=EndpointOut, responses={**CONFLICT, **TEMPORAL})
async def pause_endpoint(
    endpoint: EndpointDep, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> EndpointOut:
    """No attempts reach a paused endpoint and none are burned; its deliveries wait as `paused`."""
    endpoint = await controls.set_paused(
        session=session, client=client, settings=settings, endpoint=endpoint, paused=True
    )
    return endpoint_out(endpoint, settings)


@router.post("/{endpoint_id}/resume", response_model=EndpointOut, responses={**CONFLICT, **TEMPORAL})
async def resume_endpoint(
    endpoint: EndpointDep, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> EndpointOut:
    """Everything held for the endpoint goes out now."""
    endpoint = await controls.set_paused(
        session=session, client=client, settings=settings, endpoint=endpoint, paused=False
    )
    return endpoint_out(endpoint, settings)


@router.post(
    "/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED, response_model=EventOut,
    responses={**CONFLICT, **TEMPORAL},
)
async def send_test_event(
    endpoint: EndpointDep, session: SessionDep, client: TemporalDep, settings: SettingsDep,
    body: TestEventCreate | None = None,
) -> EventOut:
    """One event to this endpoint only (type `hookline.test` unless given), listed with its deliveries."""
    body = body or TestEventCreate()
    try:
        event = await publishing.send_test_event(
            session=session, client=client, settings=settings, endpoint=endpoint, type=body.type, data=body.data
        )
    except SchemaViolation as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    return event_out(event)
