"""Health, Prometheus metrics and logs, as an operator sees them."""

import uuid

import httpx

from tests.harness import ApiClient, Receiver, Stack, wait_until


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_healthz_needs_no_token(sqlite_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=sqlite_stack.url) as anonymous:
        r = await anonymous.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_metrics_count_published_events_and_attempts(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    worker_metrics = f"http://127.0.0.1:{sqlite_stack.worker_metrics_port}/metrics"
    async with httpx.AsyncClient() as scraper:
        before_api = (await api.http.get("/metrics")).text
        before_worker = (await scraper.get(worker_metrics)).text
        app_id = await api.create_app()
        await api.create_endpoint(app_id, receiver.url(path))
        receiver.set(path, 500, 200)
        event = await api.publish(app_id, "invoice.paid", {})
        keyed = await api.publish(app_id, "invoice.paid", {}, key="k")
        await api.publish(app_id, "invoice.paid", {}, key="k")  # a repeat is not a new event
        for published_event in (event, keyed):
            await api.wait_event(app_id, published_event["id"])
        after_api = (await api.http.get("/metrics")).text

        succeeded = 'hookline_delivery_attempts_total{outcome="succeeded"}'
        retrying = 'hookline_delivery_attempts_total{outcome="retrying"}'

        async def scrape() -> str:
            return (await scraper.get(worker_metrics)).text

        # The worker counts an attempt just after recording it: the store may be read a moment sooner.
        after_worker = await wait_until(
            scrape, lambda text: metric(text, succeeded) - metric(before_worker, succeeded) >= 2, timeout=10
        )

    published = "hookline_events_published_total"
    assert metric(after_api, published) - metric(before_api, published) == 2
    assert metric(after_worker, succeeded) - metric(before_worker, succeeded) >= 2  # other tests' retries may land too
    assert metric(after_worker, retrying) - metric(before_worker, retrying) >= 1
    assert "hookline_delivery_attempt_seconds_bucket" in after_worker
    # Each process lists its own families only, and both their process figures.
    assert "hookline_delivery_attempts_total" not in after_api
    assert "hookline_events_published_total" not in after_worker
    assert "process_resident_memory_bytes" in after_api and "process_resident_memory_bytes" in after_worker


async def test_worker_logs_no_endpoint_url(api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str) -> None:
    """Endpoint URLs often carry credentials (?token=…): the worker's log must not repeat them."""
    secret = f"sekrit-{uuid.uuid4().hex}"
    app_id = await api.create_app()
    await api.create_endpoint(app_id, receiver.url(f"{path}?token={secret}"))
    receiver.set(f"{path}?token={secret}", 500, 200)  # a failed attempt, then a success
    event = await api.publish(app_id, "invoice.paid", {})
    done = await api.wait_event(app_id, event["id"])
    assert [d["status"] for d in done["deliveries"]] == ["succeeded"]
    assert sqlite_stack.worker is not None
    log = sqlite_stack.worker.log_path.read_text(errors="replace")
    assert "worker polling task queue" in log  # the log is the worker's, and it is being written
    assert secret not in log
