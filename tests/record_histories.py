"""Record workflow histories for the replay test: `python -m tests.record_histories [--suffix S] [name …]`.

Runs a real dev server, worker and API (a fan-out window of 2, the recovery schedule every
2 s), drives them through the paths below, and writes each workflow's newest run to
`tests/histories/<name>.json`. With names, only those histories are written; with
`--suffix S`, as `<name>-S.json`.

The files hold histories of the CURRENT workflow code only. After a deliberate change to
workflow code, re-record them all in the same commit. If the change needs a patch
(docs/contributing.md), first record the old code's with `--suffix before-<patch id>`, and keep
those until the patch is deprecated.
"""

import argparse
import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from hookline.core.config import Settings
from hookline.core.temporal import connect_temporal
from tests.harness import ApiClient, Receiver, Stack, TemporalServer, wait_for, wait_until

OUT = Path(__file__).parent / "histories"
RETRY = {"max_attempts": 2, "initial_interval_s": 1, "backoff_coefficient": 1.0, "max_interval_s": 1}
# A retry far enough off that the workflow waits for it on a timer.
FAR_OFF_RETRY = {"max_attempts": 3, "initial_interval_s": 120, "backoff_coefficient": 1.0, "max_interval_s": 120}
# Above what the paths before the breaker's own fail in a row, so only the breaker's endpoints trip it.
BREAKER_FAILURES = 4


async def record(stack: Stack, receiver: Receiver) -> None:
    api = ApiClient(stack.url)
    client = await connect_temporal(Settings(temporal_address=stack.temporal.address))
    app_id = await api.create_app()
    ok = await api.create_endpoint(app_id, receiver.url("/ok"), retry=RETRY)
    receiver.set("/dead", 500)
    await api.create_endpoint(app_id, receiver.url("/dead"), retry=RETRY)
    paused = await api.create_endpoint(app_id, receiver.url("/paused"), retry=RETRY, event_types=["held.*"])

    delivered = await api.publish(app_id, "order.created", {"n": 1})
    await api.wait_event(app_id, delivered["id"])
    await asyncio.sleep(1)
    await save(client, "fan_out_retry_dead_letter", delivered["workflow_id"])
    receiver.set("/dead", 200)
    dead = [d for d in (await api.event(app_id, delivered["id"]))["deliveries"] if d["endpoint_id"] != ok["id"]]
    await api.http.post(f"/v1/apps/{app_id}/deliveries/{dead[0]['id']}/replay")
    await wait_for(lambda: len(receiver.at("/dead")) == 3)

    base = f"/v1/apps/{app_id}/endpoints/{paused['id']}"
    await api.http.post(base + "/pause")
    held = await api.publish(app_id, "held.one", {"n": 2})
    await api.wait_event(app_id, held["id"], lambda e: "paused" in [d["status"] for d in e["deliveries"]])
    await api.http.post(base + "/resume")
    await api.wait_event(app_id, held["id"])

    later = await api.create_endpoint(app_id, receiver.url("/later"), retry=FAR_OFF_RETRY, event_types=["later.*"])
    receiver.set("/later", 500)
    waiting = await api.publish(app_id, "later.one", {"n": 3})
    event = await api.wait_event(app_id, waiting["id"], only_retrying(later["id"]))
    await asyncio.sleep(1)
    receiver.set("/later", 200)
    [delivery] = [d for d in event["deliveries"] if d["endpoint_id"] == later["id"]]
    await api.http.post(f"/v1/apps/{app_id}/deliveries/{delivery['id']}/replay")
    await api.wait_event(app_id, waiting["id"])

    # A whole-event replay in pages of the window (2 here), then the failing endpoint is disabled
    # while its delivery waits out a far-off retry.
    closing = await api.create_endpoint(app_id, receiver.url("/closing"), retry=FAR_OFF_RETRY, event_types=["closing.*"])
    receiver.set("/closing", 500)
    paged = await api.publish(app_id, "closing.one", {"n": 4})
    await api.wait_event(app_id, paged["id"], only_retrying(closing["id"]))
    before = len(receiver.at("/closing"))
    await api.http.post(f"/v1/apps/{app_id}/events/{paged['id']}/replay")
    await wait_for(lambda: len(receiver.at("/closing")) == before + 1)
    await api.wait_event(app_id, paged["id"], only_retrying(closing["id"]))
    await api.http.patch(f"/v1/apps/{app_id}/endpoints/{closing['id']}", json={"status": "disabled"})
    await api.wait_event(app_id, paged["id"])

    await asyncio.sleep(2)
    await save(client, "replay_after_close", delivered["workflow_id"])
    await save(client, "pause_resume", held["workflow_id"])
    await save(client, "retry_later_cut_short_by_replay", waiting["workflow_id"])
    await save(client, "paged_replay_then_endpoint_closed", paged["workflow_id"])
    # The sweeps that reached those deliveries: the resume of the paused endpoint, the close of the other.
    await save(client, "sweep_resume", await finished_run(client, "DeliverySweepWorkflow", f"sweep-resume-{paused['id']}-"))
    await save(client, "sweep_close", await finished_run(client, "DeliverySweepWorkflow", f"sweep-close-{closing['id']}-"))
    await save(client, "dispatch_recovery", await finished_run(client, "DispatchRecoveryWorkflow", ""))
    await record_breaker(api, client, app_id, receiver)
    await api.aclose()


