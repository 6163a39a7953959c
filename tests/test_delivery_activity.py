"""The delivery activity, one HTTP attempt at a time, in seconds and without a stack.

The activity runs under Temporal's ActivityEnvironment against a real SQLite store file; only the
receiver is stood in for, by httpx's MockTransport as the transport of the worker's own client pool
(the one its POSTs go through, which follows no redirect).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select
from standardwebhooks import Webhook
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from hookline.activities.delivery import DEAD_LETTERED, ENDPOINT_PAUSED, RETRY_LATER, USER_AGENT, DeliveryActivities
from hookline.activities.http import ClientPool
from hookline.core import crypto
from hookline.core.config import Settings
from hookline.core.ids import event_workflow_id, new_id
from hookline.core.messages import DeliverInput, DeliverResult
from hookline.core.retry import RetrySchedule
from hookline.core.signing import generate_secret
from hookline.store.db import dispose, make_engine, make_sessionmaker
from hookline.store.schema import migrate
from hookline.store.tables import Application, Attempt, Delivery, Endpoint, Event, utcnow
from tests.harness import ENCRYPTION_KEY, FAST_RETRY

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
RETRY = RetrySchedule(**{**FAST_RETRY, "initial_interval_s": 5, "backoff_coefficient": 2.0, "max_interval_s": 60})
URL = "https://receiver.example/hooks/in"


@dataclass
class Seeded:
    delivery_id: str
    endpoint_id: str
    event_id: str
    secret: str


@dataclass
class Receiver:
    """What the stand-in receiver was sent, and what it answers."""

    answer: Handler
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(await request.aread())
        response = self.answer(request)
        return response if isinstance(response, httpx.Response) else await response


class Store:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'hookline.db'}", data_dir=tmp_path, allow_private_targets=True
        )
        self.engine = make_engine(self.settings)
        self.sessions = make_sessionmaker(self.engine)

    async def seed(self, *, url: str = URL, status: str = "active", **endpoint: object) -> Seeded:
        """An application, an endpoint, an event and its pending delivery, as the API and fan-out write them."""
        now, secret = utcnow(), generate_secret()
        app = Application(id=new_id("app"), name="acme", created_at=now, updated_at=now)
        ep = Endpoint(
            id=new_id("ep"), app_id=app.id, url=url, secret=secret, status=status, created_at=now, updated_at=now,
            **endpoint,
        )
        event_id = new_id("evt")
        event = Event(
            id=event_id, app_id=app.id, type="invoice.paid", data={"amount": 42, "note": "é"},
            workflow_id=event_workflow_id(event_id), created_at=now,
        )
        delivery = Delivery(
            id=new_id("dlv"), app_id=app.id, event_id=event_id, endpoint_id=ep.id, workflow_id=event.workflow_id,
            created_at=now, updated_at=now,
        )
        async with self.sessions() as session:
            for row in (app, ep, event, delivery):
                session.add(row)
                await session.flush()  # in this order: the foreign keys are enforced
            await session.commit()
        return Seeded(delivery.id, ep.id, event_id, secret)

    async def delivery(self, delivery_id: str) -> Delivery:
        async with self.sessions() as session:
            row = await session.get(Delivery, delivery_id)
            assert row is not None
            return row

    async def endpoint(self, endpoint_id: str) -> Endpoint:
        async with self.sessions() as session:
            row = await session.get(Endpoint, endpoint_id)
            assert row is not None
            return row

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        async with self.sessions() as session:
            stmt = select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(col(Attempt.number))
            return list((await session.exec(stmt)).all())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    crypto.install(crypto.Keyring(ENCRYPTION_KEY))  # secrets and headers are sealed at rest, as in production
    store = Store(tmp_path)
    migrate(store.settings.database_url)  # the schema as `hookline migrate` makes it
    yield store
    await dispose(store.engine)
    crypto.install(None)


@pytest.fixture
def answer_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], Receiver]:
    """Make the worker's client pool send to a stand-in receiver that answers with `handler`."""

    def install(handler: Handler) -> Receiver:
        receiver = Receiver(handler)
        # Only the transport is replaced: the clients keep the pool's settings.
        monkeypatch.setattr(ClientPool, "_transport", staticmethod(lambda *_: httpx.MockTransport(receiver)))
        return receiver

    return install


