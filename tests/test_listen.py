"""`hookline listen` as a developer runs it: a subprocess against the real stack."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading

import httpx

from tests.harness import TOKEN, ApiClient, Receiver, Stack, wait_for


class Listen:
    """`hookline listen` in the background, its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hookline.cli", "listen", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    async def line(self, pattern: str, timeout: float = 60) -> re.Match:
        await wait_for(lambda: any(re.search(pattern, line) for line in self.lines) or self.proc.poll() is not None, timeout)
        for line in self.lines:
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no line matches {pattern!r}; output:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def test_listen_prints_verifies_relays_and_cleans_up(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    app_id = await api.create_app("listen")
    listen = Listen("--app", app_id, "--api", sqlite_stack.url, "--token", TOKEN, "--forward-to", receiver.url(path))
    try:
        ready = await listen.line(r"Listening on (http://127\.0\.0\.1:\d+/) as endpoint (ep_[0-9a-f]+)")
        url, endpoint_id = ready.group(1), ready.group(2)
        endpoint = (await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")).json()
        assert endpoint["url"] == url and endpoint["status"] == "active"

        event = await api.publish(app_id, "invoice.paid", {"invoice": "in_1"})
        relayed = await listen.line(rf"{event['id']}  invoice\.paid  verified  -> {re.escape(receiver.url(path))} (\d+)")
        assert relayed.group(1) == "200"
        # Relayed unchanged: the same body and the same signature headers as Hookline sent.
        await wait_for(lambda: len(receiver.at(path)) == 1)
        got = receiver.at(path)[0]
        assert got.json()["id"] == event["id"] and got.json()["data"] == {"invoice": "in_1"}
        assert got.headers["webhook-id"] == event["id"] and got.headers["webhook-signature"].startswith("v1,")
        done = await api.wait_event(app_id, event["id"])
        assert [d["status"] for d in done["deliveries"]] == ["succeeded"]  # listen answered 2xx

        # A forged delivery is printed as such.
        async with httpx.AsyncClient() as forger:
            await forger.post(url, content=b'{"type": "forged.event"}', headers={
                "webhook-id": "msg_forged", "webhook-timestamp": "1700000000", "webhook-signature": "v1,Zm9yZ2Vk",
            })
        await listen.line(r"msg_forged  forged\.event  INVALID SIGNATURE")

        listen.proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.to_thread(listen.proc.wait, 30) == 0, listen.output()
        await listen.line(rf"removed endpoint {endpoint_id}")
        assert (await api.http.get(f"/v1/apps/{app_id}/endpoints/{endpoint_id}")).status_code == 404
    finally:
        listen.stop()


async def test_listen_on_sigterm_removes_its_endpoint_too(api: ApiClient, sqlite_stack: Stack) -> None:
    app_id = await api.create_app("listen")
    listen = Listen("--app", app_id, "--api", sqlite_stack.url, "--token", TOKEN)
    try:
        endpoint_id = (await listen.line(r"as endpoint (ep_[0-9a-f]+)")).group(1)
        listen.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(listen.proc.wait, 30) == 0, listen.output()
        assert (await api.http.get(f"/v1/apps/{app_id}/endpoints")).json()["data"] == []
        assert endpoint_id in listen.output()
    finally:
        listen.stop()


async def test_listen_explains_a_refusal(sqlite_stack: Stack) -> None:
    for args, words in [
        (["--app", "app_0000000000000000000000000000", "--token", TOKEN], "application app_0000000000000000000000000000 not found"),
        (["--app", "app_0000000000000000000000000000", "--token", "wrong"], "--token"),
    ]:
        listen = Listen(*args, "--api", sqlite_stack.url)
        try:
            assert await asyncio.to_thread(listen.proc.wait, 30) == 1
            await listen.line(re.escape(words))
        finally:
            listen.stop()
