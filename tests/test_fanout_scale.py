"""One event to more endpoints than Temporal lets one workflow have pending activities (2,000)."""

import asyncio
from collections import Counter

from hookline.core.config import Settings
from hookline.core.temporal import connect_temporal
from tests.harness import ApiClient, Receiver, Stack, wait_until

ENDPOINTS = 2100


async def test_event_to_2100_endpoints_delivers_to_each_once(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app("big-tenant")
    gate = asyncio.Semaphore(16)

    async def create(i: int) -> str:
        async with gate:
            return (await api.create_endpoint(app_id, receiver.url(f"{path}/{i}")))["id"]

    endpoint_ids = await asyncio.gather(*(create(i) for i in range(ENDPOINTS)))
    event = await api.publish(app_id, "order.created", {"n": 1})

    done = await wait_until(
        lambda: api.event(app_id, event["id"]),
        lambda e: len(e["deliveries"]) == ENDPOINTS and all(d["status"] == "succeeded" for d in e["deliveries"]),
        timeout=240,
        every=2,
    )
    assert {d["endpoint_id"] for d in done["deliveries"]} == set(endpoint_ids)
    hits = Counter(r.path for r in receiver.received if r.path.startswith(path + "/"))
    assert len(hits) == ENDPOINTS and set(hits.values()) == {1}

    client = await connect_temporal(Settings(temporal_address=sqlite_stack.temporal.address))
    description = await client.get_workflow_handle(event["workflow_id"]).describe()
    assert description.status is not None and description.status.name == "COMPLETED"
