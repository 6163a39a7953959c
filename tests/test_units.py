"""Unit tests of single pure functions: the schedule, signatures, address checks, matching."""

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from hookline.activities.http import retry_after_seconds
from hookline.core.config import Settings
from hookline.core.event_types import is_valid_filter, subscribed
from hookline.core.retry import RetrySchedule, default_schedule, effective_schedule
from hookline.core.signing import generate_secret, is_valid_secret, signature_header
from hookline.core.destinations import is_private_address
from hookline.worker import WORKFLOW_TASK_SLOTS, WORKFLOW_TASK_SLOTS_MIN, worker_tuner
from tests.harness import FAST_RETRY


def test_default_schedule_spans_more_than_a_day() -> None:
    schedule = default_schedule(Settings())
    assert schedule.total_span_s() > 24 * 3600
    assert schedule.delay_after(1) == Settings().retry_initial_interval_s
    assert max(schedule.delay_after(n) for n in range(1, 40)) == Settings().retry_max_interval_s


def test_override_keeps_unset_fields_from_defaults() -> None:
    s = Settings()
    merged = effective_schedule({"max_attempts": 3, "initial_interval_s": None}, s)
    assert merged == RetrySchedule(
        max_attempts=3, initial_interval_s=s.retry_initial_interval_s,
        backoff_coefficient=s.retry_backoff_coefficient, max_interval_s=s.retry_max_interval_s,
    )


def test_signature_header_verifies_with_each_live_secret() -> None:
    old, new = generate_secret(), generate_secret()
    now = datetime.now(timezone.utc)
    body = '{"id":"evt_1","type":"a.b","timestamp":"x","data":{}}'
    header = signature_header([new, old], "evt_1", now, body)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": header}
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["id"] == "evt_1"


def test_secret_format() -> None:
    assert is_valid_secret(generate_secret())
    assert not is_valid_secret("whsec_" + base64.b64encode(b"short").decode())
    assert not is_valid_secret("sk_" + base64.b64encode(b"x" * 32).decode())
    assert not is_valid_secret("whsec_not base64!!")


@pytest.mark.parametrize(
    "host, private",
    [
        ("127.0.0.1", True), ("localhost", True), ("api.localhost", True), ("10.1.2.3", True),
        ("192.168.0.1", True), ("169.254.169.254", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True), ("93.184.216.34", False), ("example.com", False),
    ],
)
def test_private_addresses(host: str, private: bool) -> None:
    assert is_private_address(host) is private


@pytest.mark.parametrize(
    "filters, event_type, expected",
    [
        (None, "anything.at.all", True),
        (["invoice.*"], "invoice.paid", True),
        (["invoice.*"], "invoice.refund.created", True),
        (["invoice.*"], "invoices.paid", False),
        (["invoice.paid"], "invoice.paid.v2", False),
        (["*"], "user.created", True),
        ([], "user.created", False),
    ],
)
def test_subscription_matching(filters: list[str] | None, event_type: str, expected: bool) -> None:
    assert subscribed(filters, event_type) is expected


def test_filter_patterns() -> None:
    assert is_valid_filter("invoice.*") and is_valid_filter("*")
    for bad in ("", "a..b", "a b", "../x", "a.[b]"):
        assert not is_valid_filter(bad)


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def resp(value: str | None) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": value} if value is not None else {})

    assert retry_after_seconds(resp("7"), now) == 7
    assert retry_after_seconds(resp("Thu, 01 Jan 2026 00:00:30 GMT"), now) == 30
    assert retry_after_seconds(resp("Wed, 31 Dec 2025 23:00:00 GMT"), now) == 0  # in the past
    assert retry_after_seconds(resp("soon"), now) is None
    assert retry_after_seconds(resp(None), now) is None
    assert retry_after_seconds(resp("-5"), now) is None


def test_the_schedule_backs_off_up_to_its_cap() -> None:
    schedule = RetrySchedule(max_attempts=6, initial_interval_s=5, backoff_coefficient=3, max_interval_s=60)
    assert [schedule.delay_after(n) for n in range(1, 6)] == [5, 15, 45, 60, 60]
    assert schedule.total_span_s() == 5 + 15 + 45 + 60 + 60  # the waits between six attempts
    steady = RetrySchedule(**FAST_RETRY)
    assert [steady.delay_after(n) for n in (1, 2, 3)] == [1, 1, 1]


