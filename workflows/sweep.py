"""Durable operations over many deliveries: reach every event workflow they belong to.

Pausing or resuming an endpoint with thousands of deliveries held, or replaying every dead
letter, is one of these workflows rather than a loop in a request handler: it survives
restarts and walks forward page by page.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from hookline.activities.sweep import SweepActivities
    from hookline.core.messages import SignalPageInput, SweepInput
    from hookline.workflows.policies import SIGNAL_RETRY, STORE_RETRY, SWEEP_HEARTBEAT, SWEEP_TIMEOUT


@workflow.defn
class DeliverySweepWorkflow:
    @workflow.run
    async def run(self, input: SweepInput) -> int:
        reached = input.reached
        page_input = input.page
        while True:
            page = await workflow.execute_activity_method(
                SweepActivities.page_deliveries,
                page_input,
                start_to_close_timeout=SWEEP_TIMEOUT,
                retry_policy=STORE_RETRY,
            )
            if page.deliveries:
                await workflow.execute_activity_method(
                    SweepActivities.signal_page,
                    SignalPageInput(
                        deliveries=page.deliveries,
                        operation=input.operation,
                        endpoint_id=input.page.endpoint_id,
                        request_id=input.request_id,
                    ),
                    start_to_close_timeout=SWEEP_TIMEOUT,
                    heartbeat_timeout=SWEEP_HEARTBEAT,
                    retry_policy=SIGNAL_RETRY,
                )
                reached += len(page.deliveries)
            if page.next_after is None:
                return reached
            page_input = page_input.model_copy(update={"after_delivery_id": page.next_after})
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input.model_copy(update={"page": page_input, "reached": reached}))
