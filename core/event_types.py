"""Event type names and the subscription patterns that match them."""

import re
from fnmatch import fnmatchcase

NAME_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# A subscription entry: a name, or a name with `*` wildcards (`invoice.*`, `*`).
FILTER_PATTERN = r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*$"
_FILTER_RE = re.compile(FILTER_PATTERN)


def is_valid_filter(pattern: str) -> bool:
    return bool(_FILTER_RE.match(pattern))


def subscribed(filters: list[str] | None, event_type: str) -> bool:
    """`None` subscribes to everything; `*` matches any run of characters, dots included."""
    if filters is None:
        return True
    return any(fnmatchcase(event_type, f) for f in filters)
