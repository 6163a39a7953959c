"""What the HTTP API takes and returns."""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator, AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, UrlConstraints,
    field_validator,
)

from hookline.core.event_types import FILTER_PATTERN, NAME_PATTERN
from hookline.core.inputs import MAX_EVENT_TYPE_LENGTH, MAX_JSON_DEPTH, check_json, check_text  # noqa: F401
from hookline.core.retry import RetryOverride, RetrySchedule
from hookline.core.signing import is_valid_secret
from hookline.core.versions import MAX_EXPRESSION_LENGTH, VERSION_PATTERN

T = TypeVar("T")

EventTypeName = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=MAX_EVENT_TYPE_LENGTH)]
EventTypeFilter = Annotated[str, StringConstraints(pattern=FILTER_PATTERN, min_length=1, max_length=256)]
# PostgreSQL text cannot hold NUL: refused here rather than failing the INSERT with a 500.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=NO_NUL)]
Description = Annotated[str, StringConstraints(max_length=2048, pattern=NO_NUL)]
IdRef = Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)]


def _no_credentials(url: AnyHttpUrl) -> AnyHttpUrl:
    """A user or password in the URL would be stored and shown in clear; headers are sealed."""
    if url.username or url.password:
        raise ValueError(
            "credentials in the URL are not allowed: put them in `headers` (e.g. Authorization), "
            "which are stored encrypted"
        )
    return url


EndpointUrl = Annotated[
    AnyHttpUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"]), AfterValidator(_no_credentials)
]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", max_length=128)]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\t\x20-\x7e\x80-\xff]*$", max_length=4096)]

# The checks live in core.inputs, where producer.py runs them too; the names stay importable here.
_check_json = check_json
_check_text = check_text


JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]

# Headers Hookline sets itself; an endpoint cannot override them.
RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection"}


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page (the format of this list's `cursor` parameter); "
        "null on the last page"
    )


# --- applications ---

class AppCreate(Input):
    name: Name


class AppUpdate(Input):
    name: Name | None = None


class AppOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    updated_at: datetime


# --- event types ---

class EventTypeCreate(Input):
    name: EventTypeName
    description: Description | None = None
    schema_: JsonObject | None = Field(default=None, alias="schema")


class EventTypeUpdate(Input):
    description: Description | None = None
    schema_: JsonObject | None = Field(default=None, alias="schema")


VersionLabel = Annotated[str, StringConstraints(pattern=VERSION_PATTERN, max_length=5)]
Expression = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EXPRESSION_LENGTH, pattern=NO_NUL)]
# {"v2": "<JMESPath>"}: how this version's payload derives from another version's.
Transforms = Annotated[dict[VersionLabel, Expression], Field(max_length=20)]


class EventTypeVersionCreate(Input):
    description: Description | None = None
    schema_: JsonObject | None = Field(default=None, alias="schema")
    example: JsonObject | None = None
    transforms: Transforms | None = None


class EventTypeVersionUpdate(EventTypeVersionCreate):
    deprecated: bool | None = None
    sunset_at: AwareDatetime | None = Field(
        default=None, description="RFC 3339 with a time zone; after it, publishing this version is refused"
    )


class EventTypeVersionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    version: str
    description: str | None
    schema_: dict[str, Any] | None = Field(serialization_alias="schema")
    example: dict[str, Any] | None
    transforms: dict[str, str] | None
    deprecated: bool
    sunset_at: datetime | None
    # True once the sunset has passed: publishing this version is refused.
    sunset: bool


class EventTypeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    name: str
    description: str | None
    schema_: dict[str, Any] | None = Field(serialization_alias="schema")
    created_at: datetime
    updated_at: datetime
    latest_version: str = "v1"
    versions: list[EventTypeVersionOut] = Field(default_factory=list)


class VersionUsage(BaseModel):
    version: str
    deprecated: bool
    sunset_at: datetime | None
    # Endpoints pinned to this version, `@latest` included for the latest.
    endpoints: int
    deliveries_last_day: int


class EventTypeUsage(BaseModel):
    name: str
    # Endpoints subscribed without a pin: they receive each event at the version it was published.
    unpinned_endpoints: int
    versions: list[VersionUsage]


# --- endpoints ---

