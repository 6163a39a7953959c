"""Event-type versions: their labels, version pins in subscriptions, and transformations (no I/O).

A version is `v1`, `v2`, … A subscription entry may pin one: `invoice.paid@v1` or
`invoice.paid@latest`; an entry without a pin receives each event as it was published.
A version may declare how to derive its payload from another version's: a JMESPath
expression (declarative, side-effect free, no code), evaluated in the delivery activity.
"""

import json
import re
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError, JMESPathTypeError

from hookline.core.event_types import subscribed
from hookline.core.inputs import check_json
from hookline.core.schemas import UnusableSchema, compile_schema

VERSION_PATTERN = r"^v[1-9][0-9]{0,3}$"  # v1 … v9999
PIN_PATTERN = r"@(v[1-9][0-9]{0,3}|latest)"
LATEST = "latest"
MAX_EXPRESSION_LENGTH = 4096
MAX_SHOWN = 200  # characters of an error quoted in a reason
_VERSION_RE = re.compile(VERSION_PATTERN)


def label(number: int) -> str:
    return f"v{number}"


def number(version: str) -> int:
    """The number of a label `vN`; ValueError for anything else."""
    if not _VERSION_RE.match(version):
        raise ValueError(f"version must look like v1, v2, … (got {version[:20]!r})")
    return int(version[1:])


def split_pin(entry: str) -> tuple[str, str | None]:
    """(`invoice.paid`, `v1` | `latest` | None) of a subscription entry."""
    if "@" not in entry:
        return entry, None
    name, _, pin = entry.partition("@")
    return name, pin


def pin_for(filters: list[str] | None, event_type: str) -> str | None:
    """The version an endpoint asked for this type: the first pinned entry that matches, else
    None (as published). Entries without `@` cost a substring test only."""
    for entry in filters or ():
        if "@" in entry:
            name, pin = split_pin(entry)
            if subscribed([name], event_type):
                return pin
    return None


class TransformFailed(ValueError):
    """A transformation could not produce a valid payload; the message is the delivery's reason."""


def check_expression(expression: str) -> None:
    """ValueError unless `expression` is JMESPath that compiles."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(f"a transformation is at most {MAX_EXPRESSION_LENGTH} characters")
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"not a JMESPath expression: {str(exc).splitlines()[0][:MAX_SHOWN]}") from None


def transform(expression: str, data: dict, *, schema: dict | None, target: str, max_bytes: int) -> dict:
    """The payload `expression` derives from `data`, checked like a published one and against
    the target version's schema; TransformFailed says why not."""
    try:
        result: Any = jmespath.search(expression, data)
    except JMESPathError as exc:
        raise TransformFailed(f"transformation to {target} failed: {_without_values(exc)}") from None
    if not isinstance(result, dict):
        raise TransformFailed(f"transformation to {target} gave {type(result).__name__}, not a JSON object")
    try:
        check_json(result)
        size = len(json.dumps(result, separators=(",", ":"), ensure_ascii=False).encode())
    except (ValueError, RecursionError) as exc:
        raise TransformFailed(f"transformation to {target} gave an unusable object: {exc}") from None
    if size > max_bytes:
        raise TransformFailed(f"transformation to {target} gave {size} bytes, over the {max_bytes}-byte limit")
    if schema is not None:
        try:
            validator = compile_schema(schema)
        except UnusableSchema as exc:
            raise TransformFailed(f"the schema of {target} cannot be used: {exc}") from None
        if not validator.is_valid(result):
            first = next(iter(validator.iter_errors(result)), None)
            why = (
                f"{_where(first.instance_path)} breaks '{'/'.join(map(str, first.schema_path))}'"
                if first
                else "invalid"
            )
            raise TransformFailed(f"transformation to {target} does not match its schema: {why[:MAX_SHOWN]}")
    return result


# A reason is stored, shown and carried in Temporal's history: it names places and rules, never
# the payload's values (a validator's or JMESPath's own message quotes them).

def _where(path: Any) -> str:
    return "/".join(map(str, path)) or "(root)"


def _without_values(exc: JMESPathError) -> str:
    function = getattr(exc, "function_name", None)
    if isinstance(exc, JMESPathTypeError) and function:
        return f"{function}() was given a value of the wrong type"
    return type(exc).__name__
