"""Replay requests are counted by the service (services/controls.py), so every caller counts alike."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from hookline.core import crypto
from hookline.core.config import Settings
from hookline.core.metrics import REPLAYS_REQUESTED
from hookline.core.temporal import connect_temporal
from hookline.services import controls
from hookline.services.errors import Conflict, TemporalUnavailable
from hookline.store import crud
from hookline.store.schema import migrate
from hookline.store.tables import Delivery, Endpoint, Event, utcnow
from tests.harness import store_sessions


def replays(scope: str) -> float:
    return REPLAYS_REQUESTED.labels(scope)._value.get()


@pytest.fixture(autouse=True)
def keyring() -> Iterator[None]:
    crypto.install(crypto.Keyring(crypto.generate_key()))
    yield
    crypto.install(None)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    url = f"sqlite:///{tmp_path / 'count.db'}"
    migrate(url)
    async with store_sessions(url, tmp_path) as sessions:
        yield sessions


async def test_a_dead_letter_replay_with_nothing_to_do_is_counted(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    before = replays("dead_letters")
    async with sessions() as session:
        app = await crud.create_app(session, name="count")
        client: Client = None  # type: ignore[assignment]  # nothing to replay: Temporal is not asked
        count = await controls.replay_dead_letters(
            session=session, client=client, settings=Settings(data_dir=tmp_path), app_id=app.id,
            endpoint_id=None, since=None,
        )
    assert count == 0
    assert replays("dead_letters") == before + 1


async def test_a_replay_temporal_refused_is_not_counted(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    # A client whose Temporal is not there: the service raises and counts nothing.
    settings = Settings(data_dir=tmp_path, temporal_address="127.0.0.1:1")
    client = await connect_temporal(settings, lazy=True)
    now = utcnow()
    async with sessions() as session:
        app = await crud.create_app(session, name="count")
        endpoint = Endpoint(
            id="ep_" + "0" * 28, app_id=app.id, url="https://example.com/", secret="whsec_x",
            created_at=now, updated_at=now,
        )
        event = Event(id="evt_" + "0" * 28, app_id=app.id, type="t.x", data={}, workflow_id="w", created_at=now)
        delivery = Delivery(
            id="dlv_" + "0" * 28, app_id=app.id, event_id=event.id, endpoint_id=endpoint.id, workflow_id="w",
            created_at=now, updated_at=now,
        )
        session.add_all([endpoint, event])
        await session.commit()
        session.add(delivery)
        await session.commit()

        before_event, before_delivery = replays("event"), replays("delivery")
        with pytest.raises(TemporalUnavailable):
            await controls.replay_event(client=client, settings=settings, event=event)
        with pytest.raises(TemporalUnavailable):
            await controls.replay_delivery(session=session, client=client, settings=settings, delivery=delivery)
        assert (replays("event"), replays("delivery")) == (before_event, before_delivery)

        # A delivery whose endpoint is gone has nowhere to go: refused before Temporal is asked.
        await crud.delete_endpoint(session, endpoint=endpoint)
        with pytest.raises(Conflict, match="was deleted"):
            await controls.replay_delivery(session=session, client=client, settings=settings, delivery=delivery)
