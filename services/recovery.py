"""The schedule that finishes publishes which recorded an event but never started its fan-out."""

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)

from hookline.core.config import Settings
from hookline.workflows.recovery import DispatchRecoveryWorkflow


def recovery_schedule_id(settings: Settings) -> str:
    return f"hookline-dispatch-recovery-{settings.task_queue}"


async def ensure_recovery_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule that finishes half-done publishes, or bring it to the current interval."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DispatchRecoveryWorkflow.run,
            id=f"dispatch-recovery-{settings.task_queue}",
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.dispatch_recovery_s))]),
        # A run still going (or waiting for a worker) makes the next one pointless.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(recovery_schedule_id(settings), schedule)
    except ScheduleAlreadyRunningError:
        await client.get_schedule_handle(recovery_schedule_id(settings)).update(
            lambda _: ScheduleUpdate(schedule=schedule)
        )
