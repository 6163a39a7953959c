"""Prometheus metrics of Hookline's processes (the API serves them at /metrics, the worker on
`HOOKLINE_WORKER_METRICS_PORT`)."""

from prometheus_client import Counter, Histogram

EVENTS_PUBLISHED = Counter("hookline_events_published_total", "Events accepted for delivery (new, not idempotent repeats)")
REPLAYS_REQUESTED = Counter("hookline_replays_requested_total", "Replay requests accepted", ["scope"])
DELIVERY_ATTEMPTS = Counter(
    "hookline_delivery_attempts_total",
    "HTTP attempts of deliveries, by outcome",
    ["outcome"],  # succeeded | retrying | dead_lettered
)
ATTEMPT_SECONDS = Histogram(
    "hookline_delivery_attempt_seconds",
    "Duration of one HTTP attempt, receiver included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
