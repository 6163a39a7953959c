"""Publish events from a Python service that reaches Temporal and the store directly.

    from hookline.producer import Producer

    async with Producer.from_settings() as producer:
        event = await producer.publish("app_…", "invoice.paid", {"id": "in_1"}, idempotency_key="in_1")

It records the event and starts the same workflow the HTTP API does, with the same
idempotency: a key seen before returns the first event and starts no second fan-out. It runs
the API's input checks first: what the API would refuse with 422 raises `InvalidEvent` (a
ValueError) here, before anything is recorded. New events count in this process's
`hookline_events_published_total`, as in the API's.
"""

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core.config import Settings, get_settings
from hookline.core.temporal import connect_temporal
from hookline.services.publishing import InvalidEvent, check_producer_event, publish_event
from hookline.store.db import dispose, make_engine, make_sessionmaker
from hookline.store.schema import ensure_current
from hookline.store.tables import Event


__all__ = ["InvalidEvent", "Producer"]


class Producer:
    def __init__(self, client: Client, engine: AsyncEngine, settings: Settings) -> None:
        self._client = client
        self._engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        self._settings = settings

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> "Producer":
        settings = settings or get_settings()
        engine = make_engine(settings)
        try:
            await ensure_current(engine)  # SchemaNotCurrent: run `hookline migrate`
        except BaseException:
            await dispose(engine)
            raise
        return cls(await connect_temporal(settings), engine, settings)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "_Connecting":
        return _Connecting(settings)

    async def publish(
        self, app_id: str, type: str, data: dict, *, idempotency_key: str | None = None,
        version: str | None = None, versions: dict[str, dict] | None = None,
    ) -> Event:
        """Raises InvalidEvent, UnknownApplication, SchemaViolation or TemporalError; then nothing is recorded.
        `version` and `versions` as in the API (docs/event-types.md)."""
        check_producer_event(type, data, idempotency_key)
        if versions is not None and not isinstance(versions, dict):
            raise InvalidEvent("versions must be a dict of version label to data")
        for supplied in (versions or {}).values():
            check_producer_event(type, supplied, None)  # each version's data is checked like `data`
        async with self._sessions() as session:
            event, _ = await publish_event(
                session=session, client=self._client, settings=self._settings,
                app_id=app_id, type=type, data=data, idempotency_key=idempotency_key,
                version=version, versions=versions,
            )
            return event

    async def close(self) -> None:
        await dispose(self._engine)


class _Connecting:
    def __init__(self, settings: Settings | None) -> None:
        self._settings = settings
        self._producer: Producer | None = None

    async def __aenter__(self) -> Producer:
        self._producer = await Producer.connect(self._settings)
        return self._producer

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._producer is not None
        await self._producer.close()
