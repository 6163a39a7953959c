"""The retry schedule of a delivery: one policy shape shared by the API, the workflow and the activity."""

from pydantic import BaseModel, Field

from hookline.core.config import Settings


class RetrySchedule(BaseModel):
    max_attempts: int = Field(ge=1, le=100)
    initial_interval_s: float = Field(ge=1, le=86400)
    backoff_coefficient: float = Field(ge=1, le=10)
    max_interval_s: float = Field(gt=0, le=7 * 86400)

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        delay = self.initial_interval_s * self.backoff_coefficient ** (attempt - 1)
        return min(delay, self.max_interval_s)

    def total_span_s(self) -> float:
        return sum(self.delay_after(n) for n in range(1, self.max_attempts))


class RetryOverride(BaseModel):
    """Per-endpoint overrides; unset fields fall back to the settings' defaults."""

    max_attempts: int | None = Field(default=None, ge=1, le=100)
    initial_interval_s: float | None = Field(default=None, ge=1, le=86400)
    backoff_coefficient: float | None = Field(default=None, ge=1, le=10)
    max_interval_s: float | None = Field(default=None, gt=0, le=7 * 86400)


def default_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        max_attempts=settings.retry_max_attempts,
        initial_interval_s=settings.retry_initial_interval_s,
        backoff_coefficient=settings.retry_backoff_coefficient,
        max_interval_s=settings.retry_max_interval_s,
    )


def effective_schedule(override: dict | None, settings: Settings) -> RetrySchedule:
    base = default_schedule(settings).model_dump()
    base.update({k: v for k, v in (override or {}).items() if v is not None})
    # An override saved before the 1 s floor may hold less: it gets the floor rather than failing to load.
    base["initial_interval_s"] = max(base["initial_interval_s"], 1.0)
    return RetrySchedule.model_validate(base)
