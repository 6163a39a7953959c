"""The subscriber portal in a real browser (Playwright driving Debian's chromium) on the real stack.

Everything is done through the page, as a subscriber would, by the accessible names PRODUCT.md
lists; the receiver and the admin API check the effects. With HOOKLINE_UPDATE_SCREENSHOTS=1 the
screenshots of the main views are written to docs/img/ (docs/portal.md shows them).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, Route, async_playwright, expect

from tests.harness import ApiClient, Receiver, wait_for

CHROMIUM = "/usr/bin/chromium"
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
WAIT_MS = 30_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    yield page
    await context.close()


@pytest.fixture(scope="session")
def shots(work_dir: Path) -> Path:
    """Where screenshots go: docs/img/ when asked to update them, else the session's scratch dir."""
    target = DOCS_IMG if os.environ.get("HOOKLINE_UPDATE_SCREENSHOTS") == "1" else work_dir / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


async def open_portal(page: Page, api: ApiClient, app_id: str, name: str, expires_in_s: int = 900) -> dict:
    r = await api.http.post(f"/v1/apps/{app_id}/portal-access", json={"expires_in_s": expires_in_s})
    assert r.status_code == 201, r.text
    access = r.json()
    await page.goto(access["url"])
    await expect(page.get_by_role("heading", name=f"Webhooks · {name}")).to_be_visible()
    assert "token" not in page.url  # the fragment is wiped from the address bar
    return access


def nav(page: Page, section: str) -> Locator:
    return page.get_by_role("navigation").get_by_role("button", name=section, exact=True)


def endpoint_card(page: Page, url: str) -> Locator:
    return page.get_by_role("listitem", name=url, exact=True)


