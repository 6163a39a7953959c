"""What an HTTP outcome means for a delivery (core/outcomes.py), as a table: no I/O, the fast tier."""

from datetime import datetime, timezone

import pytest

from hookline.core.outcomes import Outcome, classify
from hookline.core.retry import RetrySchedule
from hookline.core.statuses import DeliveryStatus

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SCHEDULE = RetrySchedule(max_attempts=5, initial_interval_s=10, backoff_coefficient=2, max_interval_s=300)
CAP = 600.0
SUCCEEDED, RETRYING, DEAD = DeliveryStatus.SUCCEEDED, DeliveryStatus.RETRYING, DeliveryStatus.DEAD_LETTERED


def outcome(
    status_code: int | None = None, *, retry_after: str | None = None, error: str | None = None,
    blocked: str | None = None, attempt: int = 1,
) -> Outcome:
    return classify(
        status_code=status_code, retry_after=retry_after, error=error, blocked=blocked, attempt_number=attempt,
        schedule=SCHEDULE, retry_after_max_s=CAP, now=NOW,
    )


# (case, arguments, status, recorded error, delay in seconds, blames the endpoint)
TABLE = [
    ("200", dict(status_code=200), SUCCEEDED, None, None, False),
    ("204 on the last attempt", dict(status_code=204, attempt=5), SUCCEEDED, None, None, False),
    ("299", dict(status_code=299), SUCCEEDED, None, None, False),
    ("302 is not followed: a failure", dict(status_code=302), RETRYING, "HTTP 302", 10, True),
    ("400", dict(status_code=400, attempt=2), RETRYING, "HTTP 400", 20, True),
    ("404", dict(status_code=404, attempt=3), RETRYING, "HTTP 404", 40, True),
    ("410 closes at once", dict(status_code=410), DEAD, "410 Gone: endpoint disabled", None, False),
    ("429 without Retry-After: the schedule", dict(status_code=429, attempt=2), RETRYING, "HTTP 429", 20, True),
    ("429 with Retry-After seconds", dict(status_code=429, retry_after="7"), RETRYING, "HTTP 429", 7, True),
    (
        "429 with a Retry-After date", dict(status_code=429, retry_after="Thu, 01 Jan 2026 00:00:30 GMT"),
        RETRYING, "HTTP 429", 30, True,
    ),
    ("429 with Retry-After past the cap", dict(status_code=429, retry_after="86400"), RETRYING, "HTTP 429", CAP, True),
    ("429 with unreadable Retry-After", dict(status_code=429, retry_after="soon"), RETRYING, "HTTP 429", 10, True),
    ("503 with Retry-After", dict(status_code=503, retry_after="3"), RETRYING, "HTTP 503", 3, True),
    ("500 ignores Retry-After", dict(status_code=500, retry_after="3"), RETRYING, "HTTP 500", 10, True),
    ("backoff: the fourth failure waits 10 * 2**3", dict(status_code=500, attempt=4), RETRYING, "HTTP 500", 80, True),
    ("timeout", dict(error="timed out after 10s"), RETRYING, "timed out after 10s", 10, True),
    ("connection error", dict(error="ConnectError: refused"), RETRYING, "ConnectError: refused", 10, True),
    ("last attempt: dead letter", dict(status_code=500, attempt=5), DEAD, "HTTP 500", None, True),
    ("last attempt 429 too", dict(status_code=429, retry_after="1", attempt=5), DEAD, "HTTP 429", None, True),
    ("timeout on the last attempt", dict(error="timed out after 10s", attempt=5), DEAD, "timed out after 10s", None, True),
    ("blocked: nothing sent", dict(blocked="private address"), DEAD, "blocked: private address", None, False),
    ("blocked even on the last attempt", dict(blocked="loopback", attempt=5), DEAD, "blocked: loopback", None, False),
]


@pytest.mark.parametrize(("case", "args", "status", "error", "delay", "blames"), TABLE, ids=[row[0] for row in TABLE])
def test_classify(case: str, args: dict, status: DeliveryStatus, error: str | None, delay: float | None, blames: bool) -> None:
    got = outcome(**args)
    assert (got.status, got.error, got.delay_s, got.blames_endpoint) == (status, error, delay, blames), case


def test_max_interval_caps_the_schedule_not_retry_after() -> None:
    schedule = RetrySchedule(max_attempts=50, initial_interval_s=10, backoff_coefficient=10, max_interval_s=60)
    late = classify(
        status_code=500, retry_after=None, error=None, blocked=None, attempt_number=20, schedule=schedule,
        retry_after_max_s=CAP, now=NOW,
    )
    assert late.delay_s == 60
    asked = classify(
        status_code=429, retry_after="120", error=None, blocked=None, attempt_number=1, schedule=schedule,
        retry_after_max_s=CAP, now=NOW,
    )
    assert asked.delay_s == 120  # the receiver's wish, up to HOOKLINE_RETRY_AFTER_MAX_S


def test_dead_letter_reasons_and_kinds() -> None:
    gone, blocked, exhausted = outcome(410), outcome(blocked="loopback"), outcome(500, attempt=5)
    assert (gone.gone, gone.dead_letter_kind, gone.dead_letter_reason) == (True, "gone", "410 Gone: endpoint disabled")
    assert (blocked.blocked, blocked.dead_letter_kind, blocked.dead_letter_reason) == (
        True, "blocked", "blocked: loopback"
    )
    assert (exhausted.dead_letter_kind, exhausted.dead_letter_reason) == ("exhausted", "attempts exhausted; last: HTTP 500")
    assert not exhausted.gone and not exhausted.blocked and not outcome(200).gone