async def record_breaker(api: ApiClient, client: Client, app_id: str, receiver: Receiver) -> None:
    """An endpoint's health watch twice: failing, probed, recovered; failing until auto-disabled."""
    for name, path in (("endpoint_health_recovered", "/breaker"), ("endpoint_health_disabled", "/quiet")):
        endpoint = await api.create_endpoint(app_id, receiver.url(path), retry=RETRY, event_types=[f"{path[1:]}.*"])
        receiver.set(path, 500)
        for n in range(BREAKER_FAILURES):
            await api.publish(app_id, f"{path[1:]}.one", {"n": n})
        url = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
        await wait_until(lambda url=url: api.http.get(url), lambda r: r.json()["health"] == "failing")
        probed = len(receiver.at(path)) + 2
        await wait_for(lambda path=path, probed=probed: len(receiver.at(path)) >= probed)  # two probes failed
        if name == "endpoint_health_recovered":
            receiver.set(path, 200)
        await save(client, name, await finished_run(client, "EndpointHealthWorkflow", f"endpoint-health-{endpoint['id']}"))


async def finished_run(client: Client, workflow_type: str, id_prefix: str) -> str:
    """The id of a completed workflow of this type whose id starts with the prefix (waits up to 30 s)."""
    query = f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Completed'"
    for _ in range(60):
        async for execution in client.list_workflows(query):
            if execution.id.startswith(id_prefix):
                return execution.id
        await asyncio.sleep(0.5)
    raise TimeoutError(f"no completed {workflow_type} run with an id starting {id_prefix!r}")


def only_retrying(endpoint_id: str) -> Callable[[dict], bool]:
    """The delivery to this endpoint waits for a retry; every other one of the event succeeded."""

    def done(event: dict) -> bool:
        statuses = {d["endpoint_id"]: d["status"] for d in event["deliveries"]}
        others = [s for other, s in statuses.items() if other != endpoint_id]
        return statuses.get(endpoint_id) == "retrying" and all(s == "succeeded" for s in others)

    return done


async def save(client: Client, name: str, workflow_id: str) -> None:
    """The newest run of the workflow."""
    if ARGS.names and name not in ARGS.names:
        return
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    stem = f"{name}-{ARGS.suffix}" if ARGS.suffix else name
    OUT.mkdir(exist_ok=True)
    (OUT / f"{stem}.json").write_text(without_stack_traces(history.to_json()))


def without_stack_traces(history_json: str) -> str:
    """Failures' stack traces name the recording machine's paths; replay does not need them."""

    def scrub(node: object) -> object:
        if isinstance(node, dict):
            return {k: scrub(v) for k, v in node.items() if k != "stackTrace"}
        if isinstance(node, list):
            return [scrub(v) for v in node]
        return node

    return json.dumps(scrub(json.loads(history_json)), indent=2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Record workflow histories for the replay test.")
    parser.add_argument("names", nargs="*", help="write only these histories")
    parser.add_argument("--suffix", help="write <name>-<suffix>.json (the old code's, before a patched change)")
    return parser.parse_args()


ARGS = argparse.Namespace(names=[], suffix=None)


def main() -> None:
    global ARGS
    ARGS = parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        temporal = TemporalServer(work).start()
        receiver = Receiver()
        # A window of 2, so a replay of one event goes in several pages; a recovery run every 2 s.
        stack = Stack(
            temporal=temporal,
            database_url=f"sqlite:///{work / 'h.db'}",
            work_dir=work,
            extra_env={
                "HOOKLINE_FANOUT_WINDOW": "2",
                "HOOKLINE_DISPATCH_RECOVERY_S": "2",
                "HOOKLINE_BREAKER_FAILURES": str(BREAKER_FAILURES),
                "HOOKLINE_BREAKER_PROBE_S": "1",
                "HOOKLINE_AUTO_DISABLE_AFTER_S": "8",
            },
        ).start()
        try:
            asyncio.run(record(stack, receiver))
        finally:
            stack.stop()
            temporal.stop()
            receiver.close()


if __name__ == "__main__":
    main()