async def deliver(store: Store, seeded: Seeded, *, timeout_s: float = 5, timer_waits: bool = True) -> DeliverResult:
    pool = ClientPool(size=1)
    try:
        activities = DeliveryActivities(store.sessions, pool, store.settings)
        task = DeliverInput(delivery_id=seeded.delivery_id, retry=RETRY, timeout_s=timeout_s, timer_waits=timer_waits)
        return await ActivityEnvironment().run(activities.deliver, task)
    finally:
        await pool.aclose()


async def deliver_failing(store: Store, seeded: Seeded, **kw: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await deliver(store, seeded, **kw)  # type: ignore[arg-type]
    return failed.value


async def test_a_2xx_succeeds_once_with_a_body_and_signature_a_standard_verifier_accepts(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(204))
    seeded = await store.seed(headers={"X-Api-Key": "k-1"})

    assert await deliver(store, seeded) == DeliverResult(status_code=204)

    [request], [body] = receiver.requests, receiver.bodies
    assert request.method == "POST" and str(request.url) == URL
    payload = Webhook(seeded.secret).verify(body, dict(request.headers))
    assert payload == {"id": seeded.event_id, "type": "invoice.paid", "timestamp": payload["timestamp"],
                       "data": {"amount": 42, "note": "é"}}
    assert request.headers["webhook-id"] == seeded.event_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["x-api-key"] == "k-1"  # the endpoint's own header, unsealed
    delivery = await store.delivery(seeded.delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 204)
    [attempt] = await store.attempts(seeded.delivery_id)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 204, None)

    # A second run of the activity (Temporal retried it after a lost result) sends nothing again.
    assert await deliver(store, seeded) == DeliverResult(status_code=204)
    assert len(receiver.requests) == 1


async def test_during_a_rotation_both_secrets_sign_and_each_verifies(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(200))
    previous = generate_secret()
    seeded = await store.seed(previous_secret=previous, previous_secret_expires_at=utcnow() + timedelta(hours=1))

    await deliver(store, seeded)

    [request], [body] = receiver.requests, receiver.bodies
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (seeded.secret, previous):
        assert Webhook(secret).verify(body, dict(request.headers))["id"] == seeded.event_id


