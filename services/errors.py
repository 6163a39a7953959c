"""The errors services raise for the API to map to HTTP answers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.service import RPCError


class Rejected(Exception):
    """The request was not carried out; nothing was changed."""


class UnknownApplication(Rejected):
    pass


class SchemaViolation(Rejected):
    pass


class Conflict(Rejected):
    pass


class TemporalUnavailable(Rejected):
    pass


@asynccontextmanager
async def reaching_temporal() -> AsyncIterator[None]:
    """Turn "Temporal cannot be reached" into TemporalUnavailable.

    A lazily connected client that cannot connect raises RuntimeError; a server that
    answers with an error raises RPCError.
    """
    try:
        yield
    except RPCError as exc:
        raise TemporalUnavailable(f"Temporal is unavailable: {exc.message}") from exc
    except RuntimeError as exc:
        raise TemporalUnavailable(f"Temporal is unavailable: {exc}") from exc
