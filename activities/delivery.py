"""The delivery activity: load, sign, POST, classify, record. One call is one HTTP attempt."""

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from hookline.activities import payloads
from hookline.activities.http import (
    RESPONSE_BODY_LIMIT, ClientPool, DestinationBlocked, destination_refusal, retry_after_seconds,
)
from hookline.activities.payloads import Outgoing
from hookline.core import versions as versions_core
from hookline.core.config import Settings
from hookline.core.messages import DeliverInput, DeliverResult
from hookline.core.metrics import ATTEMPT_SECONDS, DELIVERY_ATTEMPTS, VERSION_DELIVERIES
from hookline.core.signing import signature_header
from hookline.core.version import VERSION
from hookline.core.versions import TransformFailed
from hookline.store import hot_path
from hookline.store import versions as versions_store
from hookline.store.hot_path import Record

USER_AGENT = f"Hookline/{VERSION}"

# ApplicationError types the event workflow tells apart.
ENDPOINT_PAUSED = "EndpointPaused"
DEAD_LETTERED = "DeadLettered"
NOT_YET_DUE = "NotYetDue"
CHANGED_MEANWHILE = "ChangedMeanwhile"
# The next attempt is far off: the workflow waits for it on a timer (details: the seconds),
# so the delivery gives its fan-out window slot to others meanwhile.
RETRY_LATER = "RetryLater"

# Waits up to this long stay with Temporal's activity retry (no history events, the slot kept);
# longer ones become workflow timers that hold no slot.
HOLD_SLOT_UP_TO = timedelta(seconds=60)

# Temporal schedules retries in whole seconds; an attempt this close to its time is due.
DUE_TOLERANCE = timedelta(seconds=1.5)


def retry_error(message: str, delay: timedelta, *, retryable_type: str, timer_waits: bool) -> ApplicationError:
    """The error that makes the next attempt come after `delay`."""
    if timer_waits and delay > HOLD_SLOT_UP_TO:
        return ApplicationError(message, delay.total_seconds(), type=RETRY_LATER, non_retryable=True)
    return ApplicationError(message, type=retryable_type, next_retry_delay=delay)


def envelope(event: Record, outgoing: Outgoing | None = None) -> str:
    """The body every attempt of an event sends, byte for byte. A versioned type's says which
    version `data` is at; a type without versions keeps the envelope it always had."""
    body = {"id": event.id, "type": event.type}
    if outgoing is not None and outgoing.version is not None:
        body["version"] = versions_core.label(outgoing.version)
    body["timestamp"] = event.created_at.isoformat().replace("+00:00", "Z")
    body["data"] = outgoing.data if outgoing is not None else event.data
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def version_headers(outgoing: Outgoing) -> dict[str, str]:
    """`webhook-version` always (v1 for a type without versions); a deprecated version adds
    `webhook-deprecation: true` and, with a sunset date, `sunset` (RFC 8594)."""
    headers = {"webhook-version": versions_core.label(outgoing.version or 1)}
    if outgoing.deprecated:
        headers["webhook-deprecation"] = "true"
        if outgoing.sunset_at is not None:
            headers["sunset"] = format_datetime(outgoing.sunset_at, usegmt=True)
    return headers


class DeliveryActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], http: ClientPool, settings: Settings):
        self._sessions = sessions
        self._http = http
        self._settings = settings

    @activity.defn
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        async with self._sessions() as session:
            delivery, endpoint, event = await hot_path.load_for_delivery(session, delivery_id=input.delivery_id)
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
                raise retry_error(
                    "next attempt not due yet",
                    delivery.next_attempt_at - now,
                    retryable_type=NOT_YET_DUE,
                    timer_waits=input.timer_waits,
                )
            try:
                outgoing = await payloads.outgoing(
                    session, event=event, endpoint=endpoint, max_bytes=self._settings.max_body_bytes
                )
            except TransformFailed as exc:  # bad data is never sent: a dead letter that says why
                await self._close(session, delivery, str(exc))
            # End the read transaction: no connection is held while the receiver takes its time.
            await session.commit()
            status_code = await self._attempt(session, delivery, endpoint, event, input, outgoing)
            if outgoing.version is not None:
                await versions_store.record_delivered(
                    session, delivery_id=delivery.id, type_name=event.type, version=outgoing.version
                )
                VERSION_DELIVERIES.labels(event.type, versions_core.label(outgoing.version)).inc()
            return DeliverResult(status_code=status_code)

    async def _attempt(
        self, session: AsyncSession, delivery: Record, endpoint: Record, event: Record, input: DeliverInput,
        outgoing: Outgoing,
    ) -> int:
        """One signed POST, recorded; returns the 2xx status, or raises what the workflow acts on."""
        body = envelope(event, outgoing)
        started = datetime.now(timezone.utc)
        versioning = version_headers(outgoing)
        custom = endpoint.headers or {}
        if "sunset" in versioning:  # the one of these a custom header could name: Hookline's wins
            custom = {name: value for name, value in custom.items() if name.lower() != "sunset"}
        headers = {
            **custom,
            **versioning,
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.id,
            "webhook-timestamp": str(int(started.timestamp())),
            "webhook-signature": signature_header(
                hot_path.live_secrets(endpoint, started), event.id, started, body
            ),
        }
        clock = time.monotonic()
        response: httpx.Response | None = None
        response_body: str | None = None
        error: str | None = None
        blocked: str | None = None
        try:
            # One deadline for the whole attempt: destination check (a DNS lookup), connect, send,
            # and the first 4 KiB back.
            async with asyncio.timeout(input.timeout_s):
                if not self._settings.allow_private_targets:
                    blocked = await destination_refusal(endpoint.url)
                if blocked is None:
                    client = self._http.for_url(endpoint.url)
                    async with client.stream("POST", endpoint.url, content=body.encode(), headers=headers) as response:
                        response_body = await _read_head(response)
        except TimeoutError:
            error = f"timed out after {input.timeout_s:g}s"
        except DestinationBlocked as exc:  # the connect-time guard: the name answered otherwise now
            blocked = str(exc).removeprefix("refused: ")
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = int((time.monotonic() - clock) * 1000)
        status_code = response.status_code if response is not None and error is None else None
        attempt = {
            "started_at": started, "duration_ms": duration_ms,
            "status_code": status_code, "error": error, "response_body": response_body,
        }
        ATTEMPT_SECONDS.observe(duration_ms / 1000)

        delay: float | None = None
        if blocked is not None:
            status, attempt["error"] = "dead_lettered", f"blocked: {blocked}"  # no connection was made
        elif status_code is not None and 200 <= status_code < 300:
            status = "succeeded"
        elif status_code == 410:
            status, attempt["error"] = "dead_lettered", "410 Gone: endpoint disabled"
        else:
            attempt["error"] = attempt["error"] or f"HTTP {status_code}"
            if delivery.cycle_attempts + 1 >= input.retry.max_attempts:
                status = "dead_lettered"
            else:
                status, delay = "retrying", input.retry.delay_after(delivery.cycle_attempts + 1)
                if response is not None and status_code in (429, 503):
                    asked = retry_after_seconds(response, started)
                    if asked is not None:
                        delay = min(asked, self._settings.retry_after_max_s)
        next_attempt_at = None if delay is None else datetime.now(timezone.utc) + timedelta(seconds=delay)
        current = await hot_path.record_attempt(
            session, delivery=delivery, attempt=attempt, status=status, next_attempt_at=next_attempt_at
        )
        DELIVERY_ATTEMPTS.labels(status).inc()
        if status_code == 410:
            await hot_path.set_endpoint_disabled(session, endpoint_id=endpoint.id, reason="receiver answered 410 Gone")
        if not current:
            # Replayed (or closed) while this attempt was on its way: go again and act on the new state.
            raise ApplicationError(
                "delivery changed during this attempt", type=CHANGED_MEANWHILE, next_retry_delay=timedelta(seconds=1)
            )
        if status_code is not None and status == "succeeded":
            return status_code
        if status == "dead_lettered":
            closed_at_once = status_code == 410 or blocked is not None
            reason = attempt["error"] if closed_at_once else f"attempts exhausted; last: {attempt['error']}"
            raise ApplicationError(reason, type=DEAD_LETTERED, non_retryable=True)
        assert delay is not None
        # The delay is set here, from the delivery's own count, so it survives pause and resume.
        raise retry_error(
            attempt["error"], timedelta(seconds=delay), retryable_type="AttemptFailed", timer_waits=input.timer_waits
        )

    async def _close(self, session: AsyncSession, delivery: Record, reason: str) -> None:
        await hot_path.set_delivery_status(
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
