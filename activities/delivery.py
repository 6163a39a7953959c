"""The delivery activity: load, sign, POST, classify, record. One call is one HTTP attempt."""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from hookline.activities import payloads
from hookline.activities.http import (
    RESPONSE_BODY_LIMIT, ClientPool, DestinationBlocked, destination_refusal,
)
from hookline.activities.payloads import Outgoing
from hookline.core import telemetry
from hookline.core import versions as versions_core
from hookline.core.config import Settings
from hookline.core.messages import DeliverInput, DeliverResult, RateSlot
from hookline.core.metrics import ATTEMPT_SECONDS, DEAD_LETTERS, DELIVERY_ATTEMPTS, DELIVERY_LATENCY, VERSION_DELIVERIES
from hookline.core.summaries import url_host
from hookline.core.operational import ENDPOINT_DISABLED, FAILING, HEALTHY
from hookline.core.outcomes import Outcome, classify
from hookline.core.signing import signature_header
from hookline.core.statuses import UNSETTLED_STATUSES, AttemptErrorKind, DeliveryStatus, EndpointStatus
from hookline.core.version import VERSION
from hookline.core.versions import TransformFailed
from hookline.store import health, hot_path
from hookline.store import versions as versions_store
from hookline.store.hot_path import DeliveryRow, EndpointRow, EventRow

if TYPE_CHECKING:
    from hookline.services.endpoint_health import HealthNotifier

USER_AGENT = f"Hookline/{VERSION}"

log = logging.getLogger("hookline.delivery")

# ApplicationError types the event workflow tells apart (see AttemptErrorKind).
ENDPOINT_PAUSED = AttemptErrorKind.ENDPOINT_PAUSED
DEAD_LETTERED = AttemptErrorKind.DEAD_LETTERED
NOT_YET_DUE = AttemptErrorKind.NOT_YET_DUE
CHANGED_MEANWHILE = AttemptErrorKind.CHANGED_MEANWHILE
# The next attempt is far off: the workflow waits for it on a timer (details: the seconds),
# so the delivery gives its fan-out window slot to others meanwhile.
RETRY_LATER = AttemptErrorKind.RETRY_LATER
# Over the endpoint's rate_limit: the workflow waits on a timer, then tries again in the slot this
# try reserved, with no attempt spent (details: the seconds to wait, the RateSlot).
RATE_LIMITED = AttemptErrorKind.RATE_LIMITED
# A failing endpoint's probe did not get through (it spends no retry of the delivery).
PROBE_FAILED = AttemptErrorKind.PROBE_FAILED

# Waits up to this long stay with Temporal's activity retry (no history events, the slot kept);
# longer ones become workflow timers that hold no slot.
HOLD_SLOT_UP_TO = timedelta(seconds=60)

# Temporal schedules retries in whole seconds; an attempt this close to its time is due.
DUE_TOLERANCE = timedelta(seconds=1.5)

# A workflow timer and the activity after it can take about a second to come round on a loaded
# machine: the workflow wakes up this much before its slot and the activity sleeps the rest. At
# high rates less, so that at most RATE_LEAD_SLOTS deliveries per endpoint sleep in activities.
RATE_LEAD_MAX_S = 1.0
RATE_LEAD_SLOTS = 10
# A slot missed by more than this (a worker crashed or lagged) is given up for a new one, once:
# deliveries held up together must not reach the receiver as one burst.
RATE_SLOT_MISSED_S = 1.0


def retry_error(
    message: str, delay: timedelta, *, retryable_type: AttemptErrorKind, timer_waits: bool
) -> ApplicationError:
    """The error that makes the next attempt come after `delay`."""
    if timer_waits and delay > HOLD_SLOT_UP_TO:
        return ApplicationError(message, delay.total_seconds(), type=RETRY_LATER, non_retryable=True)
    return ApplicationError(message, type=retryable_type, next_retry_delay=delay)


def envelope(event: EventRow, outgoing: Outgoing | None = None) -> str:
    """The body every attempt of an event sends, byte for byte. A versioned type's says which
    version `data` is at; a type without versions keeps the envelope it always had."""
    body: dict[str, Any] = {"id": event.id, "type": event.type}
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


def _headers(
    endpoint: EndpointRow, event: EventRow, outgoing: Outgoing, body: str, started: datetime
) -> dict[str, str]:
    """The attempt's headers: the endpoint's own, then the version's, then the signed Standard Webhooks set."""
    versioning = version_headers(outgoing)
    custom = endpoint.headers or {}
    if "sunset" in versioning:  # the one of these a custom header could name: Hookline's wins
        custom = {name: value for name, value in custom.items() if name.lower() != "sunset"}
    return {
        **custom,
        **versioning,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event.id,
        "webhook-timestamp": str(int(started.timestamp())),
        "webhook-signature": signature_header(hot_path.live_secrets(endpoint, started), event.id, started, body),
    }