def _check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is None:
        return None
    if len(headers) > 20:
        raise ValueError("at most 20 headers")
    for name in headers:
        lowered = name.lower()
        if lowered in RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise ValueError(f"header {name!r} is set by Hookline and cannot be overridden")
    return headers


class RetryIn(RetryOverride):
    """A typo in an override must be refused, not silently fall back to the default."""

    model_config = ConfigDict(extra="forbid")


# Deliveries per second to one endpoint, across every worker. Strict: "5", 5.5 and true are refused.
RateLimit = Annotated[int, Field(strict=True, ge=1, le=10000)]


class EndpointFields(Input):
    description: Description | None = None
    event_types: Annotated[list[EventTypeFilter], Field(max_length=100)] | None = None
    retry: RetryIn | None = None
    headers: dict[HeaderName, HeaderValue] | None = None
    rate_limit: RateLimit | None = Field(default=None, description="deliveries per second (1–10000); null: no limit")

    _headers = field_validator("headers")(_check_headers)


def _check_secret(value: str | None) -> str | None:
    if value is not None and not is_valid_secret(value):
        raise ValueError("secret must be 'whsec_' followed by base64 of 24 to 64 bytes")
    return value


class EndpointCreate(EndpointFields):
    url: EndpointUrl
    secret: str | None = Field(default=None, max_length=200)

    _secret = field_validator("secret")(_check_secret)


class EndpointUpdate(EndpointFields):
    url: EndpointUrl | None = None
    status: Literal["active", "paused", "disabled"] | None = None


class EndpointOut(BaseModel):
    id: str
    app_id: str
    url: str
    description: str | None
    event_types: list[str] | None
    status: str
    disabled_reason: str | None
    retry: RetrySchedule
    # Pinned subscriptions to deprecated versions (endpoint reads, docs/event-types.md).
    version_notices: list["VersionNotice"] = Field(default_factory=list)
    # Names only: a header's value is a credential, stored encrypted and never shown.
    header_names: list[str]
    rate_limit: int | None = None
    created_at: datetime
    updated_at: datetime
    # The circuit breaker: `failing` after HOOKLINE_BREAKER_FAILURES failed attempts in a row, until a probe succeeds.
    health: Literal["healthy", "failing"] = "healthy"
    failing_since: datetime | None = None


class VersionNotice(BaseModel):
    entry: str
    event_type: str
    version: str
    sunset_at: datetime | None
    # `deprecated`: still delivered; `sunset`: no longer published, delivered only as derived or supplied.
    state: Literal["deprecated", "sunset"]


EndpointOut.model_rebuild()


class SecretOut(BaseModel):
    secret: str


class SecretRotate(Input):
    secret: str | None = Field(default=None, max_length=200)

    _secret = field_validator("secret")(_check_secret)


# --- events and deliveries ---

class EventCreate(Input):
    type: EventTypeName
    data: JsonObject
    version: VersionLabel | None = Field(
        default=None, description="The version `data` is at; default the type's latest"
    )
    versions: Annotated[dict[VersionLabel, JsonObject], Field(max_length=20)] | None = Field(
        default=None, description="Other versions' data, for endpoints pinned to them (dual publish)"
    )


class TestEventCreate(Input):
    """A test event: type `hookline.test` and a short message unless given."""

    type: EventTypeName | None = None
    data: JsonObject | None = None


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    endpoint_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    workflow_id: str
    created_at: datetime
    updated_at: datetime
    # Only on an event read with `live=true`: what the running workflow is doing with it now
    # (sending | waiting_retry | paused | queued); null when it is not open there.
    live: str | None = None


class EventOut(BaseModel):
    id: str
    app_id: str
    type: str
    data: dict[str, Any]
    idempotency_key: str | None
    workflow_id: str
    created_at: datetime
    deliveries: list[DeliveryOut] | None = None


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_body: str | None


class EventReplay(Input):
    endpoint_id: IdRef | None = None


class DeadLetterReplay(Input):
    endpoint_id: IdRef | None = None
    since: datetime | None = None


class Replayed(BaseModel):
    replayed: int


# --- errors ---

class ErrorOut(BaseModel):
    """Every error the API answers: a human-readable `detail`."""

    detail: str


class ValidationErrorOut(ErrorOut):
    """422: `detail` sums the problems up, `errors` lists each (`loc`, `msg`, `type`)."""

    errors: list[dict[str, Any]] = Field(default_factory=list)