def test_a_wait_beyond_the_slot_hold_becomes_a_workflow_timer_only_when_asked() -> None:
    from hookline.activities.delivery import HOLD_SLOT_UP_TO, RETRY_LATER, retry_error

    near = retry_error("HTTP 500", HOLD_SLOT_UP_TO, retryable_type="AttemptFailed", timer_waits=True)
    assert (near.type, near.non_retryable, near.next_retry_delay) == ("AttemptFailed", False, HOLD_SLOT_UP_TO)
    far_delay = HOLD_SLOT_UP_TO + timedelta(seconds=1)
    far = retry_error("HTTP 500", far_delay, retryable_type="AttemptFailed", timer_waits=True)
    assert (far.type, far.non_retryable, list(far.details)) == (RETRY_LATER, True, [far_delay.total_seconds()])
    held = retry_error("HTTP 500", far_delay, retryable_type="NotYetDue", timer_waits=False)
    assert (held.type, held.next_retry_delay) == ("NotYetDue", far_delay)


@pytest.mark.parametrize(
    "args, env, complaint",
    [
        (["dev", "--port", "70000"], {}, "port"),
        (["dev", "--temporal-port", "0"], {}, "temporal_port"),
        (["worker"], {"HOOKLINE_MAX_BODY_BYTES": "5"}, "max_body_bytes"),
        (["api"], {"HOOKLINE_DISPATCH_RECOVERY_S": "0"}, "dispatch_recovery_s"),
        (["worker"], {"HOOKLINE_WORKER_METRICS_PORT": "-1"}, "worker_metrics_port"),
        (["dev"], {"HOOKLINE_DEV_TASK_QUEUE_PARTITIONS": "0"}, "dev_task_queue_partitions"),
        (["worker"], {"HOOKLINE_WORKER_TARGET_CPU": "2"}, "worker_target_cpu"),
    ],
)
def test_a_bad_setting_stops_the_command_with_its_name(args: list[str], env: dict[str, str], complaint: str) -> None:
    from typer.testing import CliRunner

    from hookline.cli import app

    result = CliRunner().invoke(app, args, env={"HOOKLINE_ADMIN_TOKEN": "t", **env})
    assert result.exit_code == 2, result.output
    assert complaint in result.output and "Traceback" not in result.output


def _first_try_outcome(err: Exception, paused: set[str] | None = None) -> object:
    from hookline.core.messages import DeliveryTarget
    from hookline.workflows.event import Delivery, EventWorkflow

    workflow_instance = object.__new__(EventWorkflow)  # the method reads and writes only this set
    workflow_instance._paused_endpoints = paused if paused is not None else set()
    target = DeliveryTarget(
        delivery_id="dlv_1", endpoint_id="ep_1",
        retry=RetrySchedule(max_attempts=3, initial_interval_s=5, backoff_coefficient=2, max_interval_s=60),
    )
    return workflow_instance._after_first_try(Delivery(target), err)


def test_a_first_try_is_judged_the_same_live_and_replayed() -> None:
    """A local activity's timeout comes wrapped in ActivityError live and bare on replay: same outcome."""
    from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError, TimeoutType

    from hookline.activities.delivery import DEAD_LETTERED, ENDPOINT_PAUSED, RETRY_LATER
    from hookline.workflows.event import AGAIN, DONE, wait
    from hookline.workflows.policies import DELIVERY_TIMEOUT_SLACK

    timeout = TimeoutError("timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    wrapped = ActivityError(
        "activity timed out", scheduled_event_id=0, started_event_id=0, identity="", activity_type="deliver",
        activity_id="1", retry_state=RetryState.CANCEL_REQUESTED,
    )
    wrapped.__cause__ = timeout
    assert _first_try_outcome(wrapped) == _first_try_outcome(timeout) == wait(DELIVERY_TIMEOUT_SLACK)

    failed = ApplicationError("HTTP 500", type="AttemptFailed", next_retry_delay=timedelta(seconds=5))
    assert _first_try_outcome(failed) == wait(timedelta(seconds=5))
    assert _first_try_outcome(ApplicationError("x", type="Whatever")) == AGAIN  # no delay asked: at once
    assert _first_try_outcome(ApplicationError("gone", type=DEAD_LETTERED, non_retryable=True)) == DONE
    far = ApplicationError("HTTP 500", 600.0, type=RETRY_LATER, non_retryable=True)
    assert _first_try_outcome(far) == wait(timedelta(seconds=600))
    paused: set[str] = set()
    assert _first_try_outcome(ApplicationError("paused", type=ENDPOINT_PAUSED, non_retryable=True), paused) == AGAIN
    assert paused == {"ep_1"}


