"""One workflow per failing endpoint: open the breaker, probe on a timer, then recover or disable.

Started by the delivery activity whose failed attempt brought the endpoint's count to
HOOKLINE_BREAKER_FAILURES (id `endpoint-health-<endpoint_id>`, one at a time). While it runs,
deliveries to the endpoint hold like a pause (the delivery activity sees `failing`); every
`probe_s` one of them is sent as a probe. A success closes the breaker and releases the held
deliveries; `auto_disable_after_s` of failing disables the endpoint and dead-letters them.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from hookline.activities.delivery import DeliveryActivities
    from hookline.activities.health import HealthActivities
    from hookline.core.messages import DeliverInput, EndpointHealthInput, HealthChange, ProbeTarget
    from hookline.workflows.policies import DELIVERY_TIMEOUT_SLACK, STORE_RETRY, SWEEP_TIMEOUT

T = TypeVar("T")

# A probe is one attempt: whatever it meets, the next one comes a period later.
PROBE_RETRY = RetryPolicy(maximum_attempts=1)


@workflow.defn
class EndpointHealthWorkflow:
    @workflow.run
    async def run(self, input: EndpointHealthInput) -> str:
        """How the watch ended: `healthy` (the breaker did not open), `recovered`, `disabled` or `over`."""
        failing_since = input.failing_since
        if failing_since is None:
            opened = await self._step(HealthActivities.turn_failing, HealthChange(endpoint_id=input.endpoint_id))
            if opened.failing_since is None:
                return "healthy"
            failing_since = opened.failing_since
        change = HealthChange(endpoint_id=input.endpoint_id, failing_since=failing_since)
        disable_at = failing_since + timedelta(seconds=input.auto_disable_after_s)
        while True:
            await workflow.sleep(max(timedelta(0), min(timedelta(seconds=input.probe_s), disable_at - workflow.now())))
            if workflow.now() >= disable_at:
                await self._step(HealthActivities.auto_disable, change)
                return "disabled"
            target = await self._step(HealthActivities.pick_probe, change)
            if target.over:
                return "over"
            if target.delivery_id is not None and await self._probe(input, target):
                await self._step(HealthActivities.recover, change)
                return "recovered"
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input.model_copy(update={"failing_since": failing_since}))

    async def _step(self, activity: Callable[[Any, HealthChange], Awaitable[T]], change: HealthChange) -> T:
        # Regular activities: the transitions start sweeps and publish, which may wait for Temporal.
        return await workflow.execute_activity_method(
            activity, change, start_to_close_timeout=SWEEP_TIMEOUT, retry_policy=STORE_RETRY
        )

    async def _probe(self, input: EndpointHealthInput, target: ProbeTarget) -> bool:
        """One real attempt of a held delivery through the delivery activity; True if it got through."""
        assert target.delivery_id is not None and target.retry is not None
        try:
            await workflow.execute_activity_method(
                DeliveryActivities.deliver,
                DeliverInput(
                    delivery_id=target.delivery_id, retry=target.retry, timeout_s=input.delivery_timeout_s, probe=True
                ),
                start_to_close_timeout=timedelta(seconds=input.delivery_timeout_s) + DELIVERY_TIMEOUT_SLACK,
                retry_policy=PROBE_RETRY,
            )
        except ActivityError:
            return False
        return True
