"""The front door of `hookline api`: what a client may hold before any handler runs.

Against the real API process of the SQLite stack, with raw sockets where an HTTP client would
refuse to misbehave: oversized or too many headers are refused without being buffered, a client
trickling its headers is cut off, malformed query parameters are 422 and never 500.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from hookline.core.config import Settings
from tests.harness import ApiClient, Receiver, Stack

DEFAULTS = Settings()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def connect(stack: Stack) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", stack.api_port), timeout=10)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" if it only closed)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass
    return b"".join(chunks)


def refused(answer: bytes) -> bool:
    return answer == b"" or answer.startswith(b"HTTP/1.1 431 ")


async def test_a_64_mib_header_is_refused_without_being_buffered(sqlite_stack: Stack) -> None:
    assert sqlite_stack.api and sqlite_stack.api.proc
    pid = sqlite_stack.api.proc.pid
    before = rss_kib(pid)
    sock = connect(sqlite_stack)
    sent = 0
    chunk = b"a" * 65536
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        while sent < 64 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    answer = read_answer(sock)
    sock.close()
    assert refused(answer), answer[:200]
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of headers before refusing"
    assert rss_kib(pid) - before < 4 * 1024, f"RSS grew from {before} KiB to {rss_kib(pid)} KiB"


async def test_headers_just_over_the_byte_limit_get_431(sqlite_stack: Stack) -> None:
    sock = connect(sqlite_stack)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * DEFAULTS.max_header_bytes + b"\r\n\r\n")
    answer = read_answer(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"detail"' in answer


async def test_200_headers_are_refused_and_a_normal_count_is_served(sqlite_stack: Stack) -> None:
    def request(n: int) -> bytes:
        sock = connect(sqlite_stack)
        fields = b"".join(b"X-H%d: v\r\n" % i for i in range(n))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n")
        answer = read_answer(sock)
        sock.close()
        return answer

    assert refused(request(200))
    assert request(50).startswith(b"HTTP/1.1 200 ")


async def test_a_client_trickling_its_headers_is_disconnected(sqlite_stack: Stack) -> None:
    timeout = DEFAULTS.header_timeout_s
    sock = connect(sqlite_stack)
    sock.settimeout(1)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    closed_after = None
    while time.monotonic() - started < timeout + 10:
        try:
            sock.sendall(b"X")
            if sock.recv(1024) == b"":
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            continue  # nothing to read yet: one more byte next second
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - started
            break
    sock.close()
    assert closed_after is not None, "the trickling client was never disconnected"
    assert closed_after < timeout + 3


async def test_a_silent_connection_is_closed_and_a_prompt_one_still_served(sqlite_stack: Stack) -> None:
    silent = connect(sqlite_stack)
    silent.settimeout(DEFAULTS.header_timeout_s + 5)
    prompt = connect(sqlite_stack)
    prompt.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_answer(prompt).startswith(b"HTTP/1.1 200 ")
    started = time.monotonic()
    assert silent.recv(1024) == b""
    assert time.monotonic() - started < DEFAULTS.header_timeout_s + 3
    silent.close()
    prompt.close()


# --- query parameters ----------------------------------------------------------------------------

HOSTILE_CURSORS = ["\u00b2", "9999999999999999999", "-0", "\uff11", "1\n", "app_" + "0" * 27 + "\u00b2"]


async def test_reported_cursors_are_422_on_every_list(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app("cursors")
    await api.create_endpoint(app_id, receiver.url(path))
    event = await api.publish(app_id, "cursor.tested", {"n": 1})
    done = await api.wait_event(app_id, event["id"])
    delivery_id = done["deliveries"][0]["id"]
    lists = [
        "/v1/apps", "/v1/event-types", f"/v1/apps/{app_id}/endpoints", f"/v1/apps/{app_id}/events",
        f"/v1/apps/{app_id}/deliveries", f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts",
    ]
    for url in lists:
        for cursor in HOSTILE_CURSORS:
            r = await api.http.get(url, params={"cursor": cursor})
            assert r.status_code == 422, f"{url}?cursor={cursor!r} -> {r.status_code} {r.text[:200]}"
            assert "cursor" in r.json()["detail"]
        assert (await api.http.get(url, params={"limit": 1})).status_code == 200
    attempts = f"/v1/apps/{app_id}/deliveries/{delivery_id}/attempts"
    r = await api.http.get(attempts, params={"cursor": "0"})
    assert r.status_code == 200 and [a["number"] for a in r.json()["data"]] == [1]
    assert (await api.http.get(attempts, params={"cursor": "999999999"})).json()["data"] == []


@pytest.mark.parametrize(
    "url, params",
    [
        ("/v1/apps/{app}/deliveries", {"status": "\u00b2"}),
        ("/v1/apps/{app}/deliveries", {"endpoint_id": "e" * 65}),
        ("/v1/apps/{app}/events/{evt}", {"live": "maybe"}),
        ("/v1/apps/{app}/events/{evt}", {"live": "9999999999999999999"}),
        ("/v1/apps", {"limit": "\u00b2"}),
        ("/v1/apps", {"limit": "9999999999999999999"}),
    ],
)
async def test_malformed_filters_are_422(api: ApiClient, url: str, params: dict) -> None:
    app_id = await api.create_app("filters")
    event = await api.publish(app_id, "filter.tested", {"n": 1})
    r = await api.http.get(url.format(app=app_id, evt=event["id"]), params=params)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)


async def test_malformed_path_ids_are_422_and_well_formed_unknown_ids_404(api: ApiClient) -> None:
    app_id = await api.create_app("ids")
    for kind, prefix in (("endpoints", "ep"), ("events", "evt"), ("deliveries", "dlv")):
        unknown = f"/v1/apps/{app_id}/{kind}/{prefix}_{'0' * 28}"
        assert (await api.http.get(unknown)).status_code == 404
        for bad in (f"{prefix}_nope", f"{prefix}_{'0' * 27}\u00b2", "x" * 5000):
            assert (await api.http.get(f"/v1/apps/{app_id}/{kind}/{bad}")).status_code == 422


async def test_openapi_documents_error_shapes_and_formats(api: ApiClient) -> None:
    doc = (await api.http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert {"413", "422"} <= statuses, (method, path)
            if path.startswith("/v1"):
                assert {"401", "403", "404", "429"} <= statuses, (method, path)
            for code, response in op["responses"].items():
                if code >= "400":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ValidationErrorOut" if code == "422" else "/ErrorOut"), (method, path, code)
    attempts = doc["paths"]["/v1/apps/{app_id}/deliveries/{delivery_id}/attempts"]["get"]
    cursor = next(p for p in attempts["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["anyOf"][0]["pattern"] == "^[0-9]{1,9}$"


async def test_unknown_query_parameters_are_422(api: ApiClient) -> None:
    """A typo must not silently widen a filter: `?stauts=failed` would list every delivery."""
    app_id = await api.create_app("typos")
    for url, params in [
        (f"/v1/apps/{app_id}/deliveries", {"stauts": "dead_lettered"}),
        ("/v1/apps", {"limit": "1", "offset": "5"}),
        ("/healthz", {"verbose": "1"}),
    ]:
        r = await api.http.get(url, params=params)
        assert r.status_code == 422, (url, r.text)
        assert "unknown query parameter" in r.json()["detail"]
    assert (await api.http.get(f"/v1/apps/{app_id}/deliveries", params={"status": "dead_lettered"})).status_code == 200
