"""The event-type catalog as an AsyncAPI 3.0 document (GET /v1/event-types/asyncapi).

One channel, `webhooks`: every endpoint's URL, where Hookline sends (the `send` operation).
One message per type and version, named `{type}.{version}` (`invoice.paid.v2`); its payload is
the envelope a subscriber receives, with `data` under the version's JSON Schema; the Standard
Webhooks and version headers are the messages' headers.
"""

import re
from typing import Any

from hookline.core import versions as versions_core
from hookline.core.version import VERSION
from hookline.store.tables import EventType, EventTypeVersion

ASYNCAPI_VERSION = "3.0.0"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")  # component keys: ^[a-zA-Z0-9\.\-_]+$

HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["webhook-id", "webhook-timestamp", "webhook-signature", "webhook-version"],
    "properties": {
        "webhook-id": {"type": "string", "description": "The event id, the same on every retry and replay"},
        "webhook-timestamp": {"type": "string", "description": "Unix seconds of this attempt"},
        "webhook-signature": {"type": "string", "description": "v1,<base64 HMAC-SHA256>, space-separated when several"},
        "webhook-version": {"type": "string", "description": "The version of the event type this body is at"},
        "webhook-deprecation": {"type": "string", "description": "`true` when that version is deprecated"},
        "sunset": {"type": "string", "description": "HTTP date after which that version is no longer published"},
    },
}


def _message(event_type: EventType, version: EventTypeVersion) -> dict[str, Any]:
    label = versions_core.label(version.version)
    data_schema = version.json_schema if version.json_schema is not None else {"type": "object"}
    message: dict[str, Any] = {
        "name": f"{event_type.name}.{label}",
        "title": f"{event_type.name} {label}",
        "contentType": "application/json",
        "headers": HEADERS,
        "payload": {
            "type": "object",
            "required": ["id", "type", "timestamp", "data"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": event_type.name},
                "version": {"const": label},
                "timestamp": {"type": "string", "format": "date-time"},
                "data": data_schema,
            },
        },
    }
    if version.description:
        message["summary"] = version.description
    if version.example is not None:
        payload = {"type": event_type.name, "version": label, "data": version.example}
        message["examples"] = [{"name": "example", "payload": payload}]
    if version.deprecated:
        message["x-deprecated"] = True
        if version.sunset_at is not None:
            message["x-sunset"] = version.sunset_at.isoformat().replace("+00:00", "Z")
    return message


def asyncapi(types: list[tuple[EventType, list[EventTypeVersion]]]) -> dict[str, Any]:
    """The document for these types, each with its versions (oldest first)."""
    messages: dict[str, Any] = {}
    for event_type, versions in types:
        for version in versions:
            key = _KEY_UNSAFE.sub("_", f"{event_type.name}.{versions_core.label(version.version)}")
            messages[key] = _message(event_type, version)
    refs = {key: {"$ref": f"#/components/messages/{key}"} for key in messages}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Hookline event catalog",
            "version": VERSION,
            "description": "The webhooks Hookline sends: every event type at every version (docs/event-types.md).",
        },
        "defaultContentType": "application/json",
        "channels": {
            "webhooks": {
                "address": None,  # each endpoint's own URL
                "description": "An endpoint's URL: Hookline POSTs each event it subscribes to there.",
                "messages": refs,
            }
        },
        "operations": {
            "sendWebhook": {
                "action": "send",
                "channel": {"$ref": "#/channels/webhooks"},
                "messages": [{"$ref": f"#/channels/webhooks/messages/{key}"} for key in messages],
            }
        },
        "components": {"messages": messages},
    }
