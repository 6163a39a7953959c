"""Traces: OpenTelemetry spans over OTLP, on only when the standard `OTEL_*` variables ask for it.

With neither `OTEL_EXPORTER_OTLP_ENDPOINT` (nor its `_TRACES_` form) nor `OTEL_TRACES_EXPORTER`
set, nothing here imports OpenTelemetry's SDK, no interceptor joins the Temporal client and
no instrumentation wraps the API: tracing off costs one boolean test per delivery attempt.

What spans carry: ids (`hookline.event_id`, `hookline.endpoint_id`, `hookline.delivery_id`),
the attempt number, the outcome, a status code and the endpoint's host. Never a payload, a
header value, a secret or an endpoint URL (paths and queries often hold credentials).
"""

import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

# Set once per process by setup_tracing.
ENABLED = False

HTTP_PROTOBUF = "http/protobuf"


def tracing_requested(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces: an OTLP endpoint, or an exporter other than `none`."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporter(env: Mapping[str, str]) -> Any:
    """The span exporter the variables name: OTLP over HTTP (the default), OTLP over gRPC, or the console."""
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported (otlp, console or none)")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or HTTP_PROTOBUF
    ).strip()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError:
            raise ValueError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs `pip install opentelemetry-exporter-otlp-proto-grpc`"
            ) from None
        return GrpcExporter()
    if protocol != HTTP_PROTOBUF:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (http/protobuf or grpc)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: from the OTEL_EXPORTER_OTLP_* variables


def setup_tracing(service_name: str, env: Mapping[str, str] = os.environ) -> bool:
    """Install a tracer provider exporting over OTLP if the variables ask for traces; True if they did.

    `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` win over `service_name`. Spans are sent in
    batches (`OTEL_BSP_*`) and flushed when the process exits.
    """
    global ENABLED
    if ENABLED or not tracing_requested(env):
        return ENABLED
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    trace.set_tracer_provider(provider)
    ENABLED = True
    log.info("tracing on: spans of %s go out over OTLP", service_name)
    return True


def temporal_interceptors() -> list[Any]:
    """The Temporal client's interceptors: the tracing one when tracing is on (workers built on the
    client use it too)."""
    if not ENABLED:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_api(app: Any) -> None:
    """Server spans for the API's requests, continuing a caller's `traceparent`; health and metrics left out."""
    if not ENABLED:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,metrics")


def annotate(**attributes: str | int | None) -> None:
    """Set `hookline.<name>` attributes on the current span (the API request's, or the activity's)."""
    if not ENABLED:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.set_attributes({f"hookline.{name}": value for name, value in attributes.items() if value is not None})


def current_span_ids() -> tuple[str, str] | None:
    """The current trace's and span's ids in hex, for log records; None with tracing off or outside a span."""
    if not ENABLED:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return (format(context.trace_id, "032x"), format(context.span_id, "016x")) if context.is_valid else None
