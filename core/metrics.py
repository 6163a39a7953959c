"""Prometheus metrics of Hookline's processes.

The API serves its metrics (the default registry) at /metrics; the worker serves its own
registry on `HOOKLINE_WORKER_METRICS_PORT`. Separate registries, because the API imports the
activity module (the workflow code names its activities) and would otherwise list the worker's
families at zero.
"""

from prometheus_client import CollectorRegistry, Counter, GCCollector, Gauge, Histogram, PlatformCollector, ProcessCollector

# --- the API -------------------------------------------------------------------------------------

EVENTS_PUBLISHED = Counter("hookline_events_published_total", "Events accepted for delivery (new, not idempotent repeats)")
REPLAYS_REQUESTED = Counter("hookline_replays_requested_total", "Replay requests accepted", ["scope"])
# Set from one grouped count of the store at each scrape (api/routes/health.py).
ENDPOINTS_BY_HEALTH = Gauge(
    "hookline_endpoints", "Endpoints by health; disabled ones apart", ["health"]  # healthy | failing | disabled
)

# --- the worker ----------------------------------------------------------------------------------

WORKER_REGISTRY = CollectorRegistry()
ProcessCollector(registry=WORKER_REGISTRY)
PlatformCollector(registry=WORKER_REGISTRY)
GCCollector(registry=WORKER_REGISTRY)

DELIVERY_ATTEMPTS = Counter(
    "hookline_delivery_attempts_total",
    "HTTP attempts of deliveries, by outcome",
    ["outcome"],  # succeeded | retrying | dead_lettered | probe_failed
    registry=WORKER_REGISTRY,
)
ATTEMPT_SECONDS = Histogram(
    "hookline_delivery_attempt_seconds",
    "Duration of one HTTP attempt, receiver included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=WORKER_REGISTRY,
)
BREAKER_TRANSITIONS = Counter(
    "hookline_endpoint_health_transitions_total",
    "Circuit-breaker transitions of endpoints, by the state entered",
    ["to"],  # failing | healthy | disabled
    registry=WORKER_REGISTRY,
)
