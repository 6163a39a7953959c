"""The audit trail and the access log, on the real API process.

Every change made through the API is on record with the credential that made it and the names
(never the values) of the fields it sent; publishing and reads are not, except reading a secret.
The API's log has one line per request with the route template, never a raw path, query,
header value or body.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.harness import ApiClient, Receiver, Stack, wait_for

AUDIT = "/v1/audit-log"


async def entries(api: ApiClient, **params: str) -> list[dict]:
    """Every entry matching, following the cursor, newest first."""
    return await api.every(AUDIT, **params)


def a_secret() -> str:
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()


async def test_every_change_is_recorded_with_credential_action_ids_and_field_names_only(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    header_value = f"Bearer hv-{uuid.uuid4().hex}"
    description, card = f"renamed-{uuid.uuid4().hex}", f"card-{uuid.uuid4().hex}"
    first_secret, second_secret = a_secret(), a_secret()
    app_id = await api.create_app("audited")
    endpoint = await api.create_endpoint(
        app_id, receiver.url(path), secret=first_secret, headers={"X-Api-Token": header_value}
    )
    ep = endpoint["id"]
    ep_route = "/v1/apps/{app_id}/endpoints/{endpoint_id}"
    base = f"/v1/apps/{app_id}/endpoints/{ep}"
    for method, url, body, expected in [
        ("PATCH", base, {"description": description, "headers": {"X-Api-Token": header_value}}, 200),
        ("POST", f"{base}/pause", None, 200),
        ("POST", f"{base}/resume", None, 200),
        ("POST", f"{base}/secret/rotate", {"secret": second_secret}, 200),
        ("GET", f"{base}/secret", None, 200),
    ]:
        r = await api.http.request(method, url, json=body)
        assert r.status_code == expected, r.text
    event = await api.publish(app_id, "invoice.paid", {"card": card})  # not audited
    await api.wait_event(app_id, event["id"])
    r = await api.http.post(f"/v1/apps/{app_id}/events/{event['id']}/replay")
    assert r.status_code == 202, r.text
    # Refused requests change nothing and are not recorded.
    assert (await api.http.patch(base, json={"url": "ftp://nope"})).status_code == 422
    assert (await api.http.post(f"/v1/apps/{app_id}/endpoints/ep_{'0' * 28}/pause")).status_code == 404
    async with httpx.AsyncClient(base_url=sqlite_stack.url, headers={"authorization": "Bearer wrong"}) as intruder:
        assert (await intruder.post(f"{base}/pause")).status_code == 401

    trail = await entries(api, app_id=app_id)
    assert [e["action"] for e in trail] == [
        "POST /v1/apps/{app_id}/events/{event_id}/replay",
        "secret.read",
        "POST /v1/apps/{app_id}/endpoints/{endpoint_id}/secret/rotate",
        "POST /v1/apps/{app_id}/endpoints/{endpoint_id}/resume",
        "POST /v1/apps/{app_id}/endpoints/{endpoint_id}/pause",
        f"PATCH {ep_route}",
        "POST /v1/apps/{app_id}/endpoints",
        "POST /v1/apps",
    ]
    assert {e["credential_id"] for e in trail} == {"admin"}
    assert all(e["app_id"] == app_id for e in trail)
    assert [e["target_id"] for e in trail] == [event["id"], ep, ep, ep, ep, ep, ep, app_id]
    assert [e["status_code"] for e in trail] == [202, 200, 200, 200, 200, 200, 201, 201]
    by_action = {e["action"]: e for e in trail}
    assert by_action["POST /v1/apps/{app_id}/endpoints"]["fields"] == ["headers", "retry", "secret", "url"]
    assert by_action[f"PATCH {ep_route}"]["fields"] == ["description", "headers"]
    assert by_action["POST /v1/apps/{app_id}/endpoints/{endpoint_id}/secret/rotate"]["fields"] == ["secret"]
    assert by_action["secret.read"]["fields"] is None
    stamps = [datetime.fromisoformat(e["created_at"]) for e in trail]
    assert stamps == sorted(stamps, reverse=True) and stamps[-1] >= started

    # Neither the trail nor the API's log holds a secret, a header value or a body value.
    raw = (await api.http.get(AUDIT, params={"app_id": app_id})).text
    log = sqlite_stack.api.log_path.read_text(errors="replace") if sqlite_stack.api else ""
    for value in (first_secret, second_secret, header_value, description, card):
        assert value not in raw
        assert value not in log


async def test_entries_outlive_the_application_and_event_type_changes_are_recorded(api: ApiClient) -> None:
    name = f"t{uuid.uuid4().hex[:8]}.created"
    for method, url, body in [
        ("POST", "/v1/event-types", {"name": name, "schema": {"type": "object"}}),
        ("PATCH", f"/v1/event-types/{name}", {"description": "d"}),
        ("DELETE", f"/v1/event-types/{name}", None),
    ]:
        r = await api.http.request(method, url, json=body)
        assert r.is_success, r.text
    trail = await entries(api, target_id=name)
    assert [(e["action"], e["app_id"], e["fields"]) for e in trail] == [
        ("DELETE /v1/event-types/{name}", None, None),
        ("PATCH /v1/event-types/{name}", None, ["description"]),
        ("POST /v1/event-types", None, ["name", "schema"]),
    ]

    app_id = await api.create_app("short-lived")
    assert (await api.http.delete(f"/v1/apps/{app_id}")).status_code == 204
    assert [e["action"] for e in await entries(api, app_id=app_id)] == ["DELETE /v1/apps/{app_id}", "POST /v1/apps"]


async def test_paging_and_filters(any_api: ApiClient) -> None:
    """On both databases: the time filter and the JSON field list are where they differ."""
    api = any_api
    app_id = await api.create_app("paged")
    for n in range(5):
        assert (await api.http.patch(f"/v1/apps/{app_id}", json={"name": f"n{n}"})).status_code == 200
    everything = await entries(api, app_id=app_id)
    assert len(everything) == 6

    pages = await api.pages(AUDIT, 2, app_id=app_id)
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [entry for page in pages for entry in page] == everything

    patches = await entries(api, app_id=app_id, action="PATCH /v1/apps/{app_id}")
    assert len(patches) == 5 and all(e["fields"] == ["name"] for e in patches)
    assert await entries(api, app_id=app_id, credential_id="admin") == everything
    assert await entries(api, app_id=app_id, credential_id="key_0123") == []
    future = (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()
    assert await entries(api, app_id=app_id, since=future) == []
    middle = everything[2]["created_at"]
    assert await entries(api, app_id=app_id, since=middle) == everything[:3]
    # Without a zone, `since` is UTC.
    naive = datetime.fromisoformat(middle.replace("Z", "+00:00")).replace(tzinfo=None).isoformat()
    assert await entries(api, app_id=app_id, since=naive) == everything[:3]
    # Reads are not recorded: the listing above added nothing.
    assert await entries(api, app_id=app_id) == everything


@pytest.mark.parametrize(
    "params",
    [
        {"app_id": "not-an-app"},
        {"app_id": "app_" + "x" * 100},
        {"credential_id": "root"},
        {"credential_id": "key_'; DROP TABLE audit_entries; --"},
        {"action": "DROP TABLE audit_entries"},
        {"action": "GET /v1/apps"},
        {"action": "PATCH /v1/apps/{app_id}?x=1"},
        {"target_id": "x" * 300},
        {"target_id": "a b"},
        {"since": "yesterday"},
        {"since": "2026-13-45T99:00:00Z"},
        {"cursor": "aud_nope"},
        {"cursor": "app_" + "0" * 28},
        {"limit": "0"},
        {"limit": "100000"},
        {"limit": "ten"},
    ],
)
async def test_bad_filters_are_422(api: ApiClient, params: dict[str, str]) -> None:
    r = await api.http.get(AUDIT, params=params)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]


async def test_the_audit_log_needs_the_token(api: ApiClient, sqlite_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=sqlite_stack.url) as anonymous:
        assert (await anonymous.get(AUDIT)).status_code == 401
        assert (await anonymous.get(AUDIT, headers={"authorization": "Bearer nope"})).status_code == 401


async def test_access_log_has_one_line_per_request_with_route_template_and_no_values(
    api: ApiClient, sqlite_stack: Stack
) -> None:
    assert sqlite_stack.api is not None
    log_path = sqlite_stack.api.log_path
    offset = len(log_path.read_text(errors="replace"))
    marker = uuid.uuid4().hex
    app_id = await api.create_app(f"name-{marker}")
    r = await api.http.get(
        f"/v1/apps/{app_id}/endpoints", params={"limit": "3"}, headers={"x-forwarded-for": f"header-{marker}"}
    )
    assert r.status_code == 200
    r = await api.http.get(f"/v1/apps/{app_id}/endpoints", params={"limit": "3", "note": f"query-{marker}"})
    assert r.status_code == 422  # an unknown query parameter is refused; its value must not be logged either
    await api.http.get(f"/v1/apps/app_{marker}")  # 404
    async with httpx.AsyncClient(base_url=sqlite_stack.url) as anonymous:
        await anonymous.get(f"/v1/apps/{app_id}", headers={"authorization": f"Bearer token-{marker}"})  # 401

    def log() -> str:
        return log_path.read_text(errors="replace")[offset:]

    # The line is written once the answer is sent: give it a moment.
    await wait_for(lambda: "GET - 401" in log())
    text = log()
    assert "hookline.access: POST /v1/apps 201 " in text
    assert "hookline.access: GET /v1/apps/{app_id}/endpoints 422 " in text
    assert "hookline.access: GET /v1/apps/{app_id} 404 " in text
    line = next(ln for ln in reversed(text.splitlines()) if "GET /v1/apps/{app_id}/endpoints 200" in ln)
    assert line.rstrip().endswith("credential=admin")
    assert "ms credential=" in line
    # Refused before routing: no template to show, and no raw path instead.
    assert "hookline.access: GET - 401 " in text
    assert marker not in text
    assert app_id not in text