@dataclass(frozen=True)
class Sent:
    """What one POST came to: the receiver's answer, or why there was none."""

    duration_ms: int
    status_code: int | None  # None: no complete answer (`error` says why) or nothing sent (`blocked`)
    retry_after: str | None
    response_body: str | None
    error: str | None
    blocked: str | None  # the destination guard's refusal


class DeliveryActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        http: ClientPool,
        settings: Settings,
        notifier: "HealthNotifier | None" = None,
    ):
        self._sessions = sessions
        self._http = http
        self._settings = settings
        # Starts health watches and publishes operational events; None: neither (bench variants).
        self._notifier = notifier

    @activity.defn
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        async with self._sessions() as session:
            delivery, endpoint, event = await hot_path.load_for_delivery(session, delivery_id=input.delivery_id)
            if delivery is None:
                raise ApplicationError("delivery no longer exists", type=DEAD_LETTERED, non_retryable=True)
            if delivery.status == DeliveryStatus.SUCCEEDED:  # an earlier try got through; do not send again
                return DeliverResult(status_code=delivery.last_status_code or 200)
            if delivery.status == DeliveryStatus.DEAD_LETTERED:
                # Announce again (once per key): the try that dead-lettered it may have failed to.
                await self._announce_dead_letter(delivery, delivery.attempts)
                raise ApplicationError(delivery.last_error or "dead-lettered", type=DEAD_LETTERED, non_retryable=True)
            if endpoint is None or event is None:
                await self._close(session, delivery, "endpoint or event was deleted")
            assert endpoint is not None and event is not None
            if endpoint.status == EndpointStatus.PAUSED:
                raise ApplicationError("endpoint is paused", type=ENDPOINT_PAUSED, non_retryable=True)
            if endpoint.status == EndpointStatus.DISABLED:
                await self._close(session, delivery, "endpoint is disabled")
            if endpoint.health == FAILING and not input.probe:
                # The breaker is open: hold like a pause, no attempt; the endpoint's watch probes and releases.
                if delivery.status == "paused" and self._notifier is not None:
                    # Held already: its hourly re-check. Make sure a watch runs (one lost to a
                    # terminate by hand would otherwise hold it for good); a running one is kept.
                    await self._notifier.watch(endpoint.id)
                raise ApplicationError("endpoint is failing", type=ENDPOINT_PAUSED, non_retryable=True)
            now = datetime.now(timezone.utc)
            due = delivery.next_attempt_at
            if not input.probe and due is not None and due - now > DUE_TOLERANCE:
                # A run that took over this delivery mid-backoff: wait out the rest, burn no attempt.
                raise retry_error(
                    "next attempt not due yet",
                    due - now,
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
            if endpoint.rate_limit is not None:
                await self._take_rate_slot(session, endpoint, endpoint.rate_limit, input)
            status_code = await self._attempt(session, delivery, endpoint, event, input, outgoing)
            if outgoing.version is not None:
                await versions_store.record_delivered(
                    session, delivery_id=delivery.id, type_name=event.type, version=outgoing.version
                )
                VERSION_DELIVERIES.labels(event.type, versions_core.label(outgoing.version)).inc()
            return DeliverResult(status_code=status_code)

    async def _take_rate_slot(
        self, session: AsyncSession, endpoint: EndpointRow, rate: int, input: DeliverInput
    ) -> None:
        """Return at the delivery's send slot in the endpoint's rate limit (`rate`), or hand a longer
        wait to the workflow (RateLimited) with the slot reserved, which its next try sends in."""
        lead = min(RATE_LEAD_MAX_S, RATE_LEAD_SLOTS / rate)
        slot = input.rate_slot
        # A reserved slot sends one attempt: a Temporal retry of this activity is another send.
        if slot is None or activity.info().attempt > 1:
            slot = RateSlot(at=await self._reserve(session, endpoint, rate))
        elif time.time() - slot.at > RATE_SLOT_MISSED_S and not slot.renewed:
            slot = RateSlot(at=await self._reserve(session, endpoint, rate), renewed=True)
        wait_s = slot.at - time.time()
        if wait_s > lead:
            raise ApplicationError(
                "over the endpoint's rate_limit", wait_s - lead, slot, type=RATE_LIMITED, non_retryable=True
            )
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    async def _reserve(self, session: AsyncSession, endpoint: EndpointRow, rate: int) -> float:
        return await hot_path.reserve_rate_slot(
            session, endpoint_id=endpoint.id, rate_limit=rate, now=time.time()
        )

    async def _attempt(
        self, session: AsyncSession, delivery: DeliveryRow, endpoint: EndpointRow, event: EventRow, input: DeliverInput,
        outgoing: Outgoing,
    ) -> int:
        """One signed POST, recorded; returns the 2xx status, or raises what the workflow acts on."""
        body = envelope(event, outgoing)
        started = datetime.now(timezone.utc)
        sent = await self._send(endpoint, body, _headers(endpoint, event, outgoing, body, started), input.timeout_s)
        ATTEMPT_SECONDS.observe(sent.duration_ms / 1000)
        outcome = classify(
            status_code=sent.status_code, retry_after=sent.retry_after, error=sent.error, blocked=sent.blocked,
            attempt_number=delivery.cycle_attempts + 1, schedule=input.retry,
            retry_after_max_s=self._settings.retry_after_max_s, now=started,
        )
        attempt: dict[str, Any] = {
            "started_at": started, "duration_ms": sent.duration_ms,
            "status_code": sent.status_code, "error": outcome.error, "response_body": sent.response_body,
        }
        if input.probe and outcome.blames_endpoint:
            raise await self._record_failed_probe(session, delivery, attempt)
        current = await self._record(session, delivery, endpoint, event, attempt, outcome, probe=input.probe)
        if not current:
            # Replayed (or closed) while this attempt was on its way: go again and act on the new state.
            raise ApplicationError(
                "delivery changed during this attempt", type=CHANGED_MEANWHILE, next_retry_delay=timedelta(seconds=1)
            )
        if outcome.succeeded and sent.status_code is not None:
            return sent.status_code
        if outcome.status == DeliveryStatus.DEAD_LETTERED:
            await self._announce_dead_letter(delivery, delivery.attempts + 1)
            raise ApplicationError(outcome.dead_letter_reason, type=DEAD_LETTERED, non_retryable=True)
        assert outcome.delay_s is not None
        # The delay is set here, from the delivery's own count, so it survives pause and resume.
        raise retry_error(
            attempt["error"], timedelta(seconds=outcome.delay_s),
            retryable_type=AttemptErrorKind.ATTEMPT_FAILED, timer_waits=input.timer_waits,
        )

    async def _send(self, endpoint: EndpointRow, body: str, headers: dict[str, str], timeout_s: float) -> Sent:
        """The POST itself, through the destination guard; every failure is an answer, none raises."""
        clock = time.monotonic()
        response: httpx.Response | None = None
        response_body: str | None = None
        error: str | None = None
        blocked: str | None = None
        try:
            # One deadline for the whole attempt: destination check (a DNS lookup), connect, send,
            # and the first 4 KiB back.
            async with asyncio.timeout(timeout_s):
                if not self._settings.allow_private_targets:
                    blocked = await destination_refusal(endpoint.url)
                if blocked is None:
                    async with self._http.post(endpoint.url, body.encode(), headers) as response:
                        response_body = await _read_head(response)
        except TimeoutError:
            error = f"timed out after {timeout_s:g}s"
        except DestinationBlocked as exc:  # the connect-time guard: the name answered otherwise now
            blocked = str(exc).removeprefix("refused: ")
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        answered = response is not None and error is None
        return Sent(
            duration_ms=int((time.monotonic() - clock) * 1000),
            status_code=response.status_code if answered and response is not None else None,
            retry_after=response.headers.get("retry-after") if answered and response is not None else None,
            response_body=response_body, error=error, blocked=blocked,
        )

    async def _record_failed_probe(
        self, session: AsyncSession, delivery: DeliveryRow, attempt: dict[str, Any]
    ) -> ApplicationError:
        """The attempt is recorded; the delivery stays held as it was, its retry budget untouched.
        Returns the error that tells the probing workflow."""
        await hot_path.record_attempt(
            session, delivery=delivery, attempt=attempt, status=DeliveryStatus(delivery.status),
            next_attempt_at=delivery.next_attempt_at, spends_budget=False,
        )
        DELIVERY_ATTEMPTS.labels("probe_failed").inc()
        return ApplicationError(attempt["error"], type=PROBE_FAILED, non_retryable=True)

    async def _record(
        self, session: AsyncSession, delivery: DeliveryRow, endpoint: EndpointRow, event: EventRow,
        attempt: dict[str, Any], outcome: Outcome, *, probe: bool,
    ) -> bool:
        """Record the attempt and its consequences (metrics, the breaker's count, a 410's disable);
        False if the delivery changed meanwhile and the attempt did not set its status."""
        delay = outcome.delay_s
        next_attempt_at = None if delay is None else datetime.now(timezone.utc) + timedelta(seconds=delay)
        current = await hot_path.record_attempt(
            session, delivery=delivery, attempt=attempt, status=outcome.status, next_attempt_at=next_attempt_at
        )
        DELIVERY_ATTEMPTS.labels(outcome.status).inc()
        self._report(delivery, endpoint, event, attempt, outcome, outcome.status if current else "superseded")
        await self._count_for_breaker(
            session, endpoint, failed=outcome.blames_endpoint, succeeded=outcome.succeeded, probe=probe
        )
        if outcome.gone:
            await self._disable_gone(session, endpoint)
        return current

    async def _disable_gone(self, session: AsyncSession, endpoint: EndpointRow) -> None:
        await hot_path.set_endpoint_disabled(session, endpoint_id=endpoint.id, reason="receiver answered 410 Gone")
        if self._notifier is not None:
            await self._notifier.announce(
                type=ENDPOINT_DISABLED, app_id=endpoint.app_id,
                data={"endpoint_id": endpoint.id, "reason": "receiver answered 410 Gone"},
                # Deliveries that met the 410 together read the same endpoint row: one event.
                key=f"{endpoint.id}:{endpoint.updated_at.isoformat()}",
            )

    async def _close(self, session: AsyncSession, delivery: DeliveryRow, reason: str) -> None:
        closed = await hot_path.set_delivery_status(
            session, delivery_id=delivery.id, status=DeliveryStatus.DEAD_LETTERED, only_from=UNSETTLED_STATUSES,
            error=reason,
        )
        if closed:
            DEAD_LETTERS.labels("endpoint_closed").inc()
            log.info(
                "delivery %s to endpoint %s of event %s dead-lettered: %s", delivery.id, delivery.endpoint_id,
                delivery.event_id, reason,
                extra={"event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id, "delivery_id": delivery.id,
                       "outcome": "dead_lettered", "reason": "endpoint_closed"},
            )
            await self._announce_dead_letter(delivery, delivery.attempts)
        raise ApplicationError(reason, type=DEAD_LETTERED, non_retryable=True)

    async def _count_for_breaker(
        self, session: AsyncSession, endpoint: EndpointRow, *, failed: bool, succeeded: bool, probe: bool
    ) -> None:
        """Failures in a row per endpoint: a write on each failure, on a success only to end a run."""
        if succeeded and endpoint.consecutive_failures:
            await health.count_success(session, endpoint_id=endpoint.id)
        if not failed:
            return
        count = await health.count_failure(session, endpoint_id=endpoint.id)
        tripped = count >= self._settings.breaker_failures and endpoint.health == HEALTHY and not probe
        if tripped and self._notifier is not None:
            await self._notifier.watch(endpoint.id)  # its first act opens the breaker, once

    async def _announce_dead_letter(self, delivery: DeliveryRow, attempts: int) -> None:
        if self._notifier is not None:
            await self._notifier.announce_dead_letter(
                app_id=delivery.app_id, endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
                delivery_id=delivery.id, attempts=attempts,
            )

    @staticmethod
    def _report(
        delivery: DeliveryRow, endpoint: EndpointRow, event: EventRow, attempt: dict, verdict: Outcome, outcome: str
    ) -> None:
        """Metrics, span attributes and the log line of one recorded attempt: ids, number, outcome, a
        status code or the kind of error. Never the URL, a header, the body or an error's text."""
        status_code = attempt["status_code"]
        if outcome == "succeeded":
            DELIVERY_LATENCY.observe(max(0.0, (datetime.now(timezone.utc) - event.created_at).total_seconds()))
        elif outcome == "dead_lettered":
            DEAD_LETTERS.labels(verdict.dead_letter_kind).inc()
        number = delivery.attempts + 1  # as the store numbers it, unless another attempt raced this one
        result = (
            str(status_code) if status_code is not None
            else "blocked" if verdict.blocked else _error_kind(attempt["error"])
        )
        ids = {"event_id": event.id, "endpoint_id": endpoint.id, "delivery_id": delivery.id}
        telemetry.annotate(**ids, attempt=number, outcome=outcome, status_code=status_code, host=url_host(endpoint.url))
        log.info(
            "delivery %s to endpoint %s of event %s: attempt %d %s (%s, %d ms)",
            delivery.id, endpoint.id, event.id, number, outcome, result, attempt["duration_ms"],
            extra={**ids, "app_id": event.app_id, "attempt": number, "outcome": outcome, "status_code": status_code,
                   "result": result, "duration_ms": attempt["duration_ms"]},
        )


def _error_kind(error: str | None) -> str:
    """`timeout` or the exception's class name: an error's text may quote the URL it was about."""
    if error is None:
        return "error"
    if error.startswith("timed out"):
        return "timeout"
    return error.split(":", 1)[0]


async def _read_head(response: httpx.Response) -> str:
    chunks = bytearray()
    async for chunk in response.aiter_bytes():
        chunks.extend(chunk)
        if len(chunks) >= RESPONSE_BODY_LIMIT:
            break
    return bytes(chunks[:RESPONSE_BODY_LIMIT]).decode("utf-8", errors="replace")
