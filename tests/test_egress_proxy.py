"""HOOKLINE_EGRESS_PROXY: every delivery through a forward proxy's CONNECT tunnel, the destination
guard still checking the target (and the tunnel naming the address it checked)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from hookline.activities.http import ClientPool, DestinationBlocked
from tests.harness import ApiClient, Receiver, Stack, TemporalServer, api_client, isolated_stack, wait_for


class ConnectProxy:
    """A tiny CONNECT proxy on 127.0.0.1 that counts its connections and the targets asked for.

    `redirect` sends every tunnel to that port on 127.0.0.1 instead of the target asked for: it
    stands in for the internet, so a test can ask for a public address and still reach a receiver.
    `refuse` answers 403 to every CONNECT, as an egress proxy denying a destination does.
    """

    def __init__(self, redirect: int | None = None, refuse: bool = False) -> None:
        self.redirect, self.refuse = redirect, refuse
        self.connections = 0
        self.targets: list[str] = []
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n")
            method, target, _ = lines[0].decode().split(" ", 2)
            auth = next(
                (h.decode().split(":", 1)[1].strip() for h in lines[1:] if h.lower().startswith(b"proxy-authorization:")),
                None,
            )
            with self._lock:
                self.targets.append(target)
                self.auth.append(auth)
            if method != "CONNECT" or self.refuse:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            upstream_addr = ("127.0.0.1", self.redirect) if self.redirect else (host.strip("[]"), int(port))
            with socket.create_connection(upstream_addr) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
                pump.start()
                self._pump(client, upstream)
                pump.join(5)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = ConnectProxy()
    yield server
    server.close()


async def test_deliveries_go_through_the_proxy_and_reuse_the_tunnel(receiver: Receiver, proxy: ConnectProxy, path: str) -> None:
    pool = ClientPool(1, proxy=proxy.url)
    try:
        for n in range(3):
            response = await pool.for_url(receiver.url(path)).post(receiver.url(path), content=b'{"n": %d}' % n)
            assert response.status_code == 200
    finally:
        await pool.aclose()
    assert [r.body for r in receiver.at(path)] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert proxy.connections == 1 and proxy.targets == [f"127.0.0.1:{receiver.port}"]
    assert proxy.auth == [None]


async def test_the_guard_checks_the_target_and_the_tunnel_names_the_checked_address(receiver: Receiver, path: str) -> None:
    internet = ConnectProxy(redirect=receiver.port)

    async def dns(host: str, port: int) -> list[str]:
        return {"hooks.example.com": ["93.184.216.34"], "inside.example.com": ["10.1.2.3"]}[host]

    # Credentials in the proxy URL become a Proxy-Authorization header, sent to the proxy only.
    pool = ClientPool(1, public_only=True, resolve=dns, proxy=f"http://hook:s3cret@127.0.0.1:{internet.port}")
    try:
        url = f"http://hooks.example.com:8080{path}"
        assert (await pool.for_url(url).post(url, content=b"{}")).status_code == 200
        # A name that resolves inside is refused before the proxy is even asked.
        inside = f"http://inside.example.com{path}"
        with pytest.raises(DestinationBlocked, match=r"resolves to 10\.1\.2\.3, a private address"):
            await pool.for_url(inside).post(inside, content=b"{}")
        with pytest.raises(DestinationBlocked, match="private address"):
            await pool.for_url(receiver.url(path)).post(receiver.url(path), content=b"{}")
    finally:
        await pool.aclose()
        internet.close()
    # The CONNECT named the address Hookline resolved and checked, not the name: a proxy that
    # resolved the name again could be steered by a second DNS answer.
    assert internet.targets == ["93.184.216.34:8080"] and internet.connections == 1
    assert internet.auth == ["Basic aG9vazpzM2NyZXQ="]  # hook:s3cret
    [received] = receiver.at(path)
    assert received.headers["host"] == "hooks.example.com:8080"  # the receiver still sees its name
    assert "proxy-authorization" not in received.headers


async def test_a_proxy_refusing_the_connect_fails_the_attempt(receiver: Receiver, path: str) -> None:
    refusing = ConnectProxy(refuse=True)
    pool = ClientPool(1, proxy=refusing.url)
    try:
        with pytest.raises(httpx.ConnectError, match="egress proxy answered 403"):
            await pool.for_url(receiver.url(path)).post(receiver.url(path), content=b"{}")
    finally:
        await pool.aclose()
        refusing.close()
    assert receiver.at(path) == [] and refusing.connections == 1


@pytest.mark.stack  # starts the process, which refuses the setting
@pytest.mark.parametrize(
    "value", ["https://proxy.internal:3128", "socks5://proxy.internal:1080", "http://proxy.internal:99999",
              "http://u:hunter2@proxy.internal:3128/path", "proxy.internal:3128", "http://"],
)
def test_a_malformed_proxy_stops_the_worker_with_its_name_only(value: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOOKLINE_DATA_DIR": str(tmp_path), "HOOKLINE_EGRESS_PROXY": value}
    result = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "worker"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "egress_proxy" in result.stderr and "hunter2" not in result.stdout + result.stderr
    assert "proxy.internal" not in result.stdout + result.stderr  # the value is never echoed


# --- a worker with HOOKLINE_EGRESS_PROXY set ------------------------------------------------------


@pytest.fixture(scope="module")
def stack_proxy() -> Iterator[ConnectProxy]:
    server = ConnectProxy()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxied_stack(temporal: TemporalServer, stack_proxy: ConnectProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work_dir = tmp_path_factory.mktemp("egress")
    yield from isolated_stack(temporal, work_dir, f"sqlite:///{work_dir / 'hookline.db'}", HOOKLINE_EGRESS_PROXY=stack_proxy.url)


@pytest.fixture
async def proxied(proxied_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(proxied_stack):
        yield client


async def test_a_worker_with_an_egress_proxy_delivers_every_event_through_it(
    proxied: ApiClient, stack_proxy: ConnectProxy, receiver: Receiver, path: str
) -> None:
    app_id = await proxied.create_app()
    await proxied.create_endpoint(app_id, receiver.url(path))
    events = [await proxied.publish(app_id, "invoice.paid", {"n": n}) for n in range(5)]
    for event in events:
        done = await proxied.wait_event(app_id, event["id"], timeout=60)
        assert [d["status"] for d in done["deliveries"]] == ["succeeded"]
    await wait_for(lambda: len(receiver.at(path)) == 5)
    # Every delivery went through a tunnel to the receiver (and only there).
    assert stack_proxy.connections >= 1
    assert set(stack_proxy.targets) == {f"127.0.0.1:{receiver.port}"}