async def test_a_5xx_is_recorded_and_retried_after_the_schedules_delay(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    answer_with(lambda _: httpx.Response(503, text="down for maintenance"))
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    assert failed.type == "AttemptFailed" and not failed.non_retryable
    assert failed.next_retry_delay == timedelta(seconds=RETRY.delay_after(1))
    delivery = await store.delivery(seeded.delivery_id)
    assert (delivery.status, delivery.cycle_attempts, delivery.last_status_code) == ("retrying", 1, 503)
    assert delivery.next_attempt_at is not None
    due_in = delivery.next_attempt_at - datetime.now(timezone.utc)
    assert timedelta(0) < due_in <= timedelta(seconds=RETRY.delay_after(1))
    [attempt] = await store.attempts(seeded.delivery_id)
    assert (attempt.status_code, attempt.error, attempt.response_body) == (503, "HTTP 503", "down for maintenance")


async def test_the_last_allowed_attempt_dead_letters(store: Store, answer_with: Callable[[Handler], Receiver]) -> None:
    answer_with(lambda _: httpx.Response(500))
    seeded = await store.seed()
    for _ in range(RETRY.max_attempts - 1):
        assert (await deliver_failing(store, seeded)).type == "AttemptFailed"
        async with store.sessions() as session:  # the retry falls due (the workflow waits it out)
            row = await session.get(Delivery, seeded.delivery_id)
            assert row is not None
            row.next_attempt_at, row.updated_at = None, utcnow()
            session.add(row)
            await session.commit()

    failed = await deliver_failing(store, seeded)

    assert failed.type == DEAD_LETTERED and failed.non_retryable
    assert "attempts exhausted" in failed.message and "HTTP 500" in failed.message
    delivery = await store.delivery(seeded.delivery_id)
    assert (delivery.status, delivery.attempts) == ("dead_lettered", RETRY.max_attempts)


@pytest.mark.parametrize(
    "retry_after, waits_s",
    [("7", 7), ("0", 0), ("soon", RETRY.delay_after(1)), (None, RETRY.delay_after(1))],
)
async def test_retry_after_on_a_429_sets_the_next_delay(
    store: Store, answer_with: Callable[[Handler], Receiver], retry_after: str | None, waits_s: float
) -> None:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    answer_with(lambda _: httpx.Response(429, headers=headers))
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    assert failed.type == "AttemptFailed" and failed.next_retry_delay == timedelta(seconds=waits_s)


async def test_a_far_retry_after_is_capped_and_waited_out_on_a_workflow_timer(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    answer_with(lambda _: httpx.Response(503, headers={"retry-after": str(10 * 24 * 3600)}))
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    # Beyond what a delivery waits holding its slot: handed back to the workflow, at the setting's cap.
    assert failed.type == RETRY_LATER and failed.non_retryable
    assert list(failed.details) == [store.settings.retry_after_max_s]


async def test_a_410_dead_letters_at_once_and_disables_the_endpoint(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(410))
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    assert failed.type == DEAD_LETTERED and failed.non_retryable and "410" in failed.message
    assert (await store.delivery(seeded.delivery_id)).status == "dead_lettered"
    endpoint = await store.endpoint(seeded.endpoint_id)
    assert endpoint.status == "disabled" and "410" in (endpoint.disabled_reason or "")
    assert len(receiver.requests) == 1


async def test_a_receiver_that_does_not_answer_in_time_costs_one_timeout(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    async def hang(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)  # cancelled by the attempt's deadline
        return httpx.Response(200)

    answer_with(hang)
    seeded = await store.seed()

    started = asyncio.get_running_loop().time()
    failed = await deliver_failing(store, seeded, timeout_s=0.3)

    assert asyncio.get_running_loop().time() - started < 5
    assert failed.type == "AttemptFailed"
    [attempt] = await store.attempts(seeded.delivery_id)
    assert attempt.status_code is None and attempt.error == "timed out after 0.3s"
    assert (await store.delivery(seeded.delivery_id)).status == "retrying"


async def test_a_redirect_is_not_followed(store: Store, answer_with: Callable[[Handler], Receiver]) -> None:
    receiver = answer_with(lambda _: httpx.Response(302, headers={"location": "http://169.254.169.254/latest/meta-data"}))
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    assert [str(r.url) for r in receiver.requests] == [URL]  # the Location was never asked for
    assert failed.type == "AttemptFailed"
    [attempt] = await store.attempts(seeded.delivery_id)
    assert (attempt.status_code, attempt.error) == (302, "HTTP 302")


async def test_a_connection_error_is_recorded_and_retried(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    answer_with(refuse)
    seeded = await store.seed()

    failed = await deliver_failing(store, seeded)

    assert failed.type == "AttemptFailed"
    [attempt] = await store.attempts(seeded.delivery_id)
    assert attempt.status_code is None and attempt.error == "ConnectError: connection refused"


async def test_a_paused_endpoint_sends_nothing_and_spends_no_attempt(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(200))
    seeded = await store.seed(status="paused")

    failed = await deliver_failing(store, seeded)

    assert failed.type == ENDPOINT_PAUSED and failed.non_retryable
    assert receiver.requests == [] and await store.attempts(seeded.delivery_id) == []
    assert (await store.delivery(seeded.delivery_id)).attempts == 0


async def test_a_private_destination_is_refused_without_a_connection(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(200))
    store.settings = store.settings.model_copy(update={"allow_private_targets": False})
    seeded = await store.seed(url="https://169.254.169.254/latest/meta-data")

    failed = await deliver_failing(store, seeded)

    assert failed.type == DEAD_LETTERED and failed.non_retryable
    assert receiver.requests == []
    [attempt] = await store.attempts(seeded.delivery_id)
    assert attempt.status_code is None and (attempt.error or "").startswith("blocked: 169.254.169.254")


async def test_the_body_is_the_event_envelope_byte_for_byte(
    store: Store, answer_with: Callable[[Handler], Receiver]
) -> None:
    receiver = answer_with(lambda _: httpx.Response(200))
    seeded = await store.seed()

    await deliver(store, seeded)

    body = receiver.bodies[0].decode()
    assert json.loads(body)["data"] == {"amount": 42, "note": "é"}
    assert ", " not in body and ": " not in body and "é" in body  # compact, UTF-8 as is
    assert json.loads(body)["timestamp"].endswith("Z")
