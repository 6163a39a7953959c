"""Observability as an operator meets it: one trace per event, JSON logs that leak nothing,
the metrics the dashboard and the alert rules read, and the rules' own unit tests."""

import gzip
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from pydantic import ValidationError

from hookline.core import telemetry
from hookline.core.config import Settings
from hookline.core.logs import JsonFormatter
from hookline.core.summaries import url_host
from hookline.core.temporal import connect_temporal
from tests.harness import ApiClient, Receiver, Stack, TemporalServer, api_client, isolated_stack, wait_until

DEPLOY = Path(__file__).parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "hookline.json"


# --- an OTLP/HTTP receiver ------------------------------------------------------------------------

class OtlpReceiver:
    """A real OTLP/HTTP endpoint on 127.0.0.1 that decodes every span exported to it."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver._take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            service = next(
                (a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: _value(a.value) for a in span.attributes}
                    found.append(
                        {"service": service, "name": span.name, "trace_id": span.trace_id.hex(), "attributes": attributes}
                    )
        with self._lock:
            self.raw.append(body)
            self.spans.extend(found)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_stack(temporal: TemporalServer, work_dir: Path, otlp: OtlpReceiver) -> Iterator[Stack]:
    """A stack of its own with tracing on (OTLP to the receiver above) and JSON logs."""
    yield from isolated_stack(
        temporal, work_dir, f"sqlite:///{work_dir / 'traced.db'}",
        HOOKLINE_LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
        OTEL_BSP_SCHEDULE_DELAY="200",  # ms: spans reach the receiver soon after they end
    )


@pytest.fixture
async def traced_api(traced_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(traced_stack):
        yield client


# --- traces and logs ------------------------------------------------------------------------------

async def test_one_trace_from_publish_to_each_attempt_and_logs_that_leak_nothing(
    traced_api: ApiClient, traced_stack: Stack, otlp: OtlpReceiver, receiver: Receiver, path: str
) -> None:
    url_token = f"urltoken-{uuid.uuid4().hex}"
    header_value = f"headervalue-{uuid.uuid4().hex}"
    payload_marker = f"payloadmarker-{uuid.uuid4().hex}"
    target = f"{path}?token={url_token}"
    receiver.set(target, 500, 200)  # a failed first try, then the activity's retry gets through
    app_id = await traced_api.create_app()
    endpoint = await traced_api.create_endpoint(app_id, receiver.url(target), headers={"x-api-key": header_value})
    secret = await traced_api.secret(app_id, endpoint["id"])
    event = await traced_api.publish(app_id, "invoice.paid", {"note": payload_marker})
    done = await traced_api.wait_event(app_id, event["id"])
    [delivery] = done["deliveries"]
    assert delivery["status"] == "succeeded"
    assert receiver.at(target)[-1].headers["x-api-key"] == header_value  # the header was sent, and is secret

    def of_event(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in spans if s["attributes"].get("hookline.event_id") == event["id"]]

    def complete(spans: list[dict[str, Any]]) -> bool:
        outcomes = {s["attributes"].get("hookline.outcome") for s in of_event(spans)}
        return {"retrying", "succeeded"} <= outcomes and any(s["service"] == "hookline-api" for s in of_event(spans))

    async def exported_spans() -> list[dict[str, Any]]:
        return otlp.snapshot()

    spans = await wait_until(exported_spans, complete, timeout=60)
    ours = of_event(spans)
    [trace_id] = {s["trace_id"] for s in ours}  # the publish request, and both attempts: one trace
    in_trace = [s for s in spans if s["trace_id"] == trace_id]
    assert {"hookline-api", "hookline-worker"} <= {s["service"] for s in in_trace}
    names = {s["name"] for s in in_trace}
    assert "StartWorkflow:EventWorkflow" in names and "RunWorkflow:EventWorkflow" in names
    attempts = [s for s in ours if "hookline.attempt" in s["attributes"]]
    assert sorted(s["attributes"]["hookline.attempt"] for s in attempts) == [1, 2]
    for span in attempts:
        assert span["attributes"]["hookline.delivery_id"] == delivery["id"]
        assert span["attributes"]["hookline.endpoint_id"] == endpoint["id"]
        assert span["attributes"]["hookline.host"] == f"127.0.0.1:{receiver.port}"

    # Nothing secret in any exported span, decoded or raw.
    exported = b"".join(otlp.raw)
    for marker in (url_token, header_value, payload_marker, secret):
        assert marker.encode() not in exported, marker

    # JSON logs: every line one object; every delivery record with the ids and the trace id.
    assert traced_stack.api is not None and traced_stack.worker is not None
    worker_lines = traced_stack.worker.log_path.read_text().splitlines()
    records = [json.loads(line) for line in worker_lines if line.startswith("{")]
    assert len(records) == len(worker_lines), "a worker log line is not JSON"
    delivery_records = [r for r in records if r.get("delivery_id") == delivery["id"]]
    assert [r["outcome"] for r in delivery_records] == ["retrying", "succeeded"]
    for record in delivery_records:
        assert record["logger"] == "hookline.delivery"
        assert (record["event_id"], record["endpoint_id"], record["trace_id"]) == (event["id"], endpoint["id"], trace_id)

    # A replay, for a full run; then no log line of either process names a secret.
    r = await traced_api.http.post(f"/v1/apps/{app_id}/deliveries/{delivery['id']}/replay")
    assert r.status_code == 202, r.text
    await wait_until(lambda: _delivery_records(traced_stack, delivery["id"]), lambda rs: len(rs) >= 3, timeout=60)
    logs = traced_stack.api.log_path.read_text() + traced_stack.worker.log_path.read_text()
    for marker in (url_token, header_value, payload_marker, secret):
        assert marker not in logs, marker


async def _delivery_records(stack: Stack, delivery_id: str) -> list[dict]:
    assert stack.worker is not None
    lines = stack.worker.log_path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("delivery_id") == delivery_id]


# --- metrics --------------------------------------------------------------------------------------

def sample_names(exposition: str) -> set[str]:
    return {m.group(0) for line in exposition.splitlines() if not line.startswith("#") and (m := re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line))}


def sample(exposition: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in exposition.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def scrape(stack: Stack) -> tuple[str, str]:
    async with httpx.AsyncClient() as client:
        api = (await client.get(f"{stack.url}/metrics")).text
        worker = (await client.get(f"http://127.0.0.1:{stack.worker_metrics_port}/metrics")).text
    return api, worker


async def test_metrics_follow_latency_dead_letters_replays_and_statuses(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    before_api, before_worker = await scrape(sqlite_stack)
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path + "/ok"))
    dead = await api.create_endpoint(app_id, receiver.url(path + "/dead"))
    receiver.set(path + "/dead", 500)  # three attempts (FAST_RETRY), then a dead letter
    event = await api.publish(app_id, "invoice.paid", {})
    done = await api.wait_event(app_id, event["id"])
    assert sorted(d["status"] for d in done["deliveries"]) == ["dead_lettered", "succeeded"]
    [dead_letter] = [d for d in done["deliveries"] if d["endpoint_id"] == dead["id"]]
    receiver.set(path + "/dead", 200)
    r = await api.http.post(f"/v1/apps/{app_id}/deliveries/{dead_letter['id']}/replay")
    assert r.status_code == 202, r.text
    await api.wait_event(app_id, event["id"], lambda e: all(d["status"] == "succeeded" for d in e["deliveries"]))

    def moved(pair: tuple[str, str]) -> bool:
        api_text, worker_text = pair
        return (
            sample(worker_text, "hookline_delivery_latency_seconds_count") - sample(before_worker, "hookline_delivery_latency_seconds_count") >= 2
            and sample(worker_text, "hookline_dead_letters_total", reason="exhausted") - sample(before_worker, "hookline_dead_letters_total", reason="exhausted") >= 1
            and sample(worker_text, "hookline_deliveries_replayed_total") - sample(before_worker, "hookline_deliveries_replayed_total") >= 1
            and sample(api_text, "hookline_deliveries", status="succeeded") - sample(before_api, "hookline_deliveries", status="succeeded") >= 2
        )

    # The gauge is recounted at most every few seconds, and other tests' deliveries land too.
    api_text, worker_text = await wait_until(lambda: scrape(sqlite_stack), moved, timeout=30, every=1)
    assert 'hookline_deliveries{status="dead_lettered"}' in api_text
    # Temporal's SDK metrics, from the same worker port: slots, pollers, schedule-to-start.
    for family in ("temporal_worker_task_slots_available", "temporal_num_pollers", "temporal_long_request_total"):
        assert family in worker_text
    # Bounded labels: no event, endpoint or delivery id is ever a label value.
    for text in (api_text, worker_text):
        assert not re.search(r'="(evt|ep|dlv|app)_', text)


async def test_dashboard_and_rules_query_only_what_the_processes_serve(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    # A retry makes the worker run a regular activity too, so its SDK histograms have samples.
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(path))
    receiver.set(path, 500, 200)
    event = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, event["id"])
    api_text, worker_text = await wait_until(
        lambda: scrape(sqlite_stack),
        lambda pair: "temporal_activity_schedule_to_start_latency_seconds_bucket" in pair[1],
        timeout=30,
    )
    served = sample_names(api_text) | sample_names(worker_text)
    queried = queried_metrics()
    assert {"hookline_delivery_latency_seconds_bucket", "hookline_deliveries", "temporal_long_request_total"} <= queried
    missing = queried - served
    assert not missing, f"the dashboard or the rules query metrics no process serves: {sorted(missing)}"


def queried_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load(RULES.read_text())
    expressions += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    names: set[str] = set()
    for expr in expressions:
        without_labels = re.sub(r"\{[^}]*\}", "", expr)
        names |= set(re.findall(r"\b(?:hookline|temporal)_[a-z0-9_]+", without_labels))
    return names


# --- the alert rules ------------------------------------------------------------------------------

def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `apt-get install prometheus` (.ci/run installs it)"
    return found


def test_alert_rules_check_and_pass_their_unit_tests() -> None:
    config = subprocess.run([promtool(), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")], capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr  # the local stack's config loads the rules
    checked = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested_alerts = {t["alertname"] for case in yaml.safe_load(RULE_TESTS.read_text())["tests"] for t in case["alert_rule_test"]}
    assert alerts == tested_alerts  # each rule has a unit test


# --- the Temporal Web UI --------------------------------------------------------------------------

async def test_web_ui_shows_event_summary_and_each_delivery_endpoint_without_credentials(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    token = f"urltoken-{uuid.uuid4().hex}"
    target = f"{path}/secret-path?token={token}"
    receiver.set(target, 500, 200)  # a first try (a local activity), then an activity
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, receiver.url(target))
    event = await api.publish(app_id, "invoice.paid", {})
    await api.wait_event(app_id, event["id"])

    client = await connect_temporal(Settings(temporal_address=sqlite_stack.temporal.address))
    handle = client.get_workflow_handle(event["workflow_id"])
    description = await handle.describe()
    assert await description.static_summary() == f"invoice.paid for {app_id}"
    summaries = []
    async for history_event in handle.fetch_history_events():
        if history_event.HasField("user_metadata") and history_event.user_metadata.HasField("summary"):
            summaries.append(json.loads(history_event.user_metadata.summary.data))
    where = f"{endpoint['id']} (127.0.0.1:{receiver.port})"
    assert f"first try → {where}" in summaries and f"retries → {where}" in summaries
    assert not any(token in s or "secret-path" in s for s in summaries)


# --- units ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://hooks.example.com/services/T0/B0/XXXX?token=abc", "hooks.example.com"),
        ("https://user:password@example.com:8443/p", "example.com:8443"),
        ("http://[2001:db8::1]:8080/x", "[2001:db8::1]:8080"),
        ("https://example.com:99999/", "?"),  # no port number: does not parse
        ("not a url", "?"),
        ("", "?"),
    ],
)
def test_url_host_names_host_and_port_only(url: str, host: str) -> None:
    assert url_host(url) == host


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
    ],
)
def test_tracing_is_on_only_when_the_standard_variables_ask(env: dict[str, str], on: bool) -> None:
    assert telemetry.tracing_requested(env) is on


def test_json_log_lines_carry_extra_fields_and_exceptions() -> None:
    record = logging.LogRecord("hookline.delivery", logging.INFO, __file__, 1, "delivery %s", ("dlv_1",), None)
    record.delivery_id, record.attempt = "dlv_1", 2
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "delivery dlv_1" and line["delivery_id"] == "dlv_1" and line["attempt"] == 2
    assert line["level"] == "INFO" and line["logger"] == "hookline.delivery"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed\nsecond line", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


@pytest.mark.parametrize("value", ["xml", "JSON ", "", "json\\n"])
def test_log_format_takes_text_or_json_only(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(log_format=value)
    assert "log_format" in str(refused.value)
