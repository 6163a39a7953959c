"""Run by a Temporal schedule: finish publishes that recorded an event but never started its fan-out."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from hookline.activities.recovery import RecoveryActivities
    from hookline.workflows.policies import RECOVERY_RETRY, SWEEP_HEARTBEAT, SWEEP_TIMEOUT


@workflow.defn
class DispatchRecoveryWorkflow:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity_method(
            RecoveryActivities.dispatch_stragglers,
            start_to_close_timeout=SWEEP_TIMEOUT,
            heartbeat_timeout=SWEEP_HEARTBEAT,
            retry_policy=RECOVERY_RETRY,
        )
