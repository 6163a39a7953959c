"""What one delivery attempt's HTTP outcome means: a pure decision, no I/O, so it is tested as a table.

The delivery activity (activities/delivery.py) makes the attempt, asks `classify` what it means,
and records and acts on the answer. A new delivery rule (another status code, another header)
belongs here.
"""

import email.utils
from dataclasses import dataclass
from datetime import datetime, timezone

from hookline.core.retry import RetrySchedule
from hookline.core.statuses import DeliveryStatus

# Status codes whose Retry-After the next attempt honours (capped by HOOKLINE_RETRY_AFTER_MAX_S).
RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class Outcome:
    """The verdict on one attempt."""

    status: DeliveryStatus  # SUCCEEDED, RETRYING or DEAD_LETTERED
    error: str | None  # what the attempt record says went wrong; None on success
    delay_s: float | None = None  # RETRYING: seconds until the next attempt
    # A failure the endpoint is to blame for, counted by the breaker: not a 410 (it disables the
    # endpoint) nor a destination the guard refused (no connection was made).
    blames_endpoint: bool = False
    gone: bool = False  # the receiver answered 410: the endpoint is to be disabled
    blocked: bool = False  # the destination guard refused the address: nothing was sent

    @property
    def succeeded(self) -> bool:
        return self.status == DeliveryStatus.SUCCEEDED

    @property
    def dead_letter_reason(self) -> str:
        """The dead letter's reason: as recorded when closed at once, else the budget is spent."""
        if self.gone or self.blocked:
            return self.error or ""
        return f"attempts exhausted; last: {self.error}"

    @property
    def dead_letter_kind(self) -> str:
        """The `reason` label of hookline_dead_letters_total."""
        return "blocked" if self.blocked else "gone" if self.gone else "exhausted"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify(
    *,
    status_code: int | None,
    retry_after: str | None,
    error: str | None,
    blocked: str | None,
    attempt_number: int,
    schedule: RetrySchedule,
    retry_after_max_s: float,
    now: datetime,
) -> Outcome:
    """The meaning of attempt `attempt_number` (1-based, within the delivery's retry budget):
    `status_code` is the receiver's answer (None when none came: `error` says why), `blocked` the
    guard's refusal, `retry_after` the answer's header, read relative to `now`."""
    if blocked is not None:
        return Outcome(DeliveryStatus.DEAD_LETTERED, f"blocked: {blocked}", blocked=True)
    if status_code is not None and 200 <= status_code < 300:
        return Outcome(DeliveryStatus.SUCCEEDED, None)
    if status_code == 410:
        return Outcome(DeliveryStatus.DEAD_LETTERED, "410 Gone: endpoint disabled", gone=True)
    error = error or f"HTTP {status_code}"
    if attempt_number >= schedule.max_attempts:
        return Outcome(DeliveryStatus.DEAD_LETTERED, error, blames_endpoint=True)
    delay = schedule.delay_after(attempt_number)
    if status_code in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            delay = min(asked, retry_after_max_s)
    return Outcome(DeliveryStatus.RETRYING, error, delay, blames_endpoint=True)
