"""What the Temporal Web UI shows of an event workflow and of each delivery: ids, a type, a host.

Summaries are stored in the workflow's history and shown to anyone who can read the namespace:
they name the endpoint by id and host only. A URL's path and query often carry credentials
(`?token=…`, Slack-style secret paths), so they never appear here.
"""

from urllib.parse import urlsplit


def url_host(url: str) -> str:
    """`host` or `host:port` of an endpoint URL; `?` for a URL that does not parse."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "?"
    if not host:
        return "?"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def event_summary(event_type: str, app_id: str) -> str:
    """The event workflow's static summary: one line in the Web UI's workflow list."""
    return f"{event_type} for {app_id}"


def endpoints_details(count: int, more_to_come: bool) -> str:
    """The event workflow's current details once its endpoints are known (so far, while paging)."""
    noun = "endpoint" if count == 1 else "endpoints"
    return f"delivering to {count}{'+' if more_to_come else ''} {noun}"


def delivery_summary(endpoint_id: str, host: str | None, *, first_try: bool) -> str:
    """A delivery activity's summary, so the timeline reads like a delivery log (the Web UI shows
    it after the activity type: `deliver • retries → ep_… (api.example.com)`)."""
    where = f"{endpoint_id} ({host})" if host else endpoint_id
    return f"{'first try' if first_try else 'retries'} → {where}"
