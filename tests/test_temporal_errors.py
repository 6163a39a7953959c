"""Temporal refusing a call (here: a namespace that does not exist) is a 502, not "try again"."""

from collections.abc import AsyncIterator

import pytest

from tests.harness import ApiClient, Stack, StackFactory, api_client


@pytest.fixture(scope="module")
def misconfigured_api(make_stack: StackFactory) -> Stack:
    """An API pointed at a namespace the server does not have; no worker could run there either."""
    return make_stack("no-namespace", worker=False, HOOKLINE_TEMPORAL_NAMESPACE="hookline-no-such-namespace")


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
