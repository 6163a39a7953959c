"""Secrets at rest and production mode: a copy of the database holds no endpoint secret nor header value
in clear, older clear rows still read, `hookline rekey` moves everything to a new key, production refuses
http endpoints and refuses to start without a key, and Temporal connects over TLS, mTLS or an API key."""

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from standardwebhooks import Webhook
from temporalio.service import TLSConfig

from hookline.core import crypto
from hookline.core.config import Settings
from hookline.core.signing import generate_secret
from hookline.core.temporal import connection_security
from hookline.store.db import dispose, make_engine
from tests.harness import (
    ENCRYPTION_KEY,
    TOKEN,
    ApiClient,
    PostgresCluster,
    Receiver,
    Stack,
    StackFactory,
    api_client,
)

# --- the keys ------------------------------------------------------------------------------------


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = crypto.generate_key(), crypto.generate_key()
    sealed_by_old = crypto.Keyring(old).seal("whsec_one")
    ring = crypto.Keyring(f"{new},{old}")
    sealed = ring.seal("whsec_two")
    assert crypto.is_token(sealed) and "whsec_two" not in sealed
    assert ring.unseal(sealed) == "whsec_two" and ring.unseal(sealed_by_old) == "whsec_one"
    assert crypto.Keyring(new).unseal(sealed) == "whsec_two"  # sealed with the first key
    with pytest.raises(crypto.EncryptionKeyError, match="HOOKLINE_ENCRYPTION_KEY"):
        crypto.Keyring(old).unseal(sealed)
    # A value an older version stored in clear reads as is.
    assert ring.unseal("whsec_legacy") == "whsec_legacy"
    assert ring.unseal("gAAAAA-not-really-a-token") == "gAAAAA-not-really-a-token"


def test_an_attempt_decrypts_a_value_at_most_once() -> None:
    """The delivery hot path reads the endpoint's sealed values on every attempt: one decryption per token, ever."""
    ring = crypto.Keyring(crypto.generate_key())
    token = ring.seal("whsec_hot")
    calls = []
    fernet = ring._fernet
    decrypt = fernet.decrypt
    fernet.decrypt = lambda t: calls.append(t) or decrypt(t)  # type: ignore[method-assign]
    assert [ring.unseal(token) for _ in range(50)] == ["whsec_hot"] * 50
    assert len(calls) == 1


@pytest.mark.parametrize("value", ["not-a-key", "c2hvcnQ=", f"{'A' * 44},x", ",", "ünïcode"])
def test_a_malformed_key_is_refused_by_name_without_echoing_it(value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(encryption_key=value)
    assert "HOOKLINE_ENCRYPTION_KEY" in str(caught.value)
    assert len(value) < 2 or value not in str(caught.value)


def test_the_key_never_prints() -> None:
    key = crypto.generate_key()
    settings = Settings(encryption_key=f"{key},{crypto.generate_key()}", temporal_api_key="cloud-key-123")
    assert key not in repr(settings) and key not in str(settings.model_dump())
    assert "cloud-key-123" not in repr(settings)


# --- Temporal connection security ----------------------------------------------------------------


def test_temporal_connects_in_plain_by_default() -> None:
    assert connection_security(Settings()) == {"tls": False, "api_key": None}


def test_temporal_tls_mtls_and_api_key_map_to_the_client(tmp_path: Path) -> None:
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    for path in (ca, cert, key):
        path.write_bytes(f"-----{path.name}-----".encode())

    assert connection_security(Settings(temporal_tls=True)) == {"tls": TLSConfig(), "api_key": None}
    mtls = connection_security(
        Settings(
            temporal_tls_ca_file=ca, temporal_tls_cert_file=cert, temporal_tls_key_file=key,
            temporal_tls_server_name="temporal.internal.example",
        )
    )
    assert mtls == {
        "tls": TLSConfig(
            server_root_ca_cert=b"-----ca.pem-----", client_cert=b"-----client.pem-----",
            client_private_key=b"-----client.key-----", domain="temporal.internal.example",
        ),
        "api_key": None,
    }
    # Temporal Cloud: an API key, over TLS even when HOOKLINE_TEMPORAL_TLS says nothing.
    cloud = connection_security(Settings(temporal_api_key="cloud-key", temporal_tls=False))
    assert cloud == {"tls": TLSConfig(), "api_key": "cloud-key"}


def test_a_client_cert_without_its_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="HOOKLINE_TEMPORAL_TLS_KEY_FILE"):
        Settings(temporal_tls_cert_file="client.pem")


