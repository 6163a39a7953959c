"""Production refuses endpoints on loopback and private networks (HOOKLINE_ALLOW_PRIVATE_TARGETS=false)."""

from collections.abc import AsyncIterator
from typing import Any, cast

import httpcore
import pytest

from hookline.activities.http import ClientPool, DestinationBlocked, PublicOnlyBackend, destination_refusal
from tests.harness import ApiClient, Stack, StackFactory, api_client


@pytest.fixture(scope="module")
def strict_stack(make_stack: StackFactory) -> Stack:
    return make_stack("strict", HOOKLINE_ALLOW_PRIVATE_TARGETS="false")


@pytest.fixture
async def strict_api(strict_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(strict_stack):
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "https://10.0.0.7/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://0.0.0.0/",
    ],
)
async def test_private_endpoint_urls_are_refused(strict_api: ApiClient, url: str) -> None:
    app_id = await strict_api.create_app()
    r = await strict_api.http.post(f"/v1/apps/{app_id}/endpoints", json={"url": url})
    assert r.status_code == 422
    assert "private" in r.json()["detail"]
    assert (await strict_api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"] == []


async def test_patching_to_a_private_url_is_refused(strict_api: ApiClient) -> None:
    app_id = await strict_api.create_app()
    created = await strict_api.create_endpoint(app_id, "https://hooks.example.com/in")
    base = f"/v1/apps/{app_id}/endpoints/{created['id']}"
    r = await strict_api.http.patch(base, json={"url": "http://127.0.0.1/x"})
    assert r.status_code == 422
    assert (await strict_api.http.get(base)).json()["url"] == "https://hooks.example.com/in"


async def test_delivery_time_check_resolves_names() -> None:
    # Checked again when sending, on the resolved address, so a name pointing inside is refused too.
    assert await destination_refusal("http://localhost:8000/x") == "localhost is a private name (localhost)"
    assert await destination_refusal("http://127.0.0.1/x") == "127.0.0.1 is a private address (loopback)"
    assert await destination_refusal("http://93.184.216.34/x") is None


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Stands in for the sockets: records where a connection would go."""

    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        return cast(httpcore.AsyncNetworkStream, object())


async def test_connections_go_to_the_address_checked_so_dns_rebinding_cannot_slip_in() -> None:
    answers = [["93.184.216.34"], ["10.0.0.5"], ["93.184.216.34", "127.0.0.1"], []]
    lookups: list[str] = []

    async def rebinding_dns(host: str, port: int) -> list[str]:
        lookups.append(host)
        return answers[len(lookups) - 1]

    inner = RecordingBackend()
    backend = PublicOnlyBackend(inner, resolve=rebinding_dns)
    await backend.connect_tcp("hooks.example.com", 443)
    assert inner.connected == [("93.184.216.34", 443)]  # the checked address, not the name: no second lookup
    for _ in range(2):  # the same name now answers a private address, alone or beside a public one
        with pytest.raises(httpcore.ConnectError, match="private address"):
            await backend.connect_tcp("hooks.example.com", 443)
    with pytest.raises(httpcore.ConnectError, match="no address"):
        await backend.connect_tcp("hooks.example.com", 443)
    assert inner.connected == [("93.184.216.34", 443)] and len(lookups) == 4


async def test_production_clients_refuse_private_addresses_when_connecting() -> None:
    pool = ClientPool(1, public_only=True)
    try:
        for url in ("http://localhost:9/x", "http://127.0.0.1:9/x", "http://[::1]:9/x", "http://[::ffff:7f00:1]:9/x"):
            with pytest.raises(DestinationBlocked, match="private (address|name)"):
                await pool.for_url(url).post(url)
    finally:
        await pool.aclose()
