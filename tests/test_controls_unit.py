"""The endpoint status rules and the event replay selection in services/controls.py, as a producer
calling the service (not the API) meets them: a real SQLite store, no stack. Each case stops before
Temporal would be reached, so the client is never used; the integration modules (test_operations,
test_endpoint_health) cover the signals."""

from __future__ import annotations

from typing import Any, cast

import pytest
from temporalio.client import Client

from hookline.services import controls
from hookline.services.errors import Conflict, NotFound
from hookline.store.tables import Endpoint, Event, utcnow
from tests import test_delivery_activity as activity_tests
from tests.test_delivery_activity import Seeded, Store

store = activity_tests.store  # the same fixture: a migrated SQLite store with sealed secrets

UNREACHED = cast(Client, object())  # any call to Temporal would fail loudly


async def update(store: Store, seeded: Seeded, changes: dict[str, Any], new_status: str | None = None) -> Endpoint:
    async with store.sessions() as session:
        endpoint = await session.get(Endpoint, seeded.endpoint_id)
        assert endpoint is not None
        return await controls.update_endpoint(
            session=session, client=UNREACHED, settings=store.settings, endpoint=endpoint, changes=changes,
            new_status=new_status,
        )


async def test_pausing_a_disabled_endpoint_is_a_conflict_and_changes_nothing(store: Store) -> None:
    seeded = await store.seed(status="disabled", description="before")
    before = await store.endpoint(seeded.endpoint_id)

    with pytest.raises(Conflict, match="disabled"):
        await update(store, seeded, {"description": "after"}, new_status="paused")

    after = await store.endpoint(seeded.endpoint_id)
    assert (after.status, after.description, after.updated_at) == ("disabled", "before", before.updated_at)


async def test_re_enabling_a_disabled_endpoint_resets_its_health(store: Store) -> None:
    seeded = await store.seed(
        status="disabled", disabled_reason="receiver answered 410 Gone", health="failing", failing_since=utcnow(),
        consecutive_failures=9,
    )

    await update(store, seeded, {}, new_status="active")

    row = await store.endpoint(seeded.endpoint_id)
    assert (row.status, row.disabled_reason) == ("active", None)
    assert (row.health, row.failing_since, row.consecutive_failures) == ("healthy", None, 0)


async def test_an_active_failing_endpoint_stays_failing_when_set_active(store: Store) -> None:
    # Only the watch's probe releases what a failing endpoint holds; PATCH status=active is no shortcut.
    seeded = await store.seed(health="failing", failing_since=utcnow(), consecutive_failures=9)

    await update(store, seeded, {}, new_status="active")

    row = await store.endpoint(seeded.endpoint_id)
    assert (row.status, row.health, row.consecutive_failures) == ("active", "failing", 9)


async def test_a_new_rate_limit_forgets_the_old_ones_backlog(store: Store) -> None:
    seeded = await store.seed(rate_limit=1, rate_next_at=utcnow().timestamp() + 3600)

    await update(store, seeded, {"rate_limit": 50})

    row = await store.endpoint(seeded.endpoint_id)
    assert (row.rate_limit, row.rate_next_at) == (50, None)


@pytest.mark.parametrize("endpoint_id", ["ep_unknown", "ep_" + "x" * 200])
async def test_replaying_an_event_to_an_endpoint_it_has_no_delivery_to_is_not_found(
    store: Store, endpoint_id: str
) -> None:
    seeded = await store.seed()
    async with store.sessions() as session:
        event = await session.get(Event, seeded.event_id)
        assert event is not None
        with pytest.raises(NotFound, match="no delivery to an existing endpoint"):
            await controls.replay_event_deliveries(
                session=session, client=UNREACHED, settings=store.settings, event=event, endpoint_id=endpoint_id
            )
    delivery = await store.delivery(seeded.delivery_id)
    assert delivery.status == "pending"  # nothing replayed


async def test_replaying_dead_letters_of_an_unknown_endpoint_is_not_found(store: Store) -> None:
    seeded = await store.seed()
    other_app = await store.seed()  # an endpoint of another application is unknown here too
    app_id = (await store.endpoint(seeded.endpoint_id)).app_id
    for endpoint_id in ("ep_unknown", other_app.endpoint_id):
        async with store.sessions() as session:
            with pytest.raises(NotFound, match=f"endpoint {endpoint_id} not found"):
                await controls.replay_dead_letters(
                    session=session, client=UNREACHED, settings=store.settings, app_id=app_id,
                    endpoint_id=endpoint_id, since=None,
                )