# --- start-up without a key ----------------------------------------------------------------------


ROOT = Path(__file__).resolve().parent.parent


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    return {**env, "HOOKLINE_ADMIN_TOKEN": TOKEN, **extra}


# These start the program as a user does, one process each: the stack tier.
@pytest.mark.stack
@pytest.mark.parametrize(
    "command", [["-m", "hookline.cli", "api"], ["-m", "hookline.cli", "worker"], ["-m", "hookline.cli", "rekey"],
                ["worker.py"]],  # README: `hookline worker`, or `python worker.py`
    ids=["api", "worker", "rekey", "worker.py"],
)
@pytest.mark.parametrize("env", ["production", "development"])
def test_no_process_starts_without_a_key(command: list[str], env: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=_bare_env(HOOKLINE_ENV=env, HOOKLINE_DATA_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 2, result.stderr
    assert "HOOKLINE_ENCRYPTION_KEY" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "hookline.db").exists()  # stopped before touching anything


@pytest.mark.stack
def test_a_malformed_key_stops_the_api_with_its_name() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "api"], env=_bare_env(HOOKLINE_ENCRYPTION_KEY="hunter2-not-a-key"),
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 2
    assert "HOOKLINE_ENCRYPTION_KEY" in result.stderr and "hunter2" not in result.stderr + result.stdout


def test_dev_keeps_its_key_in_a_file_only_its_user_reads(tmp_path: Path) -> None:
    from hookline.cli import _dev_key

    key = _dev_key(Settings(data_dir=tmp_path))
    path = tmp_path / "encryption-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    crypto.parse_keys(key)
    assert _dev_key(Settings(data_dir=tmp_path)) == key  # the next run reads what it stored
    given = crypto.generate_key()
    assert _dev_key(Settings(data_dir=tmp_path, encryption_key=given)) == given


# --- a copy of the database ----------------------------------------------------------------------


def _needles(*secrets: str, header_value: str) -> list[bytes]:
    """Each secret as sent and as the base64 of its key, and the header value."""
    return [n.encode() for s in secrets for n in (s, s.removeprefix("whsec_"))] + [header_value.encode()]


