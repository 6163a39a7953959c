"""Hookline's events about itself: the built-in application they are published to, and their types."""

# Exists from start-up (the API and the worker create it) and cannot be deleted.
HOOKLINE_APP_ID = "app_hookline"
HOOKLINE_APP_NAME = "Hookline"

ENDPOINT_FAILING = "endpoint.failing"
ENDPOINT_RECOVERED = "endpoint.recovered"
ENDPOINT_DISABLED = "endpoint.disabled"
DELIVERY_DEAD_LETTERED = "delivery.dead_lettered"

# An endpoint's `health`; a disabled endpoint keeps the health it had, the gauge counts it apart.
HEALTHY = "healthy"
FAILING = "failing"


def health_workflow_id(endpoint_id: str) -> str:
    return f"endpoint-health-{endpoint_id}"
