"""Alembic's entry point: run by `hookline migrate` (store/schema.py) and by `alembic` from the repository root.

`hookline migrate` hands over its connection; the `alembic` command (revision --autogenerate,
history, upgrade) connects to HOOKLINE_DATABASE_URL, as every Hookline process does.
"""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, Connection, DateTime, String, TypeDecorator, create_engine
from sqlmodel import SQLModel

from hookline.core.config import Settings
from hookline.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from hookline.store.schema import sync_url

config = context.config


def render_type(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Revisions name plain SQLAlchemy types: a revision must not change when tables.py does.

    The TypeDecorators of tables.py (UTC timestamps, sealed secrets) store their impl's type, and
    SQLModel's AutoString is a VARCHAR.
    """
    if type_ != "type":
        return False
    if isinstance(obj, TypeDecorator):
        obj = obj.impl_instance
    if isinstance(obj, DateTime):
        return f"sa.DateTime(timezone={obj.timezone})"
    if isinstance(obj, JSON):
        return "sa.JSON()"
    if type(obj).__name__ == "AutoString" or (type(obj) is String and obj.length is None):
        return "sa.String()"
    return False


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # SQLite alters a table by copying it: alembic's batch mode does that.
        render_as_batch=True,
        render_item=render_type,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        run(given)
        return
    url = config.attributes.get("database_url") or Settings().effective_database_url
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Hookline's migrations run against a database: offline (--sql) mode is not supported")
main()
