"""HOOKLINE_MAX_ENDPOINTS_PER_APP: an application cannot grow past it; the others are not affected."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from hookline.core.config import Settings
from tests.harness import ApiClient, Stack, StackFactory, api_client

LIMIT = 3


@pytest.fixture(scope="module")
def quota_stack(make_stack: StackFactory) -> Stack:
    """An API of its own (no worker: nothing is delivered here) with a small quota."""
    return make_stack("quotas", worker=False, HOOKLINE_MAX_ENDPOINTS_PER_APP=str(LIMIT))


@pytest.fixture
async def quota_api(quota_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(quota_stack):
        yield client


async def test_endpoint_over_the_quota_is_409_and_changes_nothing(quota_api: ApiClient) -> None:
    app_id = await quota_api.create_app("full")
    made = [await quota_api.create_endpoint(app_id, f"http://127.0.0.1:9/{n}") for n in range(LIMIT)]
    r = await quota_api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": "http://127.0.0.1:9/over"})
    assert r.status_code == 409, r.text
    assert "HOOKLINE_MAX_ENDPOINTS_PER_APP" in r.json()["detail"] and str(LIMIT) in r.json()["detail"]
    listed = (await quota_api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"]
    assert sorted(e["id"] for e in listed) == sorted(e["id"] for e in made)
    # Refused, so not in the audit trail either.
    actions = [e["action"] for e in (await quota_api.http.get("/v1/audit-log", params={"app_id": app_id})).json()["data"]]
    assert actions.count("POST /v1/apps/{app_id}/endpoints") == LIMIT

    # Another application has its own quota.
    other = await quota_api.create_app("other")
    await quota_api.create_endpoint(other, "http://127.0.0.1:9/other")

    # A deleted endpoint frees its place.
    assert (await quota_api.http.delete(f"/v1/apps/{app_id}/endpoints/{made[0]['id']}")).status_code == 204
    await quota_api.create_endpoint(app_id, "http://127.0.0.1:9/again")


@pytest.mark.parametrize("value", [0, -1, 1_000_001])
def test_quota_setting_out_of_bounds_is_refused(value: int) -> None:
    with pytest.raises(ValidationError):
        Settings(max_endpoints_per_app=value)


def test_default_quota_leaves_room_for_the_scale_test() -> None:
    from tests.test_fanout_scale import ENDPOINTS

    assert Settings().max_endpoints_per_app > ENDPOINTS
