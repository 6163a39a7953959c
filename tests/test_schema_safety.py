"""Event-type schemas refer only to themselves, and validating data never fetches or stalls."""

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hookline.store import crud
from tests.harness import ApiClient, Stack, store_sessions
from tests.test_api_inputs import assert_error, get_ok


class Trap:
    """An HTTP server on 127.0.0.1 that serves a permissive schema and counts every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                trap.requests.append(self.path)
                body = b'{"type": "object"}'
                self.send_response(200)
                self.send_header("content-type", "application/schema+json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    server = Trap()
    yield server
    server.server.shutdown()


def new_name() -> str:
    return f"s{uuid.uuid4().hex[:8]}.created"


def refused_schemas(base: str) -> dict[str, dict]:
    return {
        "remote-ref": {"$ref": f"{base}/x.json"},
        "file-ref": {"$ref": "file:///etc/passwd"},
        "relative-ref": {"$ref": "x.json"},
        "relative-under-remote-id": {"$id": f"{base}/root.json", "properties": {"a": {"$ref": "other.json"}}},
        "nested-remote-ref": {"type": "object", "properties": {"a": {"items": {"$ref": f"{base}/y.json#/a"}}}},
        "dynamic-ref": {"$dynamicRef": f"{base}/d.json#meta"},
        "recursive-ref": {"$recursiveRef": f"{base}/r.json"},
        "remote-schema": {"$schema": f"{base}/meta.json", "type": "object"},
        "unknown-draft": {"$schema": "https://json-schema.org/draft/2099-01/schema"},
    }


CASES = list(refused_schemas("http://127.0.0.1:1"))


@pytest.mark.parametrize("case", CASES)
async def test_schema_that_refers_outside_itself_is_422_and_fetches_nothing(api: ApiClient, trap: Trap, case: str) -> None:
    schema = refused_schemas(trap.url)[case]
    name = new_name()
    body = assert_error(await api.http.post("/v1/event-types", json={"name": name, "schema": schema}), 422)
    offending = schema.get("$schema") or str(schema)
    assert ("$schema" in body["detail"]) if "$schema" in schema else ("ref" in body["detail"].lower())
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404

    r = await api.http.post("/v1/event-types", json={"name": name, "schema": {"type": "object"}})
    assert r.status_code == 201, r.text
    assert_error(await api.http.patch(f"/v1/event-types/{name}", json={"schema": schema}), 422)
    assert (await get_ok(api, f"/v1/event-types/{name}"))["schema"] == {"type": "object"}
    assert trap.requests == [], offending


async def test_refusal_names_the_offending_ref(api: ApiClient, trap: Trap) -> None:
    ref = f"{trap.url}/named.json"
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"$ref": ref}}}
    body = assert_error(await api.http.post("/v1/event-types", json={"name": new_name(), "schema": schema}), 422)
    assert ref in body["detail"]
    assert trap.requests == []


async def test_schema_stored_by_an_older_version_with_a_remote_ref_never_fetches(
    api: ApiClient, sqlite_stack: Stack, trap: Trap, tmp_path: Path
) -> None:
    name = new_name()
    async with store_sessions(sqlite_stack.database_url, tmp_path) as sessions, sessions() as session:
        schema = {"type": "object", "properties": {"a": {"$ref": f"{trap.url}/old.json"}}}
        await crud.create_event_type(session, name=name, description="old", json_schema=schema)
    app_id = await api.create_app()

    r = await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"a": 1}})
    body = assert_error(r, 422)
    assert name in body["detail"]
    assert (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"] == []
    assert trap.requests == []


async def test_catastrophic_pattern_answers_within_a_second_and_health_stays_up(api: ApiClient) -> None:
    name = new_name()
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    assert (await api.http.post("/v1/event-types", json={"name": name, "schema": schema})).status_code == 201
    app_id = await api.create_app()

    async def health_while(publishing: asyncio.Task) -> list[float]:
        waits = []
        while not publishing.done():
            started = time.perf_counter()
            assert (await api.http.get("/healthz")).status_code == 200
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
        return waits

    started = time.perf_counter()
    publishing = asyncio.create_task(
        api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"code": "a" * 40 + "!"}})
    )
    waits = await health_while(publishing)
    r = await publishing
    assert time.perf_counter() - started < 1.0
    body = assert_error(r, 422)
    assert "code" in body["detail"] and "^(a+)+$" in body["detail"]
    assert all(w < 0.5 for w in waits), waits
    assert (await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"code": "a" * 40}})).status_code == 202


async def test_schema_whose_errors_explode_still_answers_422_quickly(api: ApiClient) -> None:
    # Each level offers two identical refs: listing every failing branch would take 2^24 errors.
    depth = 24
    defs = {f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(depth)}
    defs[f"d{depth}"] = {"type": "string"}
    name = new_name()
    schema = {"type": "object", "properties": {"v": {"$ref": "#/$defs/d0"}}, "$defs": defs}
    assert (await api.http.post("/v1/event-types", json={"name": name, "schema": schema})).status_code == 201
    app_id = await api.create_app()

    started = time.perf_counter()
    body = assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"v": 5}}), 422)
    assert time.perf_counter() - started < 2.0
    assert name in body["detail"]
    assert (await api.http.get("/healthz")).status_code == 200
    assert (await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"v": "x"}})).status_code == 202

    # The helper that was killed is replaced: an ordinary violation is explained again.
    plain = new_name()
    plain_schema = {"type": "object", "required": ["amount"]}
    assert (await api.http.post("/v1/event-types", json={"name": plain, "schema": plain_schema})).status_code == 201
    body = assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json={"type": plain, "data": {}}), 422)
    assert "amount" in body["detail"]


async def test_local_refs_into_defs_still_validate(api: ApiClient) -> None:
    name = new_name()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["customer"],
        "properties": {"customer": {"$ref": "#/$defs/customer"}},
        "$defs": {"customer": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
    }
    r = await api.http.post("/v1/event-types", json={"name": name, "schema": schema})
    assert r.status_code == 201, r.text
    app_id = await api.create_app()

    good = await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"customer": {"id": "c1"}}})
    assert good.status_code == 202, good.text
    bad = assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {"customer": {"id": 7}}}), 422)
    assert "customer/id" in bad["detail"] and "string" in bad["detail"]
    missing = assert_error(await api.http.post(f"/v1/apps/{app_id}/events", json={"type": name, "data": {}}), 422)
    assert "customer" in missing["detail"]
    assert [e["data"] for e in (await get_ok(api, f"/v1/apps/{app_id}/events"))["data"]] == [{"customer": {"id": "c1"}}]


@pytest.mark.parametrize(
    "schema",
    [{"$ref": "#/$defs/missing"}, {"type": "string", "pattern": "(a"}],
    ids=["dangling-local-ref", "bad-pattern"],
)
async def test_schema_that_cannot_compile_is_422(api: ApiClient, schema: dict) -> None:
    name = new_name()
    assert_error(await api.http.post("/v1/event-types", json={"name": name, "schema": schema}), 422)
    assert (await api.http.get(f"/v1/event-types/{name}")).status_code == 404


async def test_draft_07_schema_with_local_definitions_is_accepted(api: ApiClient) -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"n": {"type": "integer"}},
        "properties": {"n": {"$ref": "#/definitions/n"}},
    }
    r = await api.http.post("/v1/event-types", json={"name": new_name(), "schema": schema})
    assert r.status_code == 201, r.text
