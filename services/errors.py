"""The errors services raise for the API to map to HTTP answers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.service import RPCError, RPCStatusCode


class Rejected(Exception):
    """The request was not carried out; nothing was changed."""


class UnknownApplication(Rejected):
    pass


class SchemaViolation(Rejected):
    pass


class Conflict(Rejected):
    pass


class NotFound(Rejected):
    """What the request names does not exist (or not for this caller)."""


class TemporalError(Rejected):
    """Temporal did not carry out the call."""


class TemporalUnavailable(TemporalError):
    """Temporal cannot be reached or is overloaded: the same request may succeed later."""


class TemporalRefused(TemporalError):
    """Temporal answered that the call is wrong here (a missing namespace, a bad argument):
    retrying will not help, the deployment needs fixing."""


# Status codes of a server that is down, restarting, overloaded or cut off mid-call (Temporal's
# own clients retry INTERNAL too).
TRANSIENT_CODES = {
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.UNKNOWN,
}


def from_rpc_error(exc: RPCError) -> TemporalError:
    if exc.status in TRANSIENT_CODES:
        return TemporalUnavailable(f"Temporal is unavailable: {exc.message}")
    return TemporalRefused(f"Temporal refused the request ({exc.status.name}): {exc.message}")


@asynccontextmanager
async def reaching_temporal() -> AsyncIterator[None]:
    """Turn Temporal's errors into TemporalUnavailable (try again) or TemporalRefused (fix the setup).

    A lazily connected client that cannot connect raises RuntimeError; a server that
    answers with an error raises RPCError.
    """
    try:
        yield
    except RPCError as exc:
        raise from_rpc_error(exc) from exc
    except RuntimeError as exc:
        raise TemporalUnavailable(f"Temporal is unavailable: {exc}") from exc
