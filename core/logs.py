"""How every Hookline process writes its log: `HOOKLINE_LOG_FORMAT=text` (a line for people) or
`json` (one object a line, for a log pipeline), on stderr.

A record's `extra` fields (ids, status, duration) become keys of its JSON object; the text form
has them in its message already. With tracing on, every record made inside a span also
carries `trace_id` and `span_id`, so a log line leads to its trace.
"""

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Literal

from hookline.core import telemetry

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# uvicorn repeats its message with terminal colours.
_SKIPPED = _STANDARD | {"color_message"}


class TraceContext(logging.Filter):
    """Adds the current trace and span ids to a record (tracing on, inside a span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if telemetry.ENABLED and getattr(record, "trace_id", None) is None:
            ids = telemetry.current_span_ids()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _SKIPPED and not key.startswith("_") and value is not None:
                entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: Literal["text", "json"]) -> None:
    """One handler on the root logger, at INFO, in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(TraceContext())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # httpx logs every request with its URL at INFO; endpoint URLs often carry credentials.
    logging.getLogger("httpx").setLevel(logging.WARNING)
