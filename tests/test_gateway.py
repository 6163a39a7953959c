"""The API-gateway example (deploy/nginx/) run with Debian's nginx in front of two API processes:
TLS termination, a rate limit per credential, fail-over between the upstreams, X-Forwarded-For."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import re
import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hookline.cli import wait_for_port
from tests.harness import TOKEN, Proc, Receiver, Stack, TemporalServer, free_port, wait_until

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "hookline.conf.template"
RATE, BURST = "5r/s", 10
AUTH_FAILURES_PER_MIN = 3

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)"),
]


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hookline-gateway.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "gateway.crt", directory / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def render(template: str, values: dict[str, str]) -> str:
    """envsubst on the ${GATEWAY_*} names only, as the file's header says to run it."""
    rendered = re.sub(r"\$\{(GATEWAY_[A-Z0-9_]+)\}", lambda m: values[m.group(1)], template)
    assert not [line for line in rendered.splitlines() if "${" in line and not line.lstrip().startswith("#")]
    return rendered


@dataclass
class Gateway:
    port: int
    ca: Path
    proc: Proc
    apis: list[Stack]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def client(self, token: str | None = TOKEN, source: str | None = None) -> httpx.AsyncClient:
        """A client that trusts the gateway's certificate, connecting from `source` (127.0.0.x) if given."""
        context = ssl.create_default_context(cafile=str(self.ca))
        transport = httpx.AsyncHTTPTransport(verify=context, local_address=source)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, transport=transport, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def gateway(temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    work_dir = tmp_path_factory.mktemp("gateway")
    env = {
        "HOOKLINE_FORWARDED_ALLOW_IPS": "127.0.0.1",  # the gateway, and nobody else
        "HOOKLINE_AUTH_FAILURES_PER_MIN": str(AUTH_FAILURES_PER_MIN),
    }
    first = Stack(temporal=temporal, database_url=f"sqlite:///{work_dir / 'hookline.db'}", work_dir=work_dir, extra_env=env)
    second = Stack(temporal=temporal, database_url=first.database_url, work_dir=work_dir, task_queue=first.task_queue, extra_env=env)
    cert, key = self_signed(work_dir)
    port = free_port()
    conf = render(TEMPLATE.read_text(), {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}", "GATEWAY_SERVER_NAME": "hookline-gateway.test",
        "GATEWAY_TLS_CERT": str(cert), "GATEWAY_TLS_KEY": str(key),
        "GATEWAY_API_1": f"127.0.0.1:{first.api_port}", "GATEWAY_API_2": f"127.0.0.1:{second.api_port}",
        "GATEWAY_RATE": RATE, "GATEWAY_BURST": str(BURST),
    })
    (work_dir / "hookline.conf").write_text(conf)
    # The machine-specific part of nginx.conf: in the foreground, everything under the test's directory.
    temp = work_dir / "nginx-temp"
    temp.mkdir()
    (work_dir / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # workers must write the temp dir the test made
        + f"daemon off;\nworker_processes 1;\npid {work_dir / 'nginx.pid'};\nerror_log {work_dir / 'nginx-error.log'} warn;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/fastcgi;\n"
        f"  uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n  include {work_dir / 'hookline.conf'};\n}}\n"
    )
    nginx = Proc("nginx", [str(NGINX), "-p", str(work_dir), "-c", str(work_dir / "nginx.conf"), "-e", str(work_dir / "nginx-error.log")], dict(os.environ), work_dir)
    try:
        first.start()
        second.start_api()
        nginx.start()
        wait_for_port(port, 30, nginx.proc)
        yield Gateway(port=port, ca=cert, proc=nginx, apis=[first, second])
    except BaseException:
        print(first.logs(), second.logs(), nginx.log(), (work_dir / "nginx-error.log").read_text(errors="replace")[-3000:] if (work_dir / "nginx-error.log").exists() else "")
        raise
    finally:
        nginx.stop()
        second.stop()
        first.stop()


async def wait_delivered(client: httpx.AsyncClient, app_id: str, event_id: str) -> dict:
    async def fetch() -> dict:
        r = await client.get(f"/v1/apps/{app_id}/events/{event_id}")
        assert r.status_code == 200, r.text
        return r.json()

    return await wait_until(fetch, lambda e: bool(e["deliveries"]) and e["deliveries"][0]["status"] == "succeeded", 60, every=0.5)


