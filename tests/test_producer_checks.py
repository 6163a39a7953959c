"""producer.py refuses what the HTTP API refuses, before anything is recorded, and counts what it publishes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from hookline.core.config import Settings
from hookline.producer import InvalidEvent, Producer
from tests.harness import ApiClient, Receiver, Stack


def nested(depth: int) -> dict:
    doc: dict = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"d": doc}
    return doc


def published() -> float:
    return REGISTRY.get_sample_value("hookline_events_published_total") or 0.0


@pytest.fixture
async def producer(sqlite_stack: Stack) -> AsyncIterator[Producer]:
    settings = Settings(
        temporal_address=sqlite_stack.temporal.address,
        database_url=sqlite_stack.database_url,
        task_queue=sqlite_stack.task_queue,
        data_dir=sqlite_stack.work_dir,
    )
    async with Producer.from_settings(settings) as connected:
        yield connected


# (type, data, idempotency key, a word the error must say)
REFUSED: list[tuple[str, Any, str | None, str]] = [
    ("invoice.paid", {"amount": float("nan")}, None, "finite"),
    ("invoice.paid", {"amount": float("inf")}, None, "finite"),
    ("invoice.paid", {"list": [1, float("-inf")]}, None, "finite"),
    ("invoice.paid", nested(101), None, "nested deeper than 100"),
    ("invoice.paid", {"name": "\ud800"}, None, "surrogate"),
    ("invoice.paid", {"\udfff": 1}, None, "surrogate"),
    ("invoice.paid", {"deep": [{"x": "a\udc00b"}]}, None, "surrogate"),
    ("invoice paid", {}, None, "event type"),
    ("", {}, None, "event type"),
    ("invoice..paid", {}, None, "event type"),
    ("invoice.\ud800", {}, None, "event type"),
    ("x" * 257, {}, None, "event type"),
    ("invoice.paid", ["not", "an", "object"], None, "JSON object"),
    ("invoice.paid", "text", None, "JSON object"),
    ("invoice.paid", {1: "int key"}, None, "keys must be strings"),
    ("invoice.paid", {"when": datetime(2026, 1, 1)}, None, "not a JSON value"),
    ("invoice.paid", {"raw": b"bytes"}, None, "not a JSON value"),
    ("invoice.paid", {"ok": 1}, "", "idempotency key"),
    ("invoice.paid", {"ok": 1}, "k" * 257, "idempotency key"),
    ("invoice.paid", {"ok": 1}, "nul\x00key", "control characters"),
    ("invoice.paid", {"ok": 1}, "lone\ud800", "surrogate"),
]


@pytest.mark.parametrize(("type_", "data", "key", "says"), REFUSED)
async def test_producer_refuses_what_the_api_refuses_and_records_nothing(
    producer: Producer, api: ApiClient, type_: str, data: Any, key: str | None, says: str
) -> None:
    app_id = await api.create_app("producer-checks")
    before = published()
    with pytest.raises(InvalidEvent) as refused:
        await producer.publish(app_id, type_, data, idempotency_key=key)
    assert isinstance(refused.value, ValueError)  # callers that catch ValueError catch it too
    assert says in str(refused.value)
    r = await api.http.get(f"/v1/apps/{app_id}/events")
    assert r.status_code == 200 and r.json()["data"] == []
    assert published() == before


async def test_the_deepest_document_the_api_takes_the_producer_takes_too(
    producer: Producer, api: ApiClient, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app("producer-limit")
    await api.create_endpoint(app_id, receiver.url(path))
    event = await producer.publish(app_id, "invoice.paid", nested(100))
    done = await api.wait_event(app_id, event.id)
    assert done["data"] == nested(100)
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]


async def test_api_refuses_the_same_json_the_producer_refuses(api: ApiClient) -> None:
    """The two share one set of checks: what JSON can express of the list above is a 422 over HTTP."""
    app_id = await api.create_app("api-checks")
    for raw in [b'{"type": "invoice.paid", "data": {"a": NaN}}', b'{"type": "invoice paid", "data": {}}',
                b'{"type": "invoice.paid", "data": {"a": "\\ud800"}}',
                b'{"type": "invoice.paid", "data": ' + b'{"d": ' * 101 + b"1" + b"}" * 101 + b"}"]:
        r = await api.http.post(f"/v1/apps/{app_id}/events", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, r.text
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []


async def test_producer_publishes_count_in_the_published_metric(producer: Producer, api: ApiClient) -> None:
    app_id = await api.create_app("producer-metric")
    key = uuid.uuid4().hex
    before = published()
    await producer.publish(app_id, "invoice.paid", {"n": 1}, idempotency_key=key)
    assert published() == before + 1
    await producer.publish(app_id, "invoice.paid", {"n": 1}, idempotency_key=key)  # an idempotent repeat
    assert published() == before + 1
    await producer.publish(app_id, "invoice.paid", {"n": 2})
    assert published() == before + 2
