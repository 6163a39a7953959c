"""Named timeouts and retry policies of the workflows' activity calls."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from hookline.core.retry import RetrySchedule

STORE_TIMEOUT = timedelta(seconds=30)
# A store outage must stall deliveries, not lose them: store calls retry until it is back.
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=0,
)
SWEEP_TIMEOUT = timedelta(minutes=2)
# Signals wait out a Temporal outage the same way.
SIGNAL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=0,
)
SWEEP_HEARTBEAT = timedelta(seconds=30)
# The recovery runs again at its next scheduled time anyway: a few tries are enough.
RECOVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3)

# A paused delivery re-checks its endpoint this often, in case a resume signal was missed.
PAUSE_RECHECK = timedelta(hours=1)

# Slack over the HTTP deadline so the activity, not Temporal, reports a slow receiver.
DELIVERY_TIMEOUT_SLACK = timedelta(seconds=10)


def delivery_retry_policy(schedule: RetrySchedule, non_retryable: list[str]) -> RetryPolicy:
    """The endpoint's schedule as Temporal's policy.

    The activity sets each delay itself (`next_retry_delay`) from the delivery's attempt count
    in the store, and stops at the budget; these values are the fallback for attempts lost to a
    crash. The cap leaves room for tries that make no HTTP attempt (not yet due after a
    hand-over) and still ends a delivery whose every try crashes the worker.
    """
    return RetryPolicy(
        initial_interval=timedelta(seconds=schedule.initial_interval_s),
        backoff_coefficient=schedule.backoff_coefficient,
        maximum_interval=timedelta(seconds=schedule.max_interval_s),
        maximum_attempts=2 * schedule.max_attempts + 10,
        non_retryable_error_types=non_retryable,
    )