def _sqlite_files(stack: Stack) -> list[Path]:
    db = stack.sqlite_file
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def _postgres_bytes(cluster: PostgresCluster, database_url: str) -> list[tuple[str, bytes]]:
    """A pg_dump of the database and, after a CHECKPOINT, every file of the cluster's data directory."""
    database = database_url.rsplit("/", 1)[1]
    dump = subprocess.run(
        [str(cluster.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", database],
        capture_output=True, check=True, timeout=60,
    ).stdout
    assert b"CREATE TABLE public.endpoints" in dump
    subprocess.run(
        [str(cluster.bin / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-c", "CHECKPOINT",
         database],
        capture_output=True, check=True, timeout=60,
    )
    files = [("pg_dump", dump)]
    for path in (cluster.dir / "data").rglob("*"):
        if path.is_file():
            files.append((str(path), path.read_bytes()))
    return files


async def _deliver_and_rotate(api: ApiClient, receiver: Receiver, path: str) -> tuple[str, str, str]:
    """Deliveries signed with a given secret, then with it and its successor; (first, second, header value)."""
    app_id = await api.create_app()
    first, header_value = generate_secret(), "hv-" + uuid.uuid4().hex
    endpoint = await api.create_endpoint(app_id, receiver.url(path), secret=first, headers={"X-Api-Key": header_value})
    event = await api.publish(app_id, "invoice.paid", {"n": 1})
    await api.wait_event(app_id, event["id"])
    r = await api.http.post(f"/v1/apps/{app_id}/endpoints/{endpoint['id']}/secret/rotate")
    assert r.status_code == 200, r.text
    second = r.json()["secret"]
    event = await api.publish(app_id, "invoice.paid", {"n": 2})
    await api.wait_event(app_id, event["id"])

    one, two = receiver.at(path)
    Webhook(first).verify(one.body, one.headers)
    Webhook(second).verify(two.body, two.headers)
    Webhook(first).verify(two.body, two.headers)  # the previous secret, still in its grace period
    assert one.headers["x-api-key"] == two.headers["x-api-key"] == header_value
    return first, second, header_value


async def test_a_copy_of_the_sqlite_database_holds_no_secret(
    api: ApiClient, sqlite_stack: Stack, receiver: Receiver, path: str
) -> None:
    first, second, header_value = await _deliver_and_rotate(api, receiver, path)
    files = _sqlite_files(sqlite_stack)
    assert files and files[0].stat().st_size > 0
    for file in files:
        raw = file.read_bytes()
        for needle in _needles(first, second, header_value=header_value):
            assert needle not in raw, f"{needle!r} in clear in {file.name}"


async def test_a_copy_of_the_postgres_database_holds_no_secret(
    postgres_stack: Stack, postgres: PostgresCluster, receiver: Receiver, path: str
) -> None:
    async for api in api_client(postgres_stack):
        first, second, header_value = await _deliver_and_rotate(api, receiver, path)
    for name, raw in _postgres_bytes(postgres, postgres_stack.database_url):
        for needle in _needles(first, second, header_value=header_value):
            assert needle not in raw, f"{needle!r} in clear in {name}"


# --- reads, URLs and production mode -------------------------------------------------------------


async def test_endpoint_reads_name_headers_and_never_show_a_value(api: ApiClient, receiver: Receiver, path: str) -> None:
    app_id = await api.create_app()
    value = "Bearer " + uuid.uuid4().hex
    created = await api.create_endpoint(app_id, receiver.url(path), headers={"Authorization": value, "X-Tenant": "acme"})
    assert created["header_names"] == ["Authorization", "X-Tenant"] and "headers" not in created
    base = f"/v1/apps/{app_id}/endpoints"
    patched = await api.http.patch(f"{base}/{created['id']}", json={"headers": {"Authorization": value + "2"}})
    assert patched.status_code == 200 and patched.json()["header_names"] == ["Authorization"]
    for r in (patched, await api.http.get(f"{base}/{created['id']}"), await api.http.get(base)):
        assert r.status_code == 200 and value not in r.text and "acme" not in r.text


@pytest.mark.parametrize(
    "url",
    ["https://user:pa55word@hooks.example.com/in", "https://user@hooks.example.com/in", "http://:pa55word@127.0.0.1:9/x"],
)
async def test_credentials_in_a_url_are_refused(api: ApiClient, receiver: Receiver, path: str, url: str) -> None:
    app_id = await api.create_app()
    base = f"/v1/apps/{app_id}/endpoints"
    r = await api.http.post(base, json={"url": url})
    assert r.status_code == 422 and "headers" in r.json()["detail"]
    assert "pa55word" not in r.text
    assert (await api.http.get(base)).json()["data"] == []

    endpoint = await api.create_endpoint(app_id, receiver.url(path))
    r = await api.http.patch(f"{base}/{endpoint['id']}", json={"url": url})
    assert r.status_code == 422 and "headers" in r.json()["detail"] and "pa55word" not in r.text
    assert (await api.http.get(f"{base}/{endpoint['id']}")).json() == endpoint


@pytest.fixture(scope="module")
def production_stack(make_stack: StackFactory) -> Stack:
    """The API as production runs it (registration only: nothing is delivered)."""
    return make_stack("production", worker=False, HOOKLINE_ENV="production", HOOKLINE_ALLOW_PRIVATE_TARGETS="false")


@pytest.fixture
async def production_api(production_stack: Stack) -> AsyncIterator[ApiClient]:
    async for client in api_client(production_stack):
        yield client


async def test_production_takes_https_endpoints_only(production_api: ApiClient) -> None:
    api = production_api
    app_id = await api.create_app()
    base = f"/v1/apps/{app_id}/endpoints"
    r = await api.http.post(base, json={"url": "http://hooks.example.com/in"})
    assert r.status_code == 422 and "HOOKLINE_ENV" in r.json()["detail"] and "https" in r.json()["detail"]
    assert (await api.http.get(base)).json()["data"] == []

    endpoint = await api.create_endpoint(app_id, "https://hooks.example.com/in")
    assert endpoint["url"] == "https://hooks.example.com/in"
    r = await api.http.patch(f"{base}/{endpoint['id']}", json={"url": "http://hooks.example.com/in"})
    assert r.status_code == 422 and "HOOKLINE_ENV" in r.json()["detail"]
    assert (await api.http.get(f"{base}/{endpoint['id']}")).json() == endpoint


# --- older rows and key rotation -----------------------------------------------------------------


async def _raw_endpoint(stack: Stack, endpoint_id: str) -> tuple[str, str | None, str | None]:
    """The stored (secret, previous_secret, headers) of an endpoint, as the database holds them."""
    engine = make_engine(Settings(database_url=stack.database_url, data_dir=stack.work_dir))
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(
                text("SELECT secret, previous_secret, headers FROM endpoints WHERE id = :id"), {"id": endpoint_id}
            )).one()
            return row[0], row[1], row[2] if row[2] is None or isinstance(row[2], str) else str(row[2])
    finally:
        await dispose(engine)


async def _write_clear(stack: Stack, endpoint_id: str, secret: str, headers_json: str) -> None:
    """What an older version left: the secret and the headers in clear."""
    engine = make_engine(Settings(database_url=stack.database_url, data_dir=stack.work_dir))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE endpoints SET secret = :s, headers = :h WHERE id = :id"),
                {"s": secret, "h": headers_json, "id": endpoint_id},
            )
    finally:
        await dispose(engine)


def _rekey(stack: Stack) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "rekey"], env=stack.env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_clear_rows_still_deliver_and_rekey_moves_everything_to_the_new_key(
    make_stack: StackFactory, receiver: Receiver, path: str
) -> None:
    stack = make_stack("rekey")
    old_key, new_key = ENCRYPTION_KEY, crypto.generate_key()
    legacy_secret, legacy_value = generate_secret(), "legacy-" + uuid.uuid4().hex
    try:
        async for api in api_client(stack):
            app_id = await api.create_app()
            sealed_ep = await api.create_endpoint(app_id, receiver.url(path + "/sealed"), headers={"X-Key": "k-sealed"})
            legacy_ep = await api.create_endpoint(app_id, receiver.url(path + "/legacy"))
            sealed_secret = await api.secret(app_id, sealed_ep["id"])
        await _write_clear(stack, legacy_ep["id"], legacy_secret, f'{{"X-Key": "{legacy_value}"}}')
        assert (await _raw_endpoint(stack, legacy_ep["id"]))[0] == legacy_secret

        async def deliver_and_verify(n: int) -> None:
            async for api in api_client(stack):
                event = await api.publish(app_id, "invoice.paid", {"n": n})
                await api.wait_event(app_id, event["id"])
            for suffix, secret, value in (("/sealed", sealed_secret, "k-sealed"), ("/legacy", legacy_secret, legacy_value)):
                got = receiver.at(path + suffix)[-1]
                assert got.json()["data"] == {"n": n}
                Webhook(secret).verify(got.body, got.headers)
                assert got.headers["x-key"] == value

        await deliver_and_verify(1)  # the clear row of an older version reads as is

        # Rotation: the new key first on every process, rekey, then the old key dropped.
        stack.stop()
        stack.extra_env["HOOKLINE_ENCRYPTION_KEY"] = f"{new_key},{old_key}"
        assert "2 endpoints" in _rekey(stack)
        only_new, only_old = crypto.Keyring(new_key), crypto.Keyring(old_key)
        for endpoint_id in (sealed_ep["id"], legacy_ep["id"]):
            secret, _previous, headers = await _raw_endpoint(stack, endpoint_id)
            assert crypto.is_token(secret) and secret.startswith("gAAAAA")
            assert only_new.unseal(secret) in (sealed_secret, legacy_secret)
            assert headers is not None and legacy_value not in headers and "k-sealed" not in headers
            with pytest.raises(crypto.EncryptionKeyError):
                only_old.unseal(secret)
        raw = b"".join(f.read_bytes() for f in _sqlite_files(stack))
        assert sealed_secret.encode() not in raw

        stack.extra_env["HOOKLINE_ENCRYPTION_KEY"] = new_key
        stack.start()
        await deliver_and_verify(2)
        async for api in api_client(stack):
            assert await api.secret(app_id, legacy_ep["id"]) == legacy_secret
    except BaseException:
        print(stack.logs())
        raise
