"""Request budgets per credential and failed-login throttling, on an API process with small limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from hookline.api.auth import request_budget
from hookline.core.config import Settings
from tests.harness import TOKEN, ApiClient, Stack, StackFactory, api_client

# Bursts of 6, refilled over 3 s: wide enough that a loaded test machine still sends a burst inside it.
PER_S, BURST, FAILURES_PER_MIN = 2, 6, 3


@pytest.fixture(scope="module")
def limited_stack(make_stack: StackFactory) -> Stack:
    return make_stack(
        "limits", worker=False,
        HOOKLINE_API_RATE_LIMIT_PER_S=str(PER_S),
        HOOKLINE_API_RATE_LIMIT_BURST=str(BURST),
        HOOKLINE_AUTH_FAILURES_PER_MIN=str(FAILURES_PER_MIN),
    )


@pytest.fixture
async def limited(limited_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(limited_stack):
        yield client


def client_with(api: ApiClient, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(api.http.base_url), headers={"authorization": f"Bearer {token}"}, timeout=30)


async def spend(client: httpx.AsyncClient, n: int) -> list[httpx.Response]:
    return [await client.get("/v1/apps", params={"limit": 1}) for _ in range(n)]


async def wait_out(r: httpx.Response) -> None:
    await asyncio.sleep(int(r.headers["retry-after"]) + 0.2)


async def test_over_budget_is_429_for_that_credential_only(limited: ApiClient) -> None:
    app_id = await limited.create_app()
    r = await limited.http.post("/v1/api-keys", json={"name": "svc", "scopes": ["app:read"], "app_id": app_id})
    assert r.status_code == 201
    key = r.json()["key"]
    await asyncio.sleep(3.2)  # the admin's budget, spent above, refills

    async with client_with(limited, TOKEN) as admin, client_with(limited, key) as service:
        answers = await spend(admin, BURST + 2)
        assert [a.status_code for a in answers] == [200] * BURST + [429, 429]
        over = answers[-1]
        assert over.json() == {"detail": "request budget exceeded, slow down"}
        assert 1 <= int(over.headers["retry-after"]) <= 3
        # Another credential is not slowed.
        assert [a.status_code for a in await spend(service, BURST - 1)] == [200] * (BURST - 1)
        await wait_out(over)
        assert (await admin.get("/v1/apps", params={"limit": 1})).status_code == 200


async def test_failed_authentications_are_throttled_per_address(limited: ApiClient) -> None:
    await asyncio.sleep(3.2)
    async with client_with(limited, "wrong-token") as stranger, client_with(limited, TOKEN) as admin:
        answers = await spend(stranger, FAILURES_PER_MIN + 2)
        assert [a.status_code for a in answers] == [401] * FAILURES_PER_MIN + [429, 429]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        # The right token from the same address still gets in: only failures are throttled.
        assert (await admin.get("/v1/apps", params={"limit": 1})).status_code == 200
        async with client_with(limited, "hlk_" + "0" * 66) as forger:
            assert (await forger.get("/v1/apps")).status_code == 429
        # Public routes need no credential and are not throttled.
        assert (await stranger.get("/healthz")).status_code == 200


def test_budget_shape() -> None:
    default = request_budget(Settings())
    assert default is not None and (default.amount, default.get_expiry()) == (200, 2)  # 100/s, bursts of 200
    assert request_budget(Settings(api_rate_limit_per_s=0)) is None
    low_burst = request_budget(Settings(api_rate_limit_per_s=50, api_rate_limit_burst=10))
    assert low_burst is not None and (low_burst.amount, low_burst.get_expiry()) == (50, 1)
