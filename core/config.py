"""Every setting of Hookline, read once from `HOOKLINE_*` environment variables."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hookline.core.crypto import parse_keys

# Partitions per task queue when nothing says otherwise: the Temporal server's own default.
TEMPORAL_DEFAULT_PARTITIONS = 4
# `hookline dev`'s, for a new data directory. Fairness is computed per partition: with one, another
# application's events stay within a second behind a backlog (docs/operations.md, "Tenant fairness").
DEV_PARTITIONS = 1


class Settings(BaseSettings):
    # Errors name the setting, never echo its value: some values are keys.
    model_config = SettingsConfigDict(
        env_prefix="HOOKLINE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path(".hookline")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in the data dir."
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "hookline"

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    ui_port: int = Field(default=8233, ge=1, le=65535)

    admin_token: str | None = None
    allow_private_targets: bool = False
    # At least a small event; at most what one request may hold in memory.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)

    delivery_timeout_s: float = Field(default=15.0, gt=0, le=300)
    retry_max_attempts: int = Field(default=13, ge=1, le=100)
    # Bounds as in core.retry.RetrySchedule, so a default can never be an invalid schedule.
    retry_initial_interval_s: float = Field(default=5.0, ge=1, le=86400)
    retry_backoff_coefficient: float = Field(default=3.0, ge=1, le=10)
    retry_max_interval_s: float = Field(default=6 * 3600.0, gt=0, le=7 * 86400)
    retry_after_max_s: float = Field(default=3600.0, gt=0)
    fanout_window: int = Field(default=200, ge=1, le=1000)
    secret_rotation_grace_s: float = Field(default=24 * 3600.0, ge=0)
    worker_max_concurrent_activities: int = Field(default=500, ge=1)
    # A worker takes another workflow task only while the machine's CPU is below this share
    # (worker.worker_tuner says why); 0 turns that off: a fixed WORKFLOW_TASK_SLOTS.
    worker_target_cpu: float = Field(default=0.9, ge=0, le=1)
    # Temporal's workflow sandbox re-imports the workflow module for every workflow run and
    # proxies its calls: a third of the worker's CPU per event. The workflows are deterministic by
    # design, and the replay tests and the PostgreSQL test stack run them inside the sandbox.
    workflow_sandbox: bool = False
    # One Python process delivers on one core at most.
    dev_workers: int = Field(default=2, ge=1, le=32)
    # Partitions of each task queue on `hookline dev`'s Temporal server. Unset: DEV_PARTITIONS for a
    # new data directory, else what its server ran with (cli.dev_partitions).
    dev_task_queue_partitions: int | None = Field(default=None, ge=1, le=64)
    # How often the worker's recovery schedule looks for events recorded over two minutes ago
    # whose workflow was never started (the API or a producer died between the two steps).
    dispatch_recovery_s: float = Field(default=60.0, ge=1, le=3600)
    worker_metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve the worker's Prometheus metrics here"
    )

    # --- production mode, secrets at rest, Temporal connection security ---
    # `production` (the default) accepts only https endpoint URLs; `hookline dev` sets `development`.
    env: Literal["production", "development"] = "production"
    # Comma-separated Fernet keys: the first encrypts, all decrypt (core/crypto.py).
    encryption_key: SecretStr | None = None
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    temporal_tls_server_name: str | None = None
    # Temporal Cloud's API key; implies TLS.
    temporal_api_key: SecretStr | None = None

    @field_validator("encryption_key")
    @classmethod
    def _valid_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_keys(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _client_cert_pair(self) -> "Settings":
        if (self.temporal_tls_cert_file is None) != (self.temporal_tls_key_file is None):
            raise ValueError("HOOKLINE_TEMPORAL_TLS_CERT_FILE and HOOKLINE_TEMPORAL_TLS_KEY_FILE go together (mTLS)")
        return self

    # The API's front door (api/server.py): what one client may hold before a handler runs.
    max_header_bytes: int = Field(default=32 * 1024, ge=4096, le=1024 * 1024)
    max_headers: int = Field(default=100, ge=16, le=1000)
    header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_connections: int | None = Field(default=1000, ge=1)

    # Proxies (addresses or networks, comma-separated, or *) whose X-Forwarded-For and
    # X-Forwarded-Proto the API believes; empty: none, the connection's own address counts.
    forwarded_allow_ips: str = ""

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            if item != "*":
                try:
                    ipaddress.ip_network(item)  # strict, as uvicorn reads it: 10.0.0.1/8 is an error here
                except ValueError:
                    raise ValueError("must be comma-separated IP addresses or networks (CIDR), or *") from None
        return value

    # Request budgets of the API, per credential and per API process (api/auth.py); 0 turns them off.
    api_rate_limit_per_s: int = Field(default=100, ge=0, le=1_000_000)
    api_rate_limit_burst: int = Field(default=200, ge=0, le=1_000_000)
    # Failed authentications a client address may make per minute before further failures get 429.
    auth_failures_per_min: int = Field(default=20, ge=0, le=1_000_000)

    # Audit, access log and quotas.
    access_log: bool = Field(default=True, description="One line per API request on the hookline.access logger")
    # text: a line for people (development); json: one object a line for a log pipeline (core/logs.py).
    log_format: Literal["text", "json"] = "text"
    # Above what one tenant plausibly needs (the scale tests use 2,100), far below what would
    # make every event's fan-out a burden: a runaway script stops here with a 409.
    max_endpoints_per_app: int = Field(default=10_000, ge=1, le=1_000_000)

    # A forward proxy every delivery goes through (CONNECT), so receivers can allowlist its fixed
    # addresses; http://[user:password@]host:port. Secret: it may hold the proxy's credentials.
    egress_proxy: SecretStr | None = None

    @field_validator("egress_proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            url = urlsplit(value.get_secret_value())
            if url.scheme != "http" or not url.hostname or url.path not in ("", "/") or url.query or url.fragment:
                raise ValueError("must be an http:// URL of a proxy: http://[user:password@]host:port")
            url.port  # noqa: B018  (raises on a port out of range)
        return value

    # The subscriber portal (api/routes/portal.py): how long a portal link lives unless the request
    # says, and the address browsers reach the API at, for the links (default: the request's own).
    portal_access_ttl_s: int = Field(default=3600, ge=30, le=86400)
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

    # Endpoint health (activities/health.py): consecutive failed attempts that turn an endpoint
    # `failing`, how often a failing endpoint is probed, how long it may fail before it is disabled.
    breaker_failures: int = Field(default=10, ge=1, le=1_000_000)
    breaker_probe_s: float = Field(default=60.0, ge=1, le=86400)
    auto_disable_after_s: float = Field(default=432_000.0, ge=1, le=365 * 86400)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'hookline.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
