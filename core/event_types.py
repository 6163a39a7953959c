"""Event type names and the subscription patterns that match them."""

import re
from fnmatch import fnmatchcase

NAME_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# A subscription entry: a name, or a name with `*` wildcards (`invoice.*`, `*`), optionally
# pinned to a version (`invoice.paid@v1`, `invoice.paid@latest`; see core/versions.py).
FILTER_PATTERN = r"^[A-Za-z0-9_*-]+(\.[A-Za-z0-9_*-]+)*(@(v[1-9][0-9]{0,3}|latest))?$"
_FILTER_RE = re.compile(FILTER_PATTERN)


def is_valid_filter(pattern: str) -> bool:
    return bool(_FILTER_RE.match(pattern))


def subscribed(filters: list[str] | None, event_type: str) -> bool:
    """`None` subscribes to everything; `*` matches any run of characters, dots included; a
    version pin (`@v1`) does not change which types match."""
    if filters is None:
        return True
    return any(fnmatchcase(event_type, f.partition("@")[0] if "@" in f else f) for f in filters)
