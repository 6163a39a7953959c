"""The closed sets of strings Hookline stores, answers with and tells apart, as StrEnums.

A member is its string (`DeliveryStatus.PAUSED == "paused"`), so the database columns, the API's
JSON and the payloads in workflow histories keep exactly the strings they had; only a typo stops
being possible. Add a member only with its documentation (docs/delivery.md, the API's schemas).
"""

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    RETRYING = "retrying"  # an attempt failed; the next one is scheduled
    PAUSED = "paused"  # held while its endpoint is paused
    SUCCEEDED = "succeeded"
    DEAD_LETTERED = "dead_lettered"  # closed without success: attempts exhausted, 410, blocked, deleted, disabled


# Statuses a delivery is still being worked on in; the others are final until a replay.
OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
# The statuses the event workflow may still move a delivery out of (a paused one waits for its endpoint).
UNSETTLED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.PAUSED)


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # its deliveries wait, no attempt is made or spent
    DISABLED = "disabled"  # its open deliveries are dead letters; new events skip it


class AttemptErrorKind(StrEnum):
    """The `type` of the ApplicationError a delivery attempt raises, which the event workflow acts on."""

    ENDPOINT_PAUSED = "EndpointPaused"
    DEAD_LETTERED = "DeadLettered"
    NOT_YET_DUE = "NotYetDue"
    CHANGED_MEANWHILE = "ChangedMeanwhile"
    # The next attempt is far off: the workflow waits for it on a timer (details: the seconds).
    RETRY_LATER = "RetryLater"
    # Over the endpoint's rate_limit: wait on a timer, then try in the reserved slot (no attempt spent).
    RATE_LIMITED = "RateLimited"
    # A failing endpoint's probe did not get through (it spends no retry of the delivery).
    PROBE_FAILED = "ProbeFailed"
    ATTEMPT_FAILED = "AttemptFailed"  # retried by Temporal after the delay the attempt recorded
