"""Inputs and results of the workflows, activities and signals: ids and small values only.

Bodies and secrets never enter Temporal: activities load them from the store by id.
Every model gets new fields with defaults so running workflows keep decoding.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from hookline.core.retry import RetrySchedule


class DeliveryTarget(BaseModel):
    delivery_id: str
    endpoint_id: str
    retry: RetrySchedule
    paused: bool = False
    # host[:port] of the endpoint's URL, for the delivery activity's summary in the Web UI.
    host: str | None = None


class EventWorkflowInput(BaseModel):
    event_id: str
    app_id: str
    event_type: str
    # False when a replay starts a new run of a closed workflow: the run then waits for signals.
    fan_out: bool = True
    window: int = 200
    delivery_timeout_s: float = 15.0
    # Set by a run that handed over to this one (continue-as-new); None on a first run.
    handed_over: "HandOver | None" = None


class HandOver(BaseModel):
    """All the state one run of an event workflow hands to the next when its history grows long."""

    # Whether endpoint resolution is still going, and after which endpoint it goes on.
    resolving: bool = False
    resolve_after: str | None = None
    deliveries: list[DeliveryTarget] = []  # still open
    paused_endpoints: list[str] = []
    pending_replays: list["ReplayRequest"] = []
    seen_requests: list[str] = []  # replay request ids already taken, so a repeated signal stays a no-op
    endpoint_ids: list[str] = []  # noted in the HooklineEndpointIds search attribute so far


class ResolveTargetsInput(BaseModel):
    event_id: str
    after_endpoint_id: str | None = None
    limit: int = 200


class ResolveTargetsResult(BaseModel):
    targets: list[DeliveryTarget]
    next_after: str | None = None


class DeliverInput(BaseModel):
    delivery_id: str
    retry: RetrySchedule
    timeout_s: float = 15.0
    # Hand a far-off next attempt back to the workflow (RetryLater), which waits for it on a
    # timer; the event workflow always sets it.
    timer_waits: bool = False
    # A failing endpoint's probe (workflows/health.py): it goes although the endpoint is failing,
    # and a failure does not spend the delivery's retry budget.
    probe: bool = False
    # The rate-limit slot an earlier try reserved and the workflow waited for.
    rate_slot: "RateSlot | None" = None


class RateSlot(BaseModel):
    """A send slot reserved in an endpoint's rate limit."""

    at: float  # Unix time
    renewed: bool = False  # it replaces a slot that was missed; missed too, it is used late


class DeliverResult(BaseModel):
    status_code: int


class MarkDeliveryInput(BaseModel):
    delivery_id: str
    status: Literal["paused", "dead_lettered"]
    error: str | None = None


class ReplayRequest(BaseModel):
    request_id: str
    delivery_ids: list[str] | None = None
    endpoint_id: str | None = None
    # Set by the workflow on a replay it works through page by page: where the next page starts.
    after_delivery_id: str | None = None


class PrepareReplayInput(BaseModel):
    event_id: str
    delivery_ids: list[str] | None = None
    endpoint_id: str | None = None
    after_delivery_id: str | None = None
    limit: int | None = None


class EndpointSignal(BaseModel):
    endpoint_id: str


class DeliveryPageInput(BaseModel):
    app_id: str | None = None
    endpoint_id: str | None = None
    statuses: list[str]
    since: datetime | None = None
    up_to_delivery_id: str | None = None
    after_delivery_id: str | None = None
    limit: int = 200


class DeliveryRef(BaseModel):
    delivery_id: str
    event_id: str
    app_id: str
    event_type: str


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryRef]
    next_after: str | None = None


class SignalPageInput(BaseModel):
    deliveries: list[DeliveryRef]
    operation: Literal["pause", "resume", "close", "replay"]
    endpoint_id: str | None = None
    request_id: str


class SweepInput(BaseModel):
    operation: Literal["pause", "resume", "close", "replay"]
    request_id: str
    page: DeliveryPageInput
    reached: int = 0


DeliverInput.model_rebuild()
EventWorkflowInput.model_rebuild()
HandOver.model_rebuild()


class EndpointHealthInput(BaseModel):
    """An endpoint's health watch (workflows/health.py); settings travel in it, read where it starts."""

    endpoint_id: str
    probe_s: float = 60.0
    auto_disable_after_s: float = 432_000.0
    delivery_timeout_s: float = 15.0
    # Set once the endpoint is failing, so a continued run goes on probing.
    failing_since: datetime | None = None


class HealthChange(BaseModel):
    endpoint_id: str
    failing_since: datetime | None = None


class ProbeTarget(BaseModel):
    """What the watch does next: probe `delivery_id` (None: nothing to probe now), or stop (`over`:
    the endpoint is healthy again, disabled or deleted)."""

    over: bool = False
    delivery_id: str | None = None
    retry: RetrySchedule | None = None
