"""Validating published `data` against its event type's schema without holding the event loop.

Deciding valid/invalid runs in-process on a cached validator (linear-time patterns, no
retrieval). Explaining *why* data is invalid can cost far more (a schema whose `anyOf`s nest
through refs makes jsonschema-rs collect every branch's errors: seconds and gigabytes), so it
runs in a helper process under a time budget; past it the answer is still 422, only shorter.
"""

import asyncio
import json
import sys
from collections import OrderedDict
from typing import Any

import jsonschema_rs

from hookline.core.schemas import UnusableSchema, compile_schema
from hookline.services.errors import SchemaViolation

CACHE_SIZE = 256
EXPLAIN_BUDGET_S = 0.5
START_BUDGET_S = 30.0  # a cold helper imports jsonschema-rs once; that is not the data's fault
HELPER_LINE_LIMIT = 16 << 20

_validators: OrderedDict[str, tuple[dict, jsonschema_rs.Validator]] = OrderedDict()
_helper: asyncio.subprocess.Process | None = None
_helper_lock: asyncio.Lock | None = None


def _validator(type: str, schema: dict) -> jsonschema_rs.Validator:
    """The compiled validator for this type's current schema (recompiled when it changes)."""
    cached = _validators.get(type)
    if cached is not None and cached[0] == schema:
        _validators.move_to_end(type)
        return cached[1]
    validator = compile_schema(schema)
    _validators[type] = (schema, validator)
    if len(_validators) > CACHE_SIZE:
        _validators.popitem(last=False)
    return validator


async def _ask(helper: asyncio.subprocess.Process, schema: dict | None, data: Any) -> list[str]:
    assert helper.stdin is not None and helper.stdout is not None
    helper.stdin.write(json.dumps([schema, data]).encode() + b"\n")
    await helper.stdin.drain()
    answer = await helper.stdout.readline()
    if not answer:
        raise ConnectionError("the schema helper exited")  # out of memory, say
    return json.loads(answer)


async def _ready_helper() -> asyncio.subprocess.Process:
    """The running helper, or a new one that has answered a first empty question."""
    global _helper
    if _helper is None or _helper.returncode is not None:
        _helper = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hookline.services.schema_helper",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=HELPER_LINE_LIMIT,
        )
        await _ask(_helper, None, None)
    return _helper


async def _kill(helper: asyncio.subprocess.Process | None) -> None:
    if helper is not None and helper.returncode is None:
        helper.kill()
        await helper.wait()


async def _reasons(schema: dict, data: Any) -> list[str]:
    """Why `data` is invalid, or [] if the helper could not say within the budget.

    One question at a time; a helper still busy past the budget is killed and the next
    question starts a fresh one, so a slow schema costs a helper process, never the API."""
    global _helper_lock
    if _helper_lock is None:
        _helper_lock = asyncio.Lock()
    try:
        await asyncio.wait_for(_helper_lock.acquire(), EXPLAIN_BUDGET_S)
    except TimeoutError:
        return []
    try:
        helper = await asyncio.wait_for(_ready_helper(), START_BUDGET_S)
        return await asyncio.wait_for(_ask(helper, schema, data), EXPLAIN_BUDGET_S)
    except (TimeoutError, ConnectionError, OSError, ValueError):
        await _kill(_helper)
        return []
    finally:
        _helper_lock.release()


async def check_data(type: str, schema: dict, data: Any) -> None:
    """SchemaViolation (422) unless `data` satisfies `schema`; answers within about a second."""
    try:
        validator = _validator(type, schema)
    except UnusableSchema as exc:
        # Stored before the registration rules existed (a remote ref, say): nothing is fetched.
        raise SchemaViolation(f"the schema of {type} cannot be used ({exc}); register a corrected schema") from exc
    if validator.is_valid(data):
        return
    reasons = await _reasons(schema, data)
    detail = "; ".join(reasons) if reasons else "its errors took too long to list"
    raise SchemaViolation(f"data does not match the schema of {type}: {detail}")
