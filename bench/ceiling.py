"""The bare Temporal ceiling for bench/run.py: the shapes of Hookline's deliveries, doing nothing.

W1: one workflow → one activity (Hookline with one endpoint: one event → one delivery).
W2: one workflow → ten activities started together (one event → ten endpoints).

The activities do no work: each appends `<workflow-id> <k> <monotonic time>` to a file, the
counterpart of the receiver's arrival record. The worker uses what Hookline's worker uses: the
pydantic data converter, the default (sandboxed) workflow runner, the same activity slots and
the same activity timeout; only the work is gone.

Run by bench/run.py in a process of its own:
    python bench/ceiling.py --address 127.0.0.1:PORT --task-queue Q --arrivals FILE
"""

import argparse
import asyncio
import logging
import signal
import time
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

FAN_OUT = 10
# Hookline's deliver activity: delivery_timeout_s (15 s default) + 10 s slack.
ACTIVITY_TIMEOUT = timedelta(seconds=25)


class ShapeInput(BaseModel):
    run_id: str


class NoopInput(BaseModel):
    run_id: str
    k: int


_arrivals_file = None  # set in the worker process; activities run outside the sandbox


@activity.defn
async def noop(input: NoopInput) -> None:
    at = time.monotonic()
    if _arrivals_file is not None:
        _arrivals_file.write(f"{input.run_id} {input.k} {at:.6f}\n")


@workflow.defn(name="CeilingW1")
class CeilingW1:
    @workflow.run
    async def run(self, input: ShapeInput) -> None:
        await workflow.execute_activity(
            noop, NoopInput(run_id=input.run_id, k=0), start_to_close_timeout=ACTIVITY_TIMEOUT
        )


@workflow.defn(name="CeilingW2")
class CeilingW2:
    @workflow.run
    async def run(self, input: ShapeInput) -> None:
        await asyncio.gather(
            *(
                workflow.execute_activity(
                    noop, NoopInput(run_id=input.run_id, k=k), start_to_close_timeout=ACTIVITY_TIMEOUT
                )
                for k in range(FAN_OUT)
            )
        )


async def run_worker(address: str, task_queue: str, arrivals: str, max_concurrent: int, sandbox: bool) -> None:
    global _arrivals_file
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    _arrivals_file = open(arrivals, "a", buffering=1)  # noqa: SIM115  (line-buffered: the driver polls it)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    extra = {} if sandbox else {"workflow_runner": UnsandboxedWorkflowRunner()}
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[CeilingW1, CeilingW2],
        activities=[noop],
        max_concurrent_activities=max_concurrent,
        max_concurrent_local_activities=max_concurrent,
        graceful_shutdown_timeout=timedelta(seconds=5),
        **extra,
    ):
        logging.getLogger("bench.ceiling").info("ceiling worker polling %r", task_queue)
        await stop.wait()
    _arrivals_file.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--arrivals", required=True, help="file the no-op activities append to")
    parser.add_argument("--max-concurrent", type=int, default=500, help="as HOOKLINE_WORKER_MAX_CONCURRENT_ACTIVITIES")
    parser.add_argument("--sandbox", choices=("on", "off"), default="on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker(args.address, args.task_queue, args.arrivals, args.max_concurrent, args.sandbox == "on"))


if __name__ == "__main__":
    # Import this file as the module `ceiling`, not `__main__`, so the workflow sandbox can re-import it.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ceiling

    ceiling.main()
