"""The hot path's typed rows and the status enums against a real database (SQLite and PostgreSQL):
the rows carry the stored values (secrets unsealed), and the enums are stored as today's strings."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import get_args

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hookline.api.routes.deliveries import DeliveryStatus as ApiDeliveryStatus
from hookline.api.schemas import EndpointUpdate
from hookline.core import crypto
from hookline.core.statuses import DeliveryStatus, EndpointStatus
from hookline.store import crud, hot_path
from hookline.store.schema import migrate
from hookline.store.tables import Endpoint, utcnow
from tests.harness import store_sessions

# The PostgreSQL case starts the shared cluster.
pytestmark = pytest.mark.stack


def test_the_api_offers_exactly_the_stored_statuses() -> None:
    assert set(get_args(ApiDeliveryStatus)) == {s.value for s in DeliveryStatus}
    endpoint_statuses = get_args(EndpointUpdate.model_fields["status"].annotation)
    assert set(get_args(endpoint_statuses[0])) == {s.value for s in EndpointStatus}


@pytest.fixture(autouse=True)
def keyring() -> Iterator[None]:
    crypto.install(crypto.Keyring(crypto.generate_key()))
    yield
    crypto.install(None)


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rows.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    migrate(url)
    async with store_sessions(url, tmp_path) as sessions:
        yield sessions


async def add_endpoint(session: AsyncSession, app_id: str, n: int, status: EndpointStatus, **fields: object) -> str:
    now = utcnow()
    endpoint = Endpoint(
        id=f"ep_{n:028x}", app_id=app_id, url=f"https://example.com/{n}", secret=f"whsec_secret{n}",
        status=status, created_at=now, updated_at=now, **fields,
    )
    session.add(endpoint)
    await session.commit()
    return endpoint.id


async def test_fan_out_and_attempt_rows(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        app = await crud.create_app(session, name="rows")
        active = await add_endpoint(session, app.id, 1, EndpointStatus.ACTIVE, headers={"x-api-key": "k"})
        paused = await add_endpoint(session, app.id, 2, EndpointStatus.PAUSED)
        await add_endpoint(session, app.id, 3, EndpointStatus.DISABLED)
        await add_endpoint(session, app.id, 4, EndpointStatus.ACTIVE, event_types=["other.type"])
        event, _ = await hot_path.insert_event(
            session, app_id=app.id, type="invoice.paid", data={"amount": 3}, idempotency_key=None
        )

        fan_out = await hot_path.event_to_fan_out(session, event_id=event.id)
        assert fan_out == hot_path.FanOutEvent(event.id, app.id, "invoice.paid", event.workflow_id, False)
        pairs, after = await hot_path.ensure_deliveries(session, event=fan_out, after_endpoint_id=None, limit=10)
        assert after is None
        by_endpoint = {endpoint.id: delivery for delivery, endpoint in pairs}
        assert set(by_endpoint) == {active, paused}  # not the disabled one, not the unsubscribed one
        assert by_endpoint[active].status == "pending" and by_endpoint[paused].status == "paused"
        # A second page run finds the same deliveries rather than making new ones.
        again, _ = await hot_path.ensure_deliveries(session, event=fan_out, after_endpoint_id=None, limit=10)
        assert {d.id for d, _ in again} == {d.id for d in by_endpoint.values()}

        # The enums are stored as their strings, on either database.
        conn = await session.connection()
        stored = (await conn.execute(text("SELECT endpoint_id, status FROM deliveries"))).all()
        assert sorted(tuple(row) for row in stored) == [(active, "pending"), (paused, "paused")]

        delivery, endpoint, loaded = await hot_path.load_for_delivery(session, delivery_id=by_endpoint[active].id)
        assert isinstance(delivery, hot_path.DeliveryRow) and delivery.status == DeliveryStatus.PENDING
        assert delivery.endpoint_id == active and delivery.attempts == 0 and delivery.next_attempt_at is None
        assert isinstance(endpoint, hot_path.EndpointRow)
        assert endpoint.secret == "whsec_secret1" and endpoint.headers == {"x-api-key": "k"}  # unsealed
        assert hot_path.live_secrets(endpoint, utcnow()) == ["whsec_secret1"]
        assert isinstance(loaded, hot_path.EventRow) and loaded.data == {"amount": 3}
        assert loaded.created_at.tzinfo is not None
        with pytest.raises(AttributeError):
            delivery.status = "succeeded"  # type: ignore[misc]  # a row is a snapshot

        attempt = {"started_at": utcnow(), "duration_ms": 5, "status_code": 200, "error": None, "response_body": ""}
        current = await hot_path.record_attempt(
            session, delivery=delivery, attempt=attempt, status=DeliveryStatus.SUCCEEDED, next_attempt_at=None
        )
        assert current
        after_attempt, _, _ = await hot_path.load_for_delivery(session, delivery_id=delivery.id)
        assert after_attempt is not None
        assert after_attempt.status == "succeeded" and after_attempt.attempts == 1
        # The row read before that attempt is stale now: a second attempt on it does not move the delivery.
        assert not await hot_path.record_attempt(
            session, delivery=delivery, attempt=attempt, status=DeliveryStatus.RETRYING, next_attempt_at=None
        )

        await session.commit()
        await crud.delete_endpoint(session, endpoint=await session.get_one(Endpoint, active))
        gone = await hot_path.load_for_delivery(session, delivery_id=delivery.id)
        assert gone[0] is not None and gone[1] is None and gone[2] is not None
        assert await hot_path.load_for_delivery(session, delivery_id="dlv_" + "0" * 28) == (None, None, None)
