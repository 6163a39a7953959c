"""The one way every process connects to Temporal, so all share one data converter."""

import asyncio
import logging

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core.config import Settings

log = logging.getLogger(__name__)

APP_ID_ATTR = SearchAttributeKey.for_keyword("HooklineAppId")
EVENT_TYPE_ATTR = SearchAttributeKey.for_keyword("HooklineEventType")
ENDPOINT_IDS_ATTR = SearchAttributeKey.for_keyword_list("HooklineEndpointIds")
SEARCH_ATTRIBUTES = {
    APP_ID_ATTR.name: "Keyword",
    EVENT_TYPE_ATTR.name: "Keyword",
    ENDPOINT_IDS_ATTR.name: "KeywordList",
}


async def connect_temporal(settings: Settings, *, lazy: bool = False, wait_s: float = 0) -> Client:
    """Connect with the pydantic converter; with `wait_s`, keep retrying while the server starts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=pydantic_data_converter,
                lazy=lazy,
            )
        except RuntimeError as exc:  # the core SDK reports connection failures as RuntimeError
            if loop.time() >= deadline:
                raise
            log.info("Temporal at %s not reachable yet (%s); retrying", settings.temporal_address, exc)
            await asyncio.sleep(0.5)
