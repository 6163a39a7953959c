"""The endpoint health watch alone, on a real dev server, with fake activities of the same names.

The dev server suggests continue-as-new early (after 60 history events), so a watch that probes
a dozen times crosses several runs and must carry `failing_since` across them.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from hookline.activities.delivery import PROBE_FAILED
from hookline.cli import temporal_binary
from hookline.core.messages import DeliverInput, DeliverResult, EndpointHealthInput, HealthChange, ProbeTarget
from hookline.core.retry import RetrySchedule
from hookline.workflows.health import EndpointHealthWorkflow

# A Temporal test server of its own (workflow unit tests with fake activities).
pytestmark = pytest.mark.stack

RETRY = RetrySchedule(max_attempts=3, initial_interval_s=1, backoff_coefficient=1.0, max_interval_s=1)
FAILING_SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class FakeHealth:
    """The watch's activities and the delivery activity, by name; `failures` probes fail first."""

    failures: int = 0
    opens: bool = True  # whether turn_failing finds the threshold reached
    over_after: int | None = None  # pick_probe ends the watch after this many picks
    failing_since: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    probes: list[DeliverInput] = field(default_factory=list)
    recovered: list[HealthChange] = field(default_factory=list)
    disabled: list[HealthChange] = field(default_factory=list)
    picks: int = 0
    continued: bool = False  # the watch continued as new at least once

    @activity.defn
    async def turn_failing(self, input: HealthChange) -> HealthChange:
        return HealthChange(endpoint_id=input.endpoint_id, failing_since=self.failing_since if self.opens else None)

    @activity.defn
    async def pick_probe(self, input: HealthChange) -> ProbeTarget:
        self.picks += 1
        if self.over_after is not None and self.picks > self.over_after:
            return ProbeTarget(over=True)
        return ProbeTarget(delivery_id="dlv_1", retry=RETRY)

    @activity.defn
    async def deliver(self, input: DeliverInput) -> DeliverResult:
        self.probes.append(input)
        if len(self.probes) <= self.failures:
            raise ApplicationError("HTTP 500", type=PROBE_FAILED, non_retryable=True)
        return DeliverResult(status_code=200)

    @activity.defn
    async def recover(self, input: HealthChange) -> None:
        self.recovered.append(input)

    @activity.defn
    async def auto_disable(self, input: HealthChange) -> None:
        self.disabled.append(input)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"],
    ) as env:
        yield env


async def watch(env: WorkflowEnvironment, fakes: FakeHealth, **input: float) -> str:
    """Run one watch to its end; returns its result, and notes in `fakes.runs` how many runs it took."""
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    activities = [fakes.turn_failing, fakes.pick_probe, fakes.deliver, fakes.recover, fakes.auto_disable]
    async with Worker(env.client, task_queue=queue, workflows=[EndpointHealthWorkflow], activities=activities):
        handle = await env.client.start_workflow(
            EndpointHealthWorkflow.run,
            EndpointHealthInput(endpoint_id="ep_1", **input),  # type: ignore[arg-type]
            id=f"endpoint-health-unit-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            execution_timeout=timedelta(seconds=60),
        )
        result = await handle.result()
    last = await env.client.get_workflow_handle(handle.id).describe()
    fakes.continued = last.run_id != handle.first_execution_run_id
    return result


async def test_probes_until_one_succeeds_across_runs_then_recovers_once(env: WorkflowEnvironment) -> None:
    fakes = FakeHealth(failures=12)
    result = await watch(env, fakes, probe_s=0.2, auto_disable_after_s=3600)
    assert result == "recovered" and fakes.continued
    assert len(fakes.probes) == 13 and all(p.probe and p.delivery_id == "dlv_1" for p in fakes.probes)
    # Carried across continue-as-new: the recovery names the failing_since the watch began with.
    assert [c.failing_since for c in fakes.recovered] == [fakes.failing_since]
    assert fakes.disabled == []


async def test_failing_past_the_limit_disables_once_without_probing_on(env: WorkflowEnvironment) -> None:
    fakes = FakeHealth(failures=1_000)
    result = await watch(env, fakes, probe_s=0.5, auto_disable_after_s=3)
    assert result == "disabled"
    assert [c.failing_since for c in fakes.disabled] == [fakes.failing_since]
    assert 2 <= len(fakes.probes) <= 6  # one every 0.5 s for 3 s, at most
    assert fakes.recovered == []


async def test_a_watch_started_before_the_threshold_ends_at_once(env: WorkflowEnvironment) -> None:
    fakes = FakeHealth(opens=False)
    assert await watch(env, fakes, probe_s=0.2) == "healthy"
    assert fakes.probes == [] and fakes.picks == 0


async def test_a_watch_ends_when_the_endpoint_is_gone_or_healthy(env: WorkflowEnvironment) -> None:
    fakes = FakeHealth(failures=1_000, over_after=2)
    assert await watch(env, fakes, probe_s=0.2, auto_disable_after_s=3600) == "over"
    assert len(fakes.probes) == 2 and fakes.recovered == [] and fakes.disabled == []


async def test_a_watch_continued_from_an_old_failure_disables_at_once(env: WorkflowEnvironment) -> None:
    """A watch restarted long after the breaker opened (failing_since is the past) does not wait again."""
    fakes = FakeHealth(failures=1_000, failing_since=FAILING_SINCE)
    assert await watch(env, fakes, probe_s=60, auto_disable_after_s=3600) == "disabled"
    assert fakes.probes == [] and [c.failing_since for c in fakes.disabled] == [FAILING_SINCE]