def button(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("button", name=name, exact=True)


async def until_shown(page: Page, locator: Locator, timeout: float = 60) -> None:
    """Refresh the deliveries view until `locator` appears: deliveries change without the page."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await expect(locator).to_be_visible(timeout=2000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await button(page, "Refresh").click()


async def no_horizontal_scroll(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


async def event_type(api: ApiClient, **fields: object) -> str:
    name = f"order.created.{uuid.uuid4().hex[:6]}"
    r = await api.http.post("/v1/event-types", json={"name": name, **fields})
    assert r.status_code == 201, r.text
    return name


async def test_add_endpoint_test_event_pause_resume_secrets_edit_delete(
    page: Page, api: ApiClient, receiver: Receiver, path: str, shots: Path
) -> None:
    app_id = await api.create_app("Acme Shop")
    schema = {"type": "object", "properties": {"order": {"type": "string"}, "total": {"type": "integer", "minimum": 1}},
              "required": ["order"]}
    type_name = await event_type(api, description="An order was placed.", schema=schema)
    await open_portal(page, api, app_id, "Acme Shop")
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()

    # Add an endpoint, subscribed to one type from the catalog.
    await button(page, "Add endpoint").click()
    await page.get_by_label("URL", exact=True).fill("not a url")
    await button(page, "Save").click()
    await expect(page.get_by_role("alert")).to_contain_text("url")  # in words, not a JSON dump
    await expect(page.get_by_role("alert")).not_to_contain_text("{")
    url = receiver.url(path)
    await page.get_by_label("URL", exact=True).fill(url)
    await page.get_by_label("Description").fill("Orders service")
    await page.get_by_label("Only the types chosen below").check()
    await page.get_by_label(type_name, exact=True).check()
    await page.screenshot(path=shots / "portal-add-endpoint.png")
    await button(page, "Save").click()
    card = endpoint_card(page, url)
    await expect(card).to_contain_text("Orders service")
    await expect(card).to_contain_text(type_name)
    endpoints = (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"]
    assert [(e["url"], e["event_types"], e["status"]) for e in endpoints] == [(url, [type_name], "active")]
    endpoint_id = endpoints[0]["id"]

    # A test event, received by the real receiver and shown in the delivery log with its attempt.
    await button(card, "Send test event").click()
    await expect(page.get_by_role("status")).to_contain_text("Test event")
    await wait_for(lambda: len(receiver.at(path)) == 1, timeout=60)
    assert receiver.at(path)[0].json()["type"] == "hookline.test"
    await page.screenshot(path=shots / "portal-endpoints.png")
    await nav(page, "Deliveries").click()
    delivery = page.locator("li[data-delivery]", has_text="hookline.test")
    await until_shown(page, delivery.filter(has_text="succeeded"))
    await button(delivery, "Attempts").click()
    await expect(delivery.get_by_role("list", name="Attempts", exact=False)).to_contain_text("HTTP 200")
    await page.screenshot(path=shots / "portal-deliveries.png", full_page=True)

    # Pause: a published event waits; Resume: it goes out.
    await nav(page, "Endpoints").click()
    await button(card, "Pause").click()
    await expect(card).to_contain_text("paused")
    assert (await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")).json()["status"] == "paused"
    event = await api.publish(app_id, type_name, {"order": "o_1", "total": 3})
    await api.wait_event(app_id, event["id"], lambda e: [d["status"] for d in e["deliveries"]] == ["paused"])
    assert len(receiver.at(path)) == 1
    await button(card, "Resume").click()
    await expect(button(card, "Pause")).to_be_visible()
    await wait_for(lambda: len(receiver.at(path)) == 2, timeout=60)
    assert receiver.at(path)[1].json()["id"] == event["id"]

    # Reveal and rotate the secret.
    await button(card, "Reveal secret").click()
    secret = await api.secret(app_id, endpoint_id)
    await expect(card.locator("code.secret")).to_have_text(secret)
    await button(card, "Rotate secret").click()
    await expect(card.locator("code.secret")).not_to_have_text(secret)
    rotated = await api.secret(app_id, endpoint_id)
    assert rotated != secret
    await expect(card.locator("code.secret")).to_have_text(rotated)

    # Edit, then delete.
    await button(card, "Edit").click()
    await card.get_by_label("Description").fill("Orders service v2")
    await button(card, "Save").click()
    await expect(card).to_contain_text("Orders service v2")
    await button(card, "Delete").click()
    await button(card, "Yes, delete").click()
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()
    assert (await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")).status_code == 404


async def test_event_type_catalog_with_schema_and_example(page: Page, api: ApiClient, shots: Path) -> None:
    app_id = await api.create_app("Catalog")
    schema = {"type": "object", "properties": {"order": {"type": "string"}, "placed_at": {"type": "string", "format": "date-time"}}}
    type_name = await event_type(api, description="An order was placed.", schema=schema)
    await open_portal(page, api, app_id, "Catalog")
    await nav(page, "Event types").click()
    item = page.get_by_role("listitem", name=type_name, exact=True)
    await expect(item).to_contain_text("An order was placed.")
    await item.get_by_text("Schema", exact=True).click()
    await expect(item.locator("pre").first).to_contain_text('"placed_at"')
    await item.get_by_text("Example payload").click()
    await expect(item.locator("pre").nth(1)).to_contain_text(f'"type": "{type_name}"')
    await expect(item.locator("pre").nth(1)).to_contain_text('"order": "string"')
    await page.screenshot(path=shots / "portal-event-types.png")


async def test_replay_dead_letters_one_and_all(page: Page, api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("Replays")
    receiver.set(path, 500)
    endpoint = await api.create_endpoint(
        app_id, receiver.url(path), retry={"max_attempts": 1, "initial_interval_s": 1, "backoff_coefficient": 1, "max_interval_s": 1}
    )
    first = await api.publish(app_id, "replay.me", {"n": 1})
    second = await api.publish(app_id, "replay.me", {"n": 2})
    for event in (first, second):
        await api.wait_event(app_id, event["id"], lambda e: [d["status"] for d in e["deliveries"]] == ["dead_lettered"])
    receiver.set(path, 200)  # the subscriber fixed their server

    await open_portal(page, api, app_id, "Replays")
    await nav(page, "Deliveries").click()
    await page.get_by_label("Status").select_option("dead_lettered")
    dead = page.locator("li[data-delivery]")
    await expect(dead).to_have_count(2)
    await expect(dead.first).to_contain_text("HTTP 500")
    one = page.locator("li[data-delivery]", has_text=first["id"])
    await button(one, "Attempts").click()
    await expect(one.locator("ol")).to_contain_text("HTTP 500")
    await button(one, "Replay").click()
    await wait_for(lambda: any(r.json()["id"] == first["id"] for r in receiver.at(path)[2:]), timeout=60)
    assert all(r.json()["id"] != second["id"] for r in receiver.at(path)[2:])
    await until_shown(page, page.locator("li[data-delivery]", has_text=second["id"]))
    await expect(page.locator("li[data-delivery]")).to_have_count(1)  # the replayed one is no dead letter now

    # All the endpoint's dead letters at once, from its card.
    await nav(page, "Endpoints").click()
    await button(endpoint_card(page, endpoint["url"]), "Replay dead letters").click()
    await expect(page.get_by_role("status")).to_contain_text("1 dead letter replayed")
    await wait_for(lambda: any(r.json()["id"] == second["id"] for r in receiver.at(path)[2:]), timeout=60)
    done = await api.wait_event(app_id, second["id"])
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]


async def test_after_expiry_nothing_of_the_application_is_shown(page: Page, api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("Short lived")
    url = receiver.url(path + "/secret-place")
    await api.create_endpoint(app_id, url)
    access = await open_portal(page, api, app_id, "Short lived", expires_in_s=30)
    await expect(endpoint_card(page, url)).to_be_visible()
    await expect(page.get_by_text("Access expires at")).to_be_visible()

    await expect(page.get_by_text("This portal link has expired")).to_be_visible(timeout=60_000)
    await expect(page.get_by_text(url)).to_have_count(0)
    await expect(page.get_by_text("Short lived")).to_have_count(0)
    await expect(page.get_by_role("navigation")).to_be_hidden()
    # Opening the link again shows nothing either: the token itself gets 401.
    await page.goto(access["url"])
    await page.reload()
    await expect(page.get_by_text("This portal link has expired").or_(page.get_by_text("Open this portal with the link"))).to_be_visible()
    await expect(page.get_by_text(url)).to_have_count(0)


async def test_one_portal_shows_nothing_of_another_application(page: Page, api: ApiClient, receiver: Receiver, path: str) -> None:
    mine, theirs = await api.create_app("Mine"), await api.create_app("Theirs")
    my_url, their_url = receiver.url(path + "/mine"), receiver.url(path + "/theirs")
    await api.create_endpoint(mine, my_url)
    await api.create_endpoint(theirs, their_url)
    event = await api.publish(theirs, "their.secret", {"n": 1})
    await api.wait_event(theirs, event["id"])

    access = await open_portal(page, api, mine, "Mine")
    await expect(endpoint_card(page, my_url)).to_be_visible()
    await nav(page, "Deliveries").click()
    await expect(page.get_by_text("No deliveries match")).to_be_visible()
    await expect(page.get_by_text(their_url)).to_have_count(0)

    # The same token with the other application's id in the link: refused, nothing shown.
    await page.goto(access["url"].replace(f"app={mine}", f"app={theirs}"))
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("not found")
    await expect(page.get_by_text(their_url)).to_have_count(0)
    await expect(page.get_by_text("Theirs")).to_have_count(0)
    await expect(page.get_by_text(event["id"])).to_have_count(0)


async def test_phone_width(browser: Browser, api: ApiClient, receiver: Receiver, path: str, shots: Path) -> None:
    app_id = await api.create_app("Phone")
    await api.create_endpoint(app_id, receiver.url(path + "/a-rather-long-path/that/should/wrap/on/a/phone"), description="Orders")
    event = await api.publish(app_id, "phone.test", {"n": 1})
    await api.wait_event(app_id, event["id"])
    context = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        page = await context.new_page()
        await open_portal(page, api, app_id, "Phone")
        await expect(button(page, "Send test event")).to_be_visible()
        assert await no_horizontal_scroll(page)
        await page.screenshot(path=shots / "portal-phone.png", full_page=True)
        await nav(page, "Deliveries").click()
        await expect(page.locator("li[data-delivery]")).to_have_count(1)
        assert await no_horizontal_scroll(page)
    finally:
        await context.close()


async def test_deliveries_filtered_by_endpoint(page: Page, api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("Filters")
    one, two = receiver.url(path + "/one"), receiver.url(path + "/two")
    first = await api.create_endpoint(app_id, one, event_types=["filter.one"])
    await api.create_endpoint(app_id, two, event_types=["filter.two"])
    for type_name in ("filter.one", "filter.two"):
        event = await api.publish(app_id, type_name, {})
        await api.wait_event(app_id, event["id"])

    await open_portal(page, api, app_id, "Filters")
    await nav(page, "Deliveries").click()
    await expect(page.locator("li[data-delivery]")).to_have_count(2)
    await page.get_by_label("Endpoint", exact=True).select_option(first["id"])
    await expect(page.locator("li[data-delivery]")).to_have_count(1)
    await expect(page.locator("li[data-delivery]")).to_contain_text("filter.one")
    # The card's own "Deliveries" button opens the same filter.
    await nav(page, "Endpoints").click()
    await button(endpoint_card(page, two), "Deliveries").click()
    await expect(page.locator("li[data-delivery]")).to_have_count(1)
    await expect(page.locator("li[data-delivery]")).to_contain_text("filter.two")


async def test_a_slow_answer_never_replaces_a_later_view(page: Page, api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("Slow")
    url = receiver.url(path)
    await api.create_endpoint(app_id, url)
    release = asyncio.Event()

    async def held(route: Route) -> None:
        await release.wait()
        await route.continue_()

    def endpoint_list(address: str) -> bool:
        return "/endpoints?limit=250" in address

    await page.route(endpoint_list, held)  # the first view's list answers late
    await open_portal(page, api, app_id, "Slow")
    await nav(page, "Event types").click()
    await expect(page.get_by_role("heading", name="Event types", exact=True)).to_be_visible()
    async with page.expect_response(lambda response: endpoint_list(response.url)):
        release.set()
    await page.evaluate("new Promise(resolve => setTimeout(resolve, 500))")  # let the late answer land
    await expect(page.get_by_role("heading", name="Event types", exact=True)).to_be_visible()
    await expect(endpoint_card(page, url)).to_have_count(0)
