"""The helper process that explains why data breaks a schema (see services.validation).

Run as `python -m hookline.services.schema_helper`: one JSON `[schema, data]` per line in, one JSON list
of reasons per line out. A plain subprocess rather than multiprocessing, which would re-run
the main script of whoever imported the producer. Light imports, so it is ready quickly.
"""

import json
import resource
import sys

from hookline.core.schemas import UnusableSchema, explain

MEMORY_BYTES = 1 << 30  # an explanation that needs more dies here, not in the API


def serve() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    for line in sys.stdin:
        schema, data = json.loads(line)
        try:
            reasons = explain(schema, data) if schema is not None else []
        except UnusableSchema:
            reasons = []
        sys.stdout.write(json.dumps(reasons) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
