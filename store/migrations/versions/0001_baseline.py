"""Baseline: the schema that start-up code created before migrations existed.

Revision ID: 0001_baseline
Revises:
Created: 2026-12-01

A database made by that code has these tables but no alembic_version: on it, this revision
creates only what is missing (an index added after the database was made, as the start-up code
did) and is recorded, so nothing is recreated. On an empty database it creates everything.
Frozen: later schema changes are later revisions, never edits here.
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# In dependency order: a table comes after the tables its foreign keys name.
TABLES: dict[str, Callable[[], tuple]] = {
    "api_keys": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=True),
        _ts("created_at", False),
        _ts("expires_at", True),
        _ts("last_used_at", True),
        _ts("revoked_at", True),
        sa.PrimaryKeyConstraint("id"),
    ),
    "applications": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id"),
    ),
    "audit_entries": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        _ts("created_at", False),
        sa.Column("credential_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=True),
        sa.Column("target_id", sa.String(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    ),
    "event_types": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("json_schema", sa.JSON(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id"),
    ),
    "endpoints": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("previous_secret", sa.String(), nullable=True),
        _ts("previous_secret_expires_at", True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("disabled_reason", sa.String(), nullable=True),
        sa.Column("retry", sa.JSON(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
    ),
    "events": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        _ts("created_at", False),
        sa.ForeignKeyConstraint(["app_id"], ["applications.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "idempotency_key"),
    ),
    "deliveries": lambda: (
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("app_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("endpoint_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("cycle_attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("next_attempt_at", True),
        sa.Column("workflow_id", sa.String(), nullable=False),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "endpoint_id"),
    ),
    "attempts": lambda: (
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        _ts("started_at", False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
    ),
}

# (table, index name, columns, unique)
INDEXES = [
    ("api_keys", "ix_api_keys_app_id", ["app_id"], False),
    ("audit_entries", "ix_audit_entries_action", ["action"], False),
    ("audit_entries", "ix_audit_entries_app_id", ["app_id"], False),
    ("audit_entries", "ix_audit_entries_created_at", ["created_at"], False),
    ("audit_entries", "ix_audit_entries_credential_id", ["credential_id"], False),
    ("audit_entries", "ix_audit_entries_target_id", ["target_id"], False),
    ("event_types", "ix_event_types_name", ["name"], True),
    ("endpoints", "ix_endpoints_app_id", ["app_id"], False),
    ("events", "ix_events_app_id", ["app_id"], False),
    ("events", "ix_events_type", ["type"], False),
    # The recovery of never-started fan-outs reads only undispatched rows.
    ("events", "ix_events_undispatched", ["dispatched", "created_at"], False),
    ("deliveries", "ix_deliveries_app_id", ["app_id"], False),
    ("deliveries", "ix_deliveries_endpoint_id", ["endpoint_id"], False),
    ("deliveries", "ix_deliveries_event_id", ["event_id"], False),
    ("deliveries", "ix_deliveries_status", ["status"], False),
    ("attempts", "ix_attempts_delivery_id", ["delivery_id"], False),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, table_columns in TABLES.items():
        if name not in existing:
            op.create_table(name, *table_columns())
    indexes = {name: {i["name"] for i in inspector.get_indexes(name)} for name in existing}
    for table, index, columns, unique in INDEXES:
        if index not in indexes.get(table, set()):
            op.create_index(index, table, columns, unique=unique)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)  # its indexes go with it
