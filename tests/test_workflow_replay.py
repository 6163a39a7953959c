"""Recorded histories (tests/record_histories.py) replay against today's workflow code, and carry ids only."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from hookline.workflows.event import EventWorkflow
from hookline.workflows.health import EndpointHealthWorkflow
from hookline.workflows.recovery import DispatchRecoveryWorkflow
from hookline.workflows.sweep import DeliverySweepWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
WORKFLOWS = [EventWorkflow, DeliverySweepWorkflow, DispatchRecoveryWorkflow, EndpointHealthWorkflow]


def test_every_workflow_has_a_recorded_history() -> None:
    recorded = {json.loads(p.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
                for p in HISTORIES}
    assert recorded == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history_holds_no_secret_or_payload(path: Path) -> None:
    text = path.read_text()
    assert "whsec_" not in text
    # Payloads are base64 inside the history; decode them all and look inside.
    import base64

    decoded = " ".join(
        base64.b64decode(p["data"]).decode(errors="replace")
        for p in _payloads(json.loads(text))
    )
    assert "whsec_" not in decoded
    assert '"data"' not in decoded and "webhook-signature" not in decoded
    if "EndpointHealthWorkflow" in text:  # an endpoint's watch knows its endpoint and its probes' deliveries
        assert "ep_" in decoded and "dlv_" in decoded
    elif "DispatchRecoveryWorkflow" not in text:  # its one activity takes nothing and returns a count
        assert "evt_" in decoded  # ids are there


def _payloads(node: object) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            found.append(node)
        for value in node.values():
            found.extend(_payloads(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_payloads(value))
    return found
