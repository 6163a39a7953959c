"""Temporal refusing a call (here: a namespace that does not exist) is a 502, not "try again"."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.harness import ApiClient, Stack, TemporalServer, api_client, running_stack


@pytest.fixture(scope="module")
def misconfigured_api(temporal: TemporalServer, work_dir: Path) -> Iterator[Stack]:
    """An API pointed at a namespace the server does not have; no worker could run there either."""
    stack = Stack(
        temporal=temporal,
        database_url=f"sqlite:///{work_dir / 'no-namespace.db'}",
        work_dir=work_dir,
        extra_env={"HOOKLINE_TEMPORAL_NAMESPACE": "hookline-no-such-namespace"},
    )
    yield from running_stack(stack, worker=False)


@pytest.fixture
async def refused_api(misconfigured_api: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(misconfigured_api):
        yield client


async def test_a_call_temporal_refuses_answers_502_and_changes_nothing(refused_api: ApiClient) -> None:
    api = refused_api
    app_id = await api.create_app()
    endpoint = await api.create_endpoint(app_id, "http://127.0.0.1:9/hook")

    r = await api.http.post(f"/v1/apps/{app_id}/events", json={"type": "order.created", "data": {}})
    assert r.status_code == 502, r.text
    assert "Retry-After" not in r.headers
    assert "hookline-no-such-namespace" in r.json()["detail"] and "NOT_FOUND" in r.json()["detail"]
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []

    base = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}"
    r = await api.http.post(base + "/pause")
    assert r.status_code == 502, r.text
    assert (await api.http.get(base)).json()["status"] == "active"
