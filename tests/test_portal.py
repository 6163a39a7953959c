"""Portal access and test events on the real API (the portal in a browser: test_portal_browser.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from standardwebhooks import Webhook

from tests.harness import ApiClient, Receiver, wait_for


# Deeper than the API accepts (core.inputs.MAX_JSON_DEPTH).
DEEP: dict = {"deep": 1}
for _ in range(120):
    DEEP = {"deep": DEEP}


def as_token(api: ApiClient, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(api.http.base_url), headers={"authorization": f"Bearer {token}"}, timeout=30)


async def portal_access(api: ApiClient, app_id: str, **body: object) -> dict:
    r = await api.http.post(f"/v1/apps/{app_id}/portal-access", json=body)
    assert r.status_code == 201, r.text
    return r.json()


# --- portal access --------------------------------------------------------------------------------

async def test_portal_access_is_an_app_write_token_for_one_application(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id, other_id = await api.create_app("portal"), await api.create_app("someone else")
    other_endpoint = await api.create_endpoint(other_id, receiver.url(path + "/other"))
    before = datetime.now(timezone.utc)
    access = await portal_access(api, app_id, expires_in_s=600)
    assert set(access) == {"url", "token", "expires_at"}
    expires_at = datetime.fromisoformat(access["expires_at"])
    assert timedelta(seconds=590) < expires_at - before < timedelta(seconds=610)

    url = urlsplit(access["url"])
    assert url.path == "/portal" and url.query == "" and str(api.http.base_url).startswith(f"{url.scheme}://{url.netloc}")
    fragment = parse_qs(url.fragment)  # the token travels where browsers never send it
    assert fragment["token"] == [access["token"]] and fragment["app"] == [app_id]

    async with as_token(api, access["token"]) as portal:
        # app:write on its application: endpoints, secrets, test events...
        r = await portal.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path)})
        assert r.status_code == 201, r.text
        endpoint_id = r.json()["id"]
        assert (await portal.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}/secret")).status_code == 200
        assert (await portal.get("/v1/event-types")).status_code == 200
        # ...and nothing of any other application, nor the operator's routes.
        assert [a["id"] for a in (await portal.get("/v1/apps")).json()["data"]] == [app_id]
        assert (await portal.get(f"/v1/apps/{other_id}/endpoints")).status_code == 404
        assert (await portal.get(f"/v1/apps/{other_id}/endpoints/{other_endpoint['id']}/secret")).status_code == 404
        assert (await portal.post(f"/v1/apps/{other_id}/portal-access", json={})).status_code == 404
        assert (await portal.get("/v1/api-keys")).status_code == 403
        assert (await portal.post("/v1/apps", json={"name": "mine"})).status_code == 403


async def test_a_portal_token_cannot_outlive_itself(api: ApiClient) -> None:
    app_id = await api.create_app("portal")
    first = await portal_access(api, app_id, expires_in_s=120)
    async with as_token(api, first["token"]) as portal:
        r = await portal.post(f"/v1/apps/{app_id}/portal-access", json={"expires_in_s": 86400})
    assert r.status_code == 201, r.text
    assert datetime.fromisoformat(r.json()["expires_at"]) <= datetime.fromisoformat(first["expires_at"])


async def test_default_lifetime_is_the_setting(api: ApiClient) -> None:
    app_id = await api.create_app("portal")
    before = datetime.now(timezone.utc)
    r = await api.http.post(f"/v1/apps/{app_id}/portal-access")  # no body at all
    assert r.status_code == 201, r.text
    lives = datetime.fromisoformat(r.json()["expires_at"]) - before
    assert timedelta(seconds=3590) < lives < timedelta(seconds=3610)  # HOOKLINE_PORTAL_ACCESS_TTL_S


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_s": 0}, {"expires_in_s": -5}, {"expires_in_s": 29}, {"expires_in_s": 86401},
        {"expires_in_s": 10**30}, {"expires_in_s": "3600"}, {"expires_in_s": 12.5}, {"expires_in_s": True},
        {"expires_in_s": None, "scopes": ["admin"]}, {"app_id": "app_other"}, [60], "x" * 10_000,
    ],
)
async def test_hostile_portal_access_requests_are_refused(api: ApiClient, body: object) -> None:
    app_id = await api.create_app("portal")
    keys_before = (await api.http.get("/v1/api-keys", params={"limit": 250})).json()["data"]
    r = await api.http.post(f"/v1/apps/{app_id}/portal-access", json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    assert (await api.http.get("/v1/api-keys", params={"limit": 250})).json()["data"] == keys_before


async def test_portal_access_for_an_unknown_application_is_404(api: ApiClient) -> None:
    r = await api.http.post("/v1/apps/app_0000000000000000000000000000/portal-access", json={})
    assert r.status_code == 404


async def test_after_expiry_the_token_gets_401(api: ApiClient) -> None:
    app_id = await api.create_app("portal")
    access = await portal_access(api, app_id, expires_in_s=30)
    async with as_token(api, access["token"]) as portal:
        assert (await portal.get(f"/v1/apps/{app_id}")).status_code == 200
        deadline = datetime.fromisoformat(access["expires_at"]).timestamp()
        await asyncio.sleep(max(0.0, deadline - time.time()) + 0.5)
        for request in (portal.get(f"/v1/apps/{app_id}"), portal.get(f"/v1/apps/{app_id}/endpoints"),
                        portal.post(f"/v1/apps/{app_id}/portal-access", json={})):
            assert (await request).status_code == 401


async def test_the_portal_page_is_static_and_locked_down(api: ApiClient) -> None:
    async with httpx.AsyncClient(base_url=str(api.http.base_url)) as anonymous:
        page = await anonymous.get("/portal")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "portal/portal.js" in page.text and "<script>" not in page.text
        script = await anonymous.get("/portal/portal.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        # Everything shown goes through textContent: no HTML is ever parsed from data.
        assert ".innerHTML" not in script.text and "insertAdjacentHTML" not in script.text and "eval(" not in script.text
        assert (await anonymous.get("/portal/portal.css")).status_code == 200
        assert (await anonymous.get("/portal/../api/auth.py")).status_code == 404
        assert (await anonymous.get("/portal", params={"token": "x"})).status_code == 422


# --- test events ----------------------------------------------------------------------------------

async def test_a_test_event_goes_to_that_endpoint_only(any_api: ApiClient, receiver: Receiver, path: str) -> None:
    api = any_api  # on SQLite and PostgreSQL: the fan-out reads the event's target in its own query
    app_id = await api.create_app("test events")
    # The target subscribes to other types: a test event reaches it anyway. Its neighbour
    # subscribes to everything and gets nothing.
    target = await api.create_endpoint(app_id, receiver.url(path + "/target"), event_types=["invoice.*"])
    neighbour = await api.create_endpoint(app_id, receiver.url(path + "/neighbour"))
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints/{target['id']}/test")
    assert r.status_code == 202, r.text
    event = r.json()
    assert event["type"] == "hookline.test" and event["data"]["endpoint_id"] == target["id"]

    done = await api.wait_event(app_id, event["id"])
    assert [(d["endpoint_id"], d["status"]) for d in done["deliveries"]] == [(target["id"], "succeeded")]
    await wait_for(lambda: len(receiver.at(path + "/target")) == 1)
    got = receiver.at(path + "/target")[0]
    Webhook(await api.secret(app_id, target["id"])).verify(got.body, got.headers)  # signed like any webhook
    assert got.json()["type"] == "hookline.test" and got.headers["webhook-id"] == event["id"]

    # In the target's delivery log, not in the neighbour's; the event list shows it too.
    log = (await api.http.get(f"/v1/apps/{app_id}/deliveries", params={"endpoint_id": target["id"]})).json()["data"]
    assert [d["event_id"] for d in log] == [event["id"]]
    assert (await api.http.get(f"/v1/apps/{app_id}/deliveries", params={"endpoint_id": neighbour["id"]})).json()["data"] == []
    assert event["id"] in [e["id"] for e in (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"]]
    await asyncio.sleep(1)
    assert receiver.at(path + "/neighbour") == []

    # A normal publish afterwards still fans out to every subscriber.
    normal = await api.publish(app_id, "invoice.paid", {"n": 1})
    await api.wait_event(app_id, normal["id"], lambda e: len(e["deliveries"]) == 2 and all(d["status"] == "succeeded" for d in e["deliveries"]))

    # The application goes with its events, their targets included.
    assert (await api.http.delete(f"/v1/apps/{app_id}")).status_code == 204
    assert (await api.http.get(f"/v1/apps/{app_id}/events/{event['id']}")).status_code == 404


async def test_a_test_event_with_its_own_type_and_data(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("test events")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    r = await api.http.post(
        f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test", json={"type": "user.created", "data": {"user": "u_1"}}
    )
    assert r.status_code == 202, r.text
    await wait_for(lambda: len(receiver.at(path)) == 1)
    body = receiver.at(path)[0].json()
    assert body["type"] == "user.created" and body["data"] == {"user": "u_1"}


async def test_a_paused_endpoint_holds_its_test_event(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("test events")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/pause")).status_code == 200
    event = (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test", json={})).json()
    await api.wait_event(app_id, event["id"], lambda e: [d["status"] for d in e["deliveries"]] == ["paused"])
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/resume")).status_code == 200
    await wait_for(lambda: len(receiver.at(path)) == 1)


async def test_a_test_event_meets_its_type_schema(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("test events")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    name = f"order.placed.{app_id[-6:]}"
    schema = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    assert (await api.http.post("/v1/event-types", json={"name": name, "schema": schema})).status_code == 201
    test = f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test"
    r = await api.http.post(test, json={"type": name, "data": {"order": 5}})
    assert r.status_code == 422 and "order" in r.json()["detail"]
    assert (await api.http.post(test, json={"type": name})).status_code == 422  # the default data lacks `order`
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []
    assert (await api.http.post(test, json={"type": name, "data": {"order": "o_1"}})).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {"type": "not a type!"}, {"type": ""}, {"type": "a" * 300}, {"data": [1, 2]}, {"data": "text"},
        {"data": DEEP},
        {"endpoint_id": "ep_other"}, {"type": "x", "extra": 1},
    ],
)
async def test_hostile_test_events_are_refused(api: ApiClient, receiver: Receiver, path: str, body: dict) -> None:
    app_id = await api.create_app("test events")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test", json=body)
    assert r.status_code == 422, r.text
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []


async def test_test_event_to_a_disabled_unknown_or_foreign_endpoint(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id, other_id = await api.create_app("test events"), await api.create_app("other")
    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    foreign = await api.create_endpoint(other_id, receiver.url(path + "/foreign"))
    r = await api.http.patch(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}", json={"status": "disabled"})
    assert r.status_code == 200, r.text
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/test")).status_code == 409
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/{foreign['id']}/test")).status_code == 404
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/ep_0000000000000000000000000000/test")).status_code == 404
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/nonsense/test")).status_code == 422
    assert (await api.http.get(f"/v1/apps/{app_id}/events")).json()["data"] == []
    await asyncio.sleep(0.5)
    assert receiver.at(path + "/foreign") == []
