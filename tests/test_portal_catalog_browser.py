"""The portal's versioned catalog, version pins, health and rate limit, in a real browser (Playwright
driving Debian's chromium) on the real stack.

Everything is done through the page; the admin API and the receiver check the effects. With
HOOKLINE_UPDATE_SCREENSHOTS=1 the screenshots are written to docs/img/ (docs/portal.md shows them).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.harness import ApiClient, Receiver, wait_for, wait_until
from tests import test_portal_browser as portal_ui
from tests.test_portal_browser import button, endpoint_card, nav, no_horizontal_scroll, open_portal

# That module's browser fixtures and its skip without chromium, shared rather than copied.
browser, page, shots = portal_ui.browser, portal_ui.page, portal_ui.shots
pytestmark = portal_ui.pytestmark

V1 = {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}
V2 = {"type": "object", "properties": {"amount_cents": {"type": "integer"}, "currency": {"type": "string"}},
      "required": ["amount_cents", "currency"]}
V2_EXAMPLE = {"amount_cents": 4200, "currency": "EUR"}
MANY_FAILURES = 10  # HOOKLINE_BREAKER_FAILURES' default: the shared stack runs with it


async def versioned_type(api: ApiClient, prefix: str, sunset_at: datetime) -> str:
    """A type with v1 (deprecated, sunset at `sunset_at`) and v2 (the latest, with an example)."""
    name = f"{prefix}.{uuid.uuid4().hex[:6]}"
    r = await api.http.post("/v1/event-types", json={"name": name, "description": "An invoice was paid.", "schema": V1})
    assert r.status_code == 201, r.text
    r = await api.http.post(f"/v1/event-types/{name}/versions",
                            json={"description": "Amounts in cents, with a currency.", "schema": V2, "example": V2_EXAMPLE})
    assert r.status_code == 201, r.text
    r = await api.http.patch(f"/v1/event-types/{name}/versions/v1", json={"sunset_at": sunset_at.isoformat()})
    assert r.status_code == 200, r.text
    return name


async def endpoint_read(api: ApiClient, app_id: str, endpoint_id: str) -> dict:
    r = await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_catalog_versions_pinned_subscription_and_version_notices(
    page: Page, api: ApiClient, receiver: Receiver, path: str, shots: Path
) -> None:
    app_id = await api.create_app("Billing")
    now = datetime.now(UTC)
    invoice = await versioned_type(api, "invoice.paid", now + timedelta(days=30))
    legacy = await versioned_type(api, "legacy.paid", now - timedelta(days=1))
    await open_portal(page, api, app_id, "Billing")

    # The catalog: every version with its schema and example, which is latest, deprecation and sunset.
    await nav(page, "Event types").click()
    item = page.get_by_role("listitem", name=invoice, exact=True)
    await expect(item).to_contain_text("the latest is v2")
    v2 = item.get_by_role("region", name=f"{invoice} v2", exact=True)
    v1 = item.get_by_role("region", name=f"{invoice} v1", exact=True)
    await expect(v2).to_contain_text("latest")
    await expect(v2).to_contain_text("Amounts in cents")
    await v2.get_by_text("Example payload", exact=True).click()
    await expect(v2.locator("pre").nth(1)).to_contain_text('"version": "v2"')
    await expect(v2.locator("pre").nth(1)).to_contain_text('"currency": "EUR"')  # the catalog's own example
    await v1.get_by_text("Schema", exact=True).click()
    await expect(v1.locator("pre").first).to_contain_text('"amount"')
    await expect(v1).to_contain_text("Deprecated: stops being published on")
    await expect(v1).to_contain_text(str((now + timedelta(days=30)).year))
    await expect(v1).to_contain_text("Subscribe to v2 instead.")
    await expect(v2).not_to_contain_text("Deprecated")
    past = page.get_by_role("region", name=f"{legacy} v1", exact=True)
    await expect(past).to_contain_text("Past its sunset on")
    await expect(past).to_contain_text("no longer published")
    await page.screenshot(path=shots / "portal-catalog-versions.png", full_page=True)

    # Subscribe at a version chosen from the catalog.
    await nav(page, "Endpoints").click()
    await button(page, "Add endpoint").click()
    url = receiver.url(path)
    await page.get_by_label("URL", exact=True).fill(url)
    await page.get_by_label("Only the types chosen below").check()
    await page.get_by_label(invoice, exact=True).check()
    await page.get_by_label(f"Version of {invoice}").select_option("v1")
    await page.get_by_label(legacy, exact=True).check()
    await page.get_by_label(f"Version of {legacy}").select_option("v1")
    await button(page, "Save").click()
    card = endpoint_card(page, url)
    notices = card.get_by_role("list", name="Version notices")
    await expect(notices).to_contain_text(f"Version v1 of {invoice} (subscribed as {invoice}@v1) is deprecated and stops being published on")
    await expect(notices).to_contain_text(f"Version v1 of {legacy} (subscribed as {legacy}@v1) reached its sunset on")
    [endpoint] = (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"]
    assert sorted(endpoint["event_types"]) == sorted([f"{invoice}@v1", f"{legacy}@v1"])
    await page.screenshot(path=shots / "portal-version-notices.png")

    # The pin works: a dual publish reaches this endpoint at v1.
    event = await api.http.post(f"/v1/apps/{app_id}/events",
                                json={"type": invoice, "data": V2_EXAMPLE, "versions": {"v1": {"amount": 42}}})
    assert event.status_code == 202, event.text
    await wait_for(lambda: len(receiver.at(path)) == 1, timeout=60)
    body = receiver.at(path)[0].json()
    assert (body["id"], body["version"], body["data"]) == (event.json()["id"], "v1", {"amount": 42})

    # Edit: the form shows the pins; moving to "always the latest" clears that notice.
    await button(card, "Edit").click()
    await expect(card.get_by_label(f"Version of {invoice}")).to_have_value("v1")
    await expect(card.get_by_label(f"Version of {legacy}")).to_have_value("v1")
    await card.get_by_label(f"Version of {invoice}").select_option("latest")
    await button(card, "Save").click()
    await expect(notices).not_to_contain_text(invoice)
    await expect(notices).to_contain_text(legacy)
    moved = (await endpoint_read(api, app_id, endpoint["id"]))["event_types"]
    assert sorted(moved) == sorted([f"{invoice}@latest", f"{legacy}@v1"])


async def test_health_disabled_reason_and_rate_limit_set_in_words(
    browser: Browser, page: Page, api: ApiClient, receiver: Receiver, path: str, shots: Path
) -> None:
    app_id = await api.create_app("Health")
    # A catalog name as long as the API allows, with no place to break: the form must still fit a phone.
    wide = await api.http.post("/v1/event-types", json={"name": f"wide.{uuid.uuid4().hex}{'w' * 200}"})
    assert wide.status_code == 201, wide.text
    once = {"max_attempts": 1, "initial_interval_s": 1, "backoff_coefficient": 1, "max_interval_s": 1}
    receiver.set(path + "/down", 500)
    down = await api.create_endpoint(app_id, receiver.url(path + "/down"), retry=once, event_types=["down.*"])
    receiver.set(path + "/gone", 410)
    gone = await api.create_endpoint(app_id, receiver.url(path + "/gone"), event_types=["gone.*"])
    fine = await api.create_endpoint(app_id, receiver.url(path + "/fine"), event_types=["fine.*"])
    for n in range(MANY_FAILURES):
        await api.publish(app_id, "down.one", {"n": n})
    await api.publish(app_id, "gone.one", {})
    await wait_until(lambda: endpoint_read(api, app_id, down["id"]), lambda e: e["health"] == "failing", 120)
    await wait_until(lambda: endpoint_read(api, app_id, gone["id"]), lambda e: e["status"] == "disabled", 60)

    await open_portal(page, api, app_id, "Health")
    await expect(endpoint_card(page, down["url"])).to_contain_text("Failing since")
    await expect(endpoint_card(page, down["url"])).to_contain_text("one probe attempt at a time")
    await expect(endpoint_card(page, gone["url"])).to_contain_text("Disabled: receiver answered 410 Gone.")
    card = endpoint_card(page, fine["url"])
    await expect(card).to_contain_text("healthy")
    await expect(card).to_contain_text("No limit")
    await expect(card).not_to_contain_text("null")  # no description, no notices: nothing printed for them
    await page.screenshot(path=shots / "portal-health.png", full_page=True)

    # Rate limits that are not one: said in words, nothing changed.
    await button(card, "Edit").click()
    field = card.get_by_label("Rate limit (deliveries per second)")
    for bad in ("0", "10001", "2.5", "-3", "five", "1e3", "999999"):
        await field.fill(bad)
        await button(card, "Save").click()
        await expect(page.get_by_role("alert")).to_contain_text("Rate limit: enter a whole number of deliveries per second from 1 to 10000")
        await expect(page.get_by_role("alert")).not_to_contain_text("{")
        assert (await endpoint_read(api, app_id, fine["id"]))["rate_limit"] is None
    await field.fill("25")
    await button(card, "Save").click()
    await expect(card).to_contain_text("At most 25 deliveries per second")
    assert (await endpoint_read(api, app_id, fine["id"]))["rate_limit"] == 25
    await expect(page.get_by_role("alert")).to_be_empty()

    # The limit shows in the form again; emptied, it is removed.
    await button(card, "Edit").click()
    await expect(field).to_have_value("25")
    await field.fill("")
    await button(card, "Save").click()
    await expect(card).to_contain_text("No limit")
    assert (await endpoint_read(api, app_id, fine["id"]))["rate_limit"] is None

    # At phone width the health words wrap, nothing scrolls sideways.
    await page.set_viewport_size({"width": 375, "height": 740})
    await expect(endpoint_card(page, gone["url"])).to_contain_text("Disabled")
    assert await no_horizontal_scroll(page)
    await button(card, "Edit").click()
    await expect(field).to_be_visible()
    assert await no_horizontal_scroll(page)
