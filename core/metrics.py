"""Prometheus metrics of Hookline's processes.

The API serves its metrics (the default registry) at /metrics; the worker serves its own
registry on `HOOKLINE_WORKER_METRICS_PORT`. Separate registries, because the API imports the
activity module (the workflow code names its activities) and would otherwise list the worker's
families at zero.
"""

from collections.abc import Iterator, Mapping

from prometheus_client import (
    CollectorRegistry, Counter, GCCollector, Gauge, Histogram, PlatformCollector, ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

# --- the API -------------------------------------------------------------------------------------

EVENTS_PUBLISHED = Counter(
    "hookline_events_published_total", "Events accepted for delivery (new, not idempotent repeats)"
)
REPLAYS_REQUESTED = Counter("hookline_replays_requested_total", "Replay requests accepted", ["scope"])
# Set from one grouped count of the store at each scrape (api/routes/health.py).
ENDPOINTS_BY_HEALTH = Gauge(
    "hookline_endpoints", "Endpoints by health; disabled ones apart", ["health"]  # healthy | failing | disabled
)

# Every status a delivery can be in: the label's values, each listed (at 0 too) once counted.
DELIVERY_STATUSES = ("pending", "paused", "retrying", "succeeded", "dead_lettered")


class DeliveriesByStatus(Collector):
    """`hookline_deliveries{status}`: the store's deliveries by status, as last counted.

    The /metrics route recounts (one grouped COUNT) when the last count is older than a few
    seconds, then the registry reads it here; a collector cannot await the store itself.
    """

    def __init__(self) -> None:
        self.counts: Mapping[str, int] | None = None
        self.counted_at = float("-inf")  # the event loop's clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.counts is None:  # not counted yet: no family rather than wrong zeros
            return
        family = GaugeMetricFamily("hookline_deliveries", "Deliveries in the store, by status", labels=["status"])
        for status in DELIVERY_STATUSES:
            family.add_metric([status], self.counts.get(status, 0))
        yield family


DELIVERIES_BY_STATUS = DeliveriesByStatus()
REGISTRY.register(DELIVERIES_BY_STATUS)

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
DELIVERY_LATENCY = Histogram(
    "hookline_delivery_latency_seconds",
    "From the event's publish to the 2xx of its delivery, retries included",
    # From a first try that gets through at once to the last retries of a default schedule (days).
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600),
    registry=WORKER_REGISTRY,
)
DEAD_LETTERS = Counter(
    "hookline_dead_letters_total",
    "Deliveries closed as dead letters, by why",
    # exhausted (attempts used up) | gone (410) | blocked (private destination)
    # | endpoint_closed (disabled or deleted) | gave_up (Temporal stopped retrying)
    ["reason"],
    registry=WORKER_REGISTRY,
)
# Every bounded label value listed from the start, at 0: a rate() over a series that appears
# only at its first increment misses that increment, and alerts would start late.
for _outcome in ("succeeded", "retrying", "dead_lettered"):
    DELIVERY_ATTEMPTS.labels(_outcome)
for _reason in ("exhausted", "gone", "blocked", "endpoint_closed", "gave_up"):
    DEAD_LETTERS.labels(_reason)
DELIVERIES_REPLAYED = Counter(
    "hookline_deliveries_replayed_total",
    "Deliveries restarted by a replay (one replay request may restart many)",
    registry=WORKER_REGISTRY,
)
# Labels stay bounded: only types with versions count here, and those are the catalog's
# (operator-registered) names, each with its few versions.
VERSION_DELIVERIES = Counter(
    "hookline_version_deliveries_total",
    "Deliveries of event types with versions that succeeded, by type and version",
    ["type", "version"],
    registry=WORKER_REGISTRY,
)
BREAKER_TRANSITIONS = Counter(
    "hookline_endpoint_health_transitions_total",
    "Circuit-breaker transitions of endpoints, by the state entered",
    ["to"],  # failing | healthy | disabled
    registry=WORKER_REGISTRY,
)
