"""Opaque, time-sortable ids with a readable prefix, and the workflow ids derived from them."""

import secrets
import time


def new_id(prefix: str) -> str:
    # Millisecond clock first so ids sort newest-last; lists page on the id alone.
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


def event_workflow_id(event_id: str) -> str:
    return f"event-{event_id}"

