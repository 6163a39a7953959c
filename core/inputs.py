"""Checks on what a publisher sends, shared by the HTTP API (api/schemas.py) and producer.py."""

import math
import re
from typing import Any

from hookline.core.event_types import NAME_PATTERN

# Deeper documents are refused: the response serializer (and many consumers' parsers) give up
# a little past 250 levels, after the event would already have been recorded and sent.
MAX_JSON_DEPTH = 100
MAX_EVENT_TYPE_LENGTH = 256
MAX_IDEMPOTENCY_KEY_LENGTH = 256
_NAME_RE = re.compile(NAME_PATTERN)


def check_json(value: dict[str, Any]) -> dict[str, Any]:
    """Only what JSON can carry: finite numbers, valid Unicode, bounded nesting.

    Python's parser lets NaN, Infinity, 1e999 and lone surrogates (`"\\ud800"`) through; stored,
    they break the response, the database's JSON type and every subscriber's parser.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for key, item in items:
                if key is not None:
                    if not isinstance(key, str):  # only a producer's dict can have one
                        raise ValueError("object keys must be strings")
                    check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(node, str):
            check_text(node)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
        elif node is not None and not isinstance(node, (bool, int)):
            # Parsed JSON holds nothing else; a producer's dict may (a datetime, a set, bytes).
            raise ValueError(f"{type(node).__name__} is not a JSON value")
    return value


def check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("strings must be valid Unicode (no lone surrogates)") from None


def check_event_type_name(name: str) -> str:
    """The rule of the API's `EventTypeName`: dot-separated words of letters, digits, `_` and `-`."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_EVENT_TYPE_LENGTH or not _NAME_RE.match(name):
        raise ValueError(
            f"event type must be 1 to {MAX_EVENT_TYPE_LENGTH} characters of dot-separated words "
            "(letters, digits, '_', '-'), like 'invoice.paid'"
        )
    return name


def check_idempotency_key(key: str | None) -> str | None:
    """The rule of the API's `Idempotency-Key` header: 1 to 256 characters, printable."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValueError(f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    # An HTTP header cannot carry control characters, and PostgreSQL text cannot hold NUL.
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise ValueError("idempotency key cannot contain control characters")
    check_text(key)
    return key


def check_event(type: str, data: Any, idempotency_key: str | None = None) -> None:
    """Everything the API checks about a publish before it reaches the store; ValueError if not."""
    check_event_type_name(type)
    if not isinstance(data, dict):
        raise ValueError("data must be a JSON object (a dict)")
    try:
        check_json(data)
    except ValueError as exc:
        raise ValueError(f"data: {exc}") from None
    check_idempotency_key(idempotency_key)
