"""The delivery activity: load, sign, POST, classify, record. One call is one HTTP attempt."""

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import RESPONSE_BODY_LIMIT, ClientPool, resolves_to_private, retry_after_seconds
from core.config import Settings
from core.messages import DeliverInput, DeliverResult
from core.metrics import ATTEMPT_SECONDS, DELIVERY_ATTEMPTS
from core.signing import signature_header
from core.version import VERSION
from store import queries
from store.tables import Attempt, Delivery, Endpoint, Event

USER_AGENT = f"Hookline/{VERSION}"

# ApplicationError types the event workflow tells apart.
ENDPOINT_PAUSED = "EndpointPaused"
DEAD_LETTERED = "DeadLettered"
NOT_YET_DUE = "NotYetDue"

# Temporal schedules retries in whole seconds; an attempt this close to its time is due.
DUE_TOLERANCE = timedelta(seconds=1.5)


def envelope(event: Event) -> str:
    """The body every attempt of an event sends, byte for byte."""
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
            "data": event.data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


class DeliveryActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], http: ClientPool, settings: Settings):
        self._sessions = sessions
        self._http = http
        self._settings = settings

    @activity.defn
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        async with self._sessions() as session:
            delivery, endpoint, event = await queries.load_for_delivery(session, delivery_id=input.delivery_id)
            if delivery is None:
                raise ApplicationError("delivery no longer exists", type=DEAD_LETTERED, non_retryable=True)
            if delivery.status == "succeeded":  # an earlier try got through; do not send again
                return DeliverResult(status_code=delivery.last_status_code or 200)
            if delivery.status == "dead_lettered":
                raise ApplicationError(delivery.last_error or "dead-lettered", type=DEAD_LETTERED, non_retryable=True)
            if endpoint is None or event is None:
                await self._close(session, delivery, "endpoint or event was deleted")
            assert endpoint is not None and event is not None
            if endpoint.status == "paused":
                raise ApplicationError("endpoint is paused", type=ENDPOINT_PAUSED, non_retryable=True)
            if endpoint.status == "disabled":
                await self._close(session, delivery, "endpoint is disabled")
            now = datetime.now(timezone.utc)
            if delivery.next_attempt_at is not None and delivery.next_attempt_at - now > DUE_TOLERANCE:
                # A run that took over this delivery mid-backoff: wait out the rest, burn no attempt.
                raise ApplicationError(
                    "next attempt not due yet", type=NOT_YET_DUE, next_retry_delay=delivery.next_attempt_at - now
                )
            if not self._settings.allow_private_targets and await resolves_to_private(endpoint.url):
                await self._close(session, delivery, "endpoint resolves to a private address")
            # End the read transaction: no connection is held while the receiver takes its time.
            await session.commit()
            await self._attempt(session, delivery, endpoint, event, input)
            return DeliverResult(status_code=delivery.last_status_code or 200)

    async def _attempt(
        self, session: AsyncSession, delivery: Delivery, endpoint: Endpoint, event: Event, input: DeliverInput
    ) -> None:
        body = envelope(event)
        started = datetime.now(timezone.utc)
        headers = {
            **(endpoint.headers or {}),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.id,
            "webhook-timestamp": str(int(started.timestamp())),
            "webhook-signature": signature_header(
                queries.live_secrets(endpoint, started), event.id, started, body
            ),
        }
        clock = time.monotonic()
        response: httpx.Response | None = None
        response_body: str | None = None
        error: str | None = None
        try:
            # One deadline for the whole attempt: connect, send, and the first 4 KiB back.
            async with asyncio.timeout(input.timeout_s):
                client = self._http.for_url(endpoint.url)
                async with client.stream("POST", endpoint.url, content=body.encode(), headers=headers) as response:
                    response_body = await _read_head(response)
        except TimeoutError:
            error = f"timed out after {input.timeout_s:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = int((time.monotonic() - clock) * 1000)
        status_code = response.status_code if response is not None and error is None else None
        attempt = Attempt(
            delivery_id=delivery.id, number=0, started_at=started, duration_ms=duration_ms,
            status_code=status_code, error=error, response_body=response_body,
        )
        cycle_attempt = delivery.cycle_attempts + 1
        ATTEMPT_SECONDS.observe(duration_ms / 1000)

        if status_code is not None and 200 <= status_code < 300:
            await queries.record_attempt(session, delivery=delivery, attempt=attempt, status="succeeded", next_attempt_at=None)
            DELIVERY_ATTEMPTS.labels("succeeded").inc()
            return
        if status_code == 410:
            attempt.error = "410 Gone: endpoint disabled"
            await queries.record_attempt(session, delivery=delivery, attempt=attempt, status="dead_lettered", next_attempt_at=None)
            await queries.save(session, endpoint, {"status": "disabled", "disabled_reason": "receiver answered 410 Gone"})
            DELIVERY_ATTEMPTS.labels("dead_lettered").inc()
            raise ApplicationError(attempt.error, type=DEAD_LETTERED, non_retryable=True)
        if attempt.error is None:
            attempt.error = f"HTTP {status_code}"
        if cycle_attempt >= input.retry.max_attempts:
            await queries.record_attempt(session, delivery=delivery, attempt=attempt, status="dead_lettered", next_attempt_at=None)
            DELIVERY_ATTEMPTS.labels("dead_lettered").inc()
            raise ApplicationError(f"attempts exhausted; last: {attempt.error}", type=DEAD_LETTERED, non_retryable=True)

        delay = input.retry.delay_after(cycle_attempt)
        if response is not None and status_code in (429, 503):
            asked = retry_after_seconds(response, started)
            if asked is not None:
                delay = min(asked, self._settings.retry_after_max_s)
        await queries.record_attempt(
            session, delivery=delivery, attempt=attempt, status="retrying",
            next_attempt_at=datetime.now(timezone.utc) + timedelta(seconds=delay),
        )
        DELIVERY_ATTEMPTS.labels("retrying").inc()
        # The delay is set here, from the delivery's own count, so it survives pause and resume.
        raise ApplicationError(attempt.error, type="AttemptFailed", next_retry_delay=timedelta(seconds=delay))

    async def _close(self, session: AsyncSession, delivery: Delivery, reason: str) -> None:
        await queries.set_delivery_status(
            session, delivery_id=delivery.id, status="dead_lettered", only_from=("pending", "retrying", "paused"), error=reason
        )
        raise ApplicationError(reason, type=DEAD_LETTERED, non_retryable=True)


async def _read_head(response: httpx.Response) -> str:
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks.extend(chunk)
        if len(chunks) >= RESPONSE_BODY_LIMIT:
            break
    return bytes(chunks[:RESPONSE_BODY_LIMIT]).decode("utf-8", errors="replace")
