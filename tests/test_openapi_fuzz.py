"""A schema-driven fuzzer against the real API: /openapi.json must describe what the API does.

schemathesis generates valid and invalid requests for every operation from the published schema
and runs every check on each answer: no 5xx, only documented statuses, content types, headers and
bodies that match the schema, schema-violating requests refused. Any mismatch fails the test.
One check is left out: positive_data_acceptance, which expects every schema-valid body to be
accepted; some rules cannot be written in JSON Schema (a secret's decoded length, reserved
header names, a valid JSON Schema, a name that is not only whitespace) and are 422 by design. Ids in paths point at a throwaway
application (so the fuzzer reaches past 404s without touching other tests' data), and every
endpoint URL it invents is rewritten to a closed port on 127.0.0.1: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.harness import TOKEN, ApiClient, Stack

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 25
NOWHERE = "127.0.0.1:9"  # discard port, nothing listens: deliveries there just fail


@pytest.fixture(scope="module")
def world(sqlite_stack: Stack) -> Iterator[dict[str, str]]:
    """A throwaway application with an endpoint, an event and its delivery."""

    async def build() -> dict[str, str]:
        api = ApiClient(sqlite_stack.url)
        try:
            app_id = await api.create_app("fuzz-target")
            endpoint = await api.create_endpoint(app_id, f"http://{NOWHERE}/hook", retry={"max_attempts": 1})
            event = await api.publish(app_id, "fuzz.happened", {"n": 1})
            done = await api.wait_event(app_id, event["id"])
            return {
                "app_id": app_id, "endpoint_id": endpoint["id"], "event_id": event["id"],
                "delivery_id": done["deliveries"][0]["id"],
            }
        finally:
            await api.aclose()

    yield asyncio.run(build())


def aim(case: Case, world: dict[str, str]) -> None:
    """Point well-formed ids at the throwaway application's resources; keep URLs on loopback."""
    params = case.path_parameters or {}
    if "app_id" in params and not (case.method == "DELETE" and case.path == "/v1/apps/{app_id}"):
        params["app_id"] = world["app_id"]
    for name in ("endpoint_id", "event_id", "delivery_id"):
        value = params.get(name)
        # Half the well-formed ids (by their last digit) become real ones, so deeper paths run too.
        if isinstance(value, str) and re.fullmatch(r"[a-z]+_[0-9a-f]{28}", value) and int(value[-1], 16) % 2:
            params[name] = world[name]
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        parts = urlsplit(case.body["url"])
        if parts.scheme in ("http", "https"):
            case.body["url"] = urlunsplit((parts.scheme, NOWHERE, parts.path, parts.query, ""))


def fuzz(operation: APIOperation, mode: GenerationMode, world: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Case) -> None:
        aim(case, world)
        case.call_and_validate(headers=AUTH, timeout=30, excluded_checks=[positive_data_acceptance])

    run()


def test_every_operation_answers_as_documented(sqlite_stack: Stack, world: dict[str, str]) -> None:
    schema = schemathesis.openapi.from_url(f"{sqlite_stack.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, world)
            except Unsatisfiable:
                continue  # nothing to get wrong (`GET /healthz` takes no input)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - every operation runs; all failures are reported
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