def test_workflow_tasks_are_taken_by_cpu_unless_the_target_is_zero() -> None:
    from temporalio.worker import FixedSizeSlotSupplier, ResourceBasedSlotSupplier

    by_cpu = worker_tuner(Settings(worker_target_cpu=0.75, worker_max_concurrent_activities=40))
    workflows = by_cpu._get_workflow_task_slot_supplier()
    assert isinstance(workflows, ResourceBasedSlotSupplier)
    assert workflows.tuner_config.target_cpu_usage == 0.75
    assert (workflows.slot_config.minimum_slots, workflows.slot_config.maximum_slots) == (
        WORKFLOW_TASK_SLOTS_MIN, WORKFLOW_TASK_SLOTS,
    )
    assert by_cpu._get_activity_task_slot_supplier() == FixedSizeSlotSupplier(40)
    assert by_cpu._get_local_activity_task_slot_supplier() == FixedSizeSlotSupplier(40)

    fixed = worker_tuner(Settings(worker_target_cpu=0))
    assert fixed._get_workflow_task_slot_supplier() == FixedSizeSlotSupplier(WORKFLOW_TASK_SLOTS)


@pytest.mark.parametrize("value", ["-0.1", "1.5", "lots"])
def test_a_cpu_target_outside_zero_to_one_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKLINE_WORKER_TARGET_CPU", value)
    with pytest.raises(ValueError):
        Settings()


def _dynamic_config(cmd: list[str]) -> dict[str, str]:
    values = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--dynamic-config-value"]
    return dict(v.split("=", 1) for v in values)


def test_the_dev_server_has_fairness_on_and_the_partitions_asked_for() -> None:
    from hookline.cli import dev_server_command

    default = _dynamic_config(dev_server_command(port=7233, ui_port=None, db_file=None))
    assert default["matching.enableFairness"] == "true"
    assert default["matching.numTaskqueueReadPartitions"] == default["matching.numTaskqueueWritePartitions"] == "1"
    four = _dynamic_config(dev_server_command(port=7233, ui_port=None, db_file=None, partitions=4))
    assert "matching.numTaskqueueReadPartitions" not in four  # the server's own 4
    eight = _dynamic_config(dev_server_command(port=7233, ui_port=None, db_file=None, partitions=8))
    assert eight["matching.numTaskqueueReadPartitions"] == eight["matching.numTaskqueueWritePartitions"] == "8"
    assert "matching.enableFairness" not in _dynamic_config(
        dev_server_command(port=7233, ui_port=None, db_file=None, fairness=False)
    )


def test_a_dev_data_directory_keeps_the_partitions_its_server_ran_with(tmp_path: Path) -> None:
    """Fewer partitions would strand the tasks queued in the ones dropped: only a new data
    directory, or the setting, gets one partition per task queue."""
    from hookline.cli import PARTITIONS_FILE, TEMPORAL_DB_FILE, dev_partitions

    new, old, recorded, unreadable = (tmp_path / name for name in ("new", "old", "recorded", "unreadable"))
    for directory in (new, old, recorded, unreadable):
        directory.mkdir()
    (old / TEMPORAL_DB_FILE).write_bytes(b"")  # its server ran before Hookline recorded partitions
    (recorded / TEMPORAL_DB_FILE).write_bytes(b"")
    (recorded / PARTITIONS_FILE).write_text("2\n")
    (unreadable / TEMPORAL_DB_FILE).write_bytes(b"")
    (unreadable / PARTITIONS_FILE).write_text("lots")

    assert dev_partitions(new, None) == 1
    assert dev_partitions(old, None) == 4
    assert dev_partitions(recorded, None) == 2
    assert dev_partitions(unreadable, None) == 4
    # Each is recorded, and kept by the next start.
    assert [(d / PARTITIONS_FILE).read_text() for d in (new, old, recorded, unreadable)] == ["1\n", "4\n", "2\n", "4\n"]
    (new / TEMPORAL_DB_FILE).write_bytes(b"")
    assert dev_partitions(new, None) == 1
    # The setting wins, and is what the directory keeps from then on.
    assert dev_partitions(old, 1) == 1
    assert dev_partitions(old, None) == 1