async def test_requests_through_the_gateway_work_over_tls_on_both_upstreams(gateway: Gateway, receiver: Receiver, path: str) -> None:
    async with gateway.client() as client:
        r = await client.post("/v1/apps", json={"name": "via-gateway"})
        assert r.status_code == 201, r.text
        app_id = r.json()["id"]
        r = await client.post(f"/v1/apps/{app_id}/endpoints", json={"url": receiver.url(path)})
        assert r.status_code == 201, r.text
        r = await client.post(f"/v1/apps/{app_id}/events", json={"type": "invoice.paid", "data": {"id": 1}})
        assert r.status_code == 202, r.text
        await wait_delivered(client, app_id, r.json()["id"])
        for _ in range(4):
            assert (await client.get("/v1/apps", params={"limit": 1})).status_code == 200
    assert len(receiver.at(path)) == 1
    # Round robin: each API process logged requests it served (its access log: route templates only).
    for api in gateway.apis:
        assert api.api is not None and "GET /v1/apps" in api.api.log()
    # TLS only: plain HTTP on the gateway's port is refused by nginx, not passed on.
    async with httpx.AsyncClient(timeout=10) as plain:
        r = await plain.get(f"http://127.0.0.1:{gateway.port}/v1/apps", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400 and "nginx" in r.headers.get("server", "")


async def test_over_the_rate_a_credential_gets_429_and_others_are_served(gateway: Gateway) -> None:
    async with gateway.client() as admin:
        r = await admin.post("/v1/apps", json={"name": "budget"})
        assert r.status_code == 201, r.text
        r = await admin.post("/v1/api-keys", json={"name": "other", "scopes": ["app:read"], "app_id": r.json()["id"]})
        assert r.status_code == 201, r.text
        other_key = r.json()["key"]
        await asyncio.sleep(BURST / 5 + 1)  # the admin's budget refills
        answers = await asyncio.gather(*(admin.get("/v1/apps", params={"limit": 1}) for _ in range(BURST * 6)))
    statuses = [a.status_code for a in answers]
    # Burst plus what the rate refilled while they ran got through (how many: the machine's speed).
    assert statuses.count(429) >= 1 and statuses.count(200) >= 1 and set(statuses) <= {200, 429}, statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert "nginx" in refused.headers.get("server", "")  # the gateway refused it; the API never saw it
    async with gateway.client(other_key) as other:  # another credential: its own budget
        assert (await other.get("/v1/apps", params={"limit": 1})).status_code == 200


async def test_the_api_sees_the_client_address_the_gateway_forwards_and_no_other(gateway: Gateway) -> None:
    """Failed logins count per client address: through the gateway, each client has its own."""
    async with gateway.client("wrong-token", source="127.0.0.2") as first, gateway.client("wrong-token", source="127.0.0.3") as second:
        # Each API process counts on its own, and the gateway alternates: both have counted this
        # address to the limit after twice as many failures.
        answers = [await first.get("/v1/apps") for _ in range(2 * AUTH_FAILURES_PER_MIN)]
        assert [a.status_code for a in answers] == [401] * (2 * AUTH_FAILURES_PER_MIN)
        for _ in range(2):
            over = await first.get("/v1/apps")
            assert over.status_code == 429 and "failed authentications" in over.text  # the API's throttle
        # A made-up X-Forwarded-For does not give the client a fresh address: the gateway replaces it.
        spoofed = await first.get("/v1/apps", headers={"x-forwarded-for": "203.0.113.9"})
        assert spoofed.status_code == 429
        # Another client address behind the same gateway still gets its own count.
        assert (await second.get("/v1/apps")).status_code == 401


async def test_one_upstream_killed_requests_are_still_served(gateway: Gateway) -> None:
    second = gateway.apis[1]
    assert second.api is not None
    second.api.kill()  # kill -9
    try:
        async with gateway.client() as client:
            await asyncio.sleep(BURST / 5 + 1)  # a fresh budget for this test's requests
            statuses = []
            for _ in range(BURST):
                statuses.append((await client.get("/v1/apps", params={"limit": 1})).status_code)
            r = await client.post("/v1/apps", json={"name": "after-the-kill"})
        assert statuses == [200] * BURST and r.status_code == 201
    finally:
        second.start_api()  # for any test that runs after this one


async def test_an_api_ignores_x_forwarded_for_from_a_client_it_does_not_trust(gateway: Gateway) -> None:
    """Straight to an API process from 127.0.0.4 (not in HOOKLINE_FORWARDED_ALLOW_IPS): a new made-up
    X-Forwarded-For on every request does not give a fresh failed-login count."""
    api = gateway.apis[0]
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.4")
    async with httpx.AsyncClient(base_url=api.url, transport=transport, headers={"authorization": "Bearer wrong"}, timeout=30) as direct:
        statuses = [
            (await direct.get("/v1/apps", headers={"x-forwarded-for": f"203.0.113.{n}"})).status_code
            for n in range(AUTH_FAILURES_PER_MIN + 1)
        ]
    assert statuses == [401] * AUTH_FAILURES_PER_MIN + [429]
