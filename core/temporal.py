"""The one way every process connects to Temporal, so all share one data converter."""

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from hookline.core.config import Settings

log = logging.getLogger(__name__)

APP_ID_ATTR = SearchAttributeKey.for_keyword("HooklineAppId")
EVENT_TYPE_ATTR = SearchAttributeKey.for_keyword("HooklineEventType")
ENDPOINT_IDS_ATTR = SearchAttributeKey.for_keyword_list("HooklineEndpointIds")
SEARCH_ATTRIBUTES = {
    APP_ID_ATTR.name: "Keyword",
    EVENT_TYPE_ATTR.name: "Keyword",
    ENDPOINT_IDS_ATTR.name: "KeywordList",
}


def connection_security(settings: Settings) -> dict[str, Any]:
    """`tls` and `api_key` for Client.connect: plain, TLS, mTLS, or an API key (Temporal Cloud; implies TLS).

    Any TLS file, a server name or an API key turns TLS on; without a CA file the system's roots verify the server.
    """
    files = (settings.temporal_tls_ca_file, settings.temporal_tls_cert_file, settings.temporal_tls_key_file)
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    uses_tls = (
        settings.temporal_tls or api_key is not None or settings.temporal_tls_server_name is not None or any(files)
    )
    if not uses_tls:
        return {"tls": False, "api_key": None}
    ca, cert, key = (path.read_bytes() if path is not None else None for path in files)
    tls = TLSConfig(
        server_root_ca_cert=ca, client_cert=cert, client_private_key=key, domain=settings.temporal_tls_server_name
    )
    return {"tls": tls, "api_key": api_key}


async def connect_temporal(
    settings: Settings,
    *,
    lazy: bool = False,
    wait_s: float = 0,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """Connect with the pydantic converter; with `wait_s`, keep retrying while the server starts.

    `interceptors` (tracing) apply to the workers built on the client too; `runtime` carries the
    worker's SDK metrics exporter.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    security = connection_security(settings)
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=pydantic_data_converter,
                lazy=lazy,
                interceptors=interceptors,
                runtime=runtime,
                **security,
            )
        except RuntimeError as exc:  # the core SDK reports connection failures as RuntimeError
            if loop.time() >= deadline:
                raise
            log.info("Temporal at %s not reachable yet (%s); retrying", settings.temporal_address, exc)
            await asyncio.sleep(0.5)
