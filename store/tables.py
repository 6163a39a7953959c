"""The SQLModel tables: the record of applications, subscriptions, events and every delivery attempt."""

import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Table, Text, TypeDecorator, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from hookline.core import crypto


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and read back zone-aware, on SQLite (which drops zones) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None:
            value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value


class SealedString(TypeDecorator[str]):
    """A secret stored as a Fernet token (core/crypto.py); a clear value an older version wrote reads as is."""

    impl = AutoString  # the column's type is unchanged: existing databases need no migration
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else crypto.unseal(value)


class SealedJSON(TypeDecorator[dict]):
    """A JSON object stored as one Fernet token (a JSON string); a clear object from before reads as is."""

    impl = JSON  # the column's type is unchanged: a token is a JSON string
    cache_ok = True

    def process_bind_param(self, value: dict | None, dialect: Any) -> str | None:
        return None if value is None else crypto.seal(json.dumps(value))

    def process_result_value(self, value: Any, dialect: Any) -> dict | None:
        if isinstance(value, str):
            return json.loads(crypto.unseal(value))
        return value


def core_table(model: type[SQLModel]) -> Table:
    """A table model's SQLAlchemy Core table, for the Core statements (SQLModel sets `__table__` untyped)."""
    return model.__table__  # type: ignore[attr-defined]


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kw))


class Application(SQLModel, table=True):
    __tablename__ = "applications"
    id: str = Field(primary_key=True)
    name: str
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class EventType(SQLModel, table=True):
    __tablename__ = "event_types"
    id: str = Field(primary_key=True)
    name: str = Field(unique=True, index=True)
    description: str | None = None
    json_schema: dict | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class EventTypeVersion(SQLModel, table=True):
    """One version of an event type (docs/event-types.md). A type without rows here has one
    version, v1, whose schema and description are the `event_types` row's."""

    __tablename__ = "event_type_versions"
    __table_args__ = (UniqueConstraint("type_name", "version"),)
    id: str = Field(primary_key=True)
    type_name: str = Field(index=True)
    version: int  # 1 for v1
    description: str | None = None
    json_schema: dict | None = Field(default=None, sa_column=Column(JSON))
    example: dict | None = Field(default=None, sa_column=Column(JSON))
    # {"v2": "<JMESPath>"}: how to derive this version's payload from another version's.
    transforms: dict | None = Field(default=None, sa_column=Column(JSON))
    deprecated: bool = False
    sunset_at: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class EventPayload(SQLModel, table=True):
    """An event of a versioned type: the version it was published at (`published`, its data is
    the event's), and each other version the producer supplied in the same call."""

    __tablename__ = "event_payloads"
    event_id: str = Field(primary_key=True)  # no foreign key: deleted with its event (crud.delete_app)
    version: int = Field(primary_key=True)
    published: bool = False
    data: dict | None = Field(default=None, sa_column=Column(JSON))


class VersionDelivery(SQLModel, table=True):
    """Which version a delivery of a versioned type went out at: the usage counts read these."""

    __tablename__ = "version_deliveries"
    delivery_id: str = Field(primary_key=True)
    type_name: str = Field(index=True)
    version: int
    delivered_at: datetime = _ts(nullable=False, index=True)


class Endpoint(SQLModel, table=True):
    __tablename__ = "endpoints"
    id: str = Field(primary_key=True)
    app_id: str = Field(foreign_key="applications.id", index=True)
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = None
    event_types: list[str] | None = Field(default=None, sa_column=Column(JSON))
    secret: str = Field(sa_column=Column(SealedString(), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(SealedString(), nullable=True))
    previous_secret_expires_at: datetime | None = _ts(nullable=True)
    status: str = "active"
    disabled_reason: str | None = None
    retry: dict | None = Field(default=None, sa_column=Column(JSON))
    # Header values are secrets too (API keys, basic auth): sealed like the secrets.
    headers: dict | None = Field(default=None, sa_column=Column(SealedJSON()))
    # Deliveries per second, None for no limit. `rate_next_at` is the limiter's state (GCRA): the
    # Unix time from which the next delivery may go; each delivery moves it on by 1/rate_limit.
    rate_limit: int | None = None
    rate_next_at: float | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    # The circuit breaker (activities/health.py): `healthy` or `failing`, since when, and the
    # failed attempts in a row that count towards HOOKLINE_BREAKER_FAILURES.
    health: str = "healthy"
    failing_since: datetime | None = _ts(nullable=True)
    consecutive_failures: int = 0


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("app_id", "idempotency_key"),
        # The recovery of never-started fan-outs reads only undispatched rows.
        Index("ix_events_undispatched", "dispatched", "created_at"),
    )
    id: str = Field(primary_key=True)
    app_id: str = Field(foreign_key="applications.id", index=True)
    type: str = Field(index=True)
    data: dict = Field(sa_column=Column(JSON, nullable=False))
    idempotency_key: str | None = None
    workflow_id: str
    # Set once the fan-out workflow is known to be started.
    dispatched: bool = False
    created_at: datetime = _ts(nullable=False)


class EventTarget(SQLModel, table=True):
    """The one endpoint an event goes to instead of every subscriber (a test event).

    A table of its own rather than a column of `events`: existing databases get it at start-up.
    No foreign key, as for the audit trail: deleting an application deletes these rows first
    or after, in any order.
    """

    __tablename__ = "event_targets"
    event_id: str = Field(primary_key=True)
    endpoint_id: str


class Delivery(SQLModel, table=True):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),)
    id: str = Field(primary_key=True)
    app_id: str = Field(index=True)
    event_id: str = Field(foreign_key="events.id", index=True)
    endpoint_id: str = Field(index=True)
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    # Attempts since the last (re)start of this delivery, against its retry budget.
    cycle_attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime | None = _ts(nullable=True)
    workflow_id: str
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)


class Attempt(SQLModel, table=True):
    __tablename__ = "attempts"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="deliveries.id", index=True)
    number: int
    started_at: datetime = _ts(nullable=False)
    duration_ms: int
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    response_body: str | None = Field(default=None, sa_column=Column(Text))


class ApiKey(SQLModel, table=True):
    """A credential for the API. Only a hash of the key is kept; the key itself is shown once."""

    __tablename__ = "api_keys"
    id: str = Field(primary_key=True)
    key_hash: str
    prefix: str
    name: str
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # No foreign key: deleting an application revokes its keys (crud.delete_app), kept for the audit trail.
    app_id: str | None = Field(default=None, index=True)
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime | None = _ts(nullable=True)
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class AuditEntry(SQLModel, table=True):
    """One change made through the API: who, when, what, on which ids, and which fields (names only).

    No foreign keys: the trail outlives the applications and endpoints it names.
    """

    __tablename__ = "audit_entries"
    id: str = Field(primary_key=True)  # time-sortable: lists page on it, newest first
    created_at: datetime = _ts(nullable=False, index=True)
    credential_id: str = Field(index=True)
    action: str = Field(index=True)  # "PATCH /v1/apps/{app_id}/endpoints/{endpoint_id}", or "secret.read"
    app_id: str | None = Field(default=None, index=True)
    target_id: str | None = Field(default=None, index=True)
    status_code: int
    fields: list[str] | None = Field(default=None, sa_column=Column(JSON))
