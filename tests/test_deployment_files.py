"""The Dockerfile and the compose files, checked statically (no container engine runs in the tests):
every service runs a real `hookline` command, every HOOKLINE_* variable is a real setting, the
image runs as a non-root user, and the processes start in the order the schema check needs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.exceptions import TyperException

from hookline.cli import app
from hookline.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILES = ["docker-compose.temporal.yml", "docker-compose.production.yml"]
SETTINGS = {f"HOOKLINE_{name.upper()}" for name in Settings.model_fields}


def compose(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())  # resolves the YAML anchors and merge keys


def all_services() -> dict[str, dict[str, Any]]:
    """The production file's services with those of the files it includes, as compose merges them."""
    production = compose("docker-compose.production.yml")
    services: dict[str, dict[str, Any]] = {}
    for included in production.get("include", []):
        services.update(compose(included)["services"])
    services.update(production["services"])
    return services


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def hookline_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in all_services().items() if "build" in s or str(s.get("image", "")).startswith("hookline")}


def check_command(args: list[str]) -> None:
    """Parse `hookline <args>` as the CLI would, without running it: an unknown command or option fails."""
    group: Any = typer.main.get_command(app)
    assert args and args[0] in group.commands, f"`hookline {' '.join(args)}`: no such command"
    command = group.commands[args[0]]
    command.make_context(args[0], list(args[1:]))


def environment_names(environment: Any) -> set[str]:
    if isinstance(environment, dict):
        return set(environment)
    return {item.split("=", 1)[0] for item in environment or []}


def test_the_image_runs_hookline_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The user is the one the stage creates, and the last USER comes after every RUN (nothing runs as root later).
    assert any(op == "RUN" and "useradd" in args and user in args for op, args in stage)
    assert max(i for i, (op, _) in enumerate(stage) if op == "USER") > max(i for i, (op, _) in enumerate(stage) if op == "RUN")
    [entrypoint] = [json.loads(args) for op, args in stage if op == "ENTRYPOINT"]
    assert entrypoint == ["hookline"]
    [cmd] = [json.loads(args) for op, args in stage if op == "CMD"]
    check_command(cmd)
    port = Settings.model_fields["port"].default
    assert [args for op, args in stage if op == "EXPOSE"] == [str(port)]


def test_every_hookline_variable_in_the_deployment_files_is_a_real_setting() -> None:
    found: set[str] = set()
    for name in COMPOSE_FILES:
        text = (ROOT / name).read_text()
        found |= set(re.findall(r"\bHOOKLINE_[A-Z0-9_]+", text))
    for op, args in dockerfile_instructions():
        if op == "ENV":
            found |= {word.split("=", 1)[0] for word in shlex.split(args)}
    found = {v for v in found if v.startswith("HOOKLINE_")}
    assert found, "no HOOKLINE_* variable found: the parsing is broken"
    assert found - SETTINGS == set(), f"not settings of core/config.py: {sorted(found - SETTINGS)}"
    for service in hookline_services().values():
        assert environment_names(service.get("environment")) <= SETTINGS


def test_every_service_of_the_image_runs_a_real_hookline_command() -> None:
    services = hookline_services()
    commands = {name: s["command"] for name, s in services.items()}
    assert {c[0] for c in commands.values()} >= {"migrate", "api", "worker", "setup-temporal"}
    for command in commands.values():
        check_command(command)
    # The check itself refuses what the CLI refuses.
    for bad in (["serve"], ["api", "--no-such-flag"], ["worker", "extra"]):
        with pytest.raises((AssertionError, TyperException)):  # typer's UsageError is one
            check_command(bad)


def test_the_production_shape_is_complete_and_starts_in_order() -> None:
    services = all_services()
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on {dependency}, which no file defines"
    hookline = hookline_services()
    by_command = {s["command"][0]: name for name, s in hookline.items()}
    migrate = by_command["migrate"]
    for command in ("api", "worker"):
        service = hookline[by_command[command]]
        # The API and the workers refuse a schema that is behind: the migration runs to completion first.
        assert service["depends_on"][migrate]["condition"] == "service_completed_successfully"
        assert service.get("deploy", {}).get("replicas", 1) >= 2, f"one {command} process is no production shape"
    assert hookline[migrate]["depends_on"]["hookline-postgresql"]["condition"] == "service_healthy"
    images = {str(s.get("image", "")).split(":")[0] for s in services.values()}
    assert {"temporalio/server", "temporalio/ui", "postgres"} <= images
    # Every service of the image talks to the same database and Temporal.
    urls = {s["environment"]["HOOKLINE_DATABASE_URL"] for s in hookline.values()}
    assert len(urls) == 1 and "@hookline-postgresql:" in urls.pop()
    assert {s["environment"]["HOOKLINE_TEMPORAL_ADDRESS"] for s in hookline.values()} == {"temporal:7233"}


def test_every_published_port_is_on_loopback() -> None:
    for name, service in all_services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_the_build_context_keeps_what_the_image_needs() -> None:
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "core", "store", "api", "cli.py"):
        assert needed not in ignored
    assert ".env" in ignored and ".git" in ignored  # no secrets or history in the image


@pytest.mark.stack  # starts the process, which refuses the setting
@pytest.mark.parametrize("value", ["nginx.internal", "10.0.0.1/8", "127.0.0.1;rm -rf /", "300.1.1.1"])
def test_a_malformed_trusted_proxy_list_stops_the_api_with_its_name(value: str, tmp_path: Path) -> None:
    """HOOKLINE_FORWARDED_ALLOW_IPS, which the gateway setup asks for: a typo must not trust the wrong clients."""
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "HOOKLINE_DATA_DIR": str(tmp_path), "HOOKLINE_FORWARDED_ALLOW_IPS": value}
    result = subprocess.run([sys.executable, "-m", "hookline.cli", "api"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "forwarded_allow_ips" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "hookline.db").exists()


def test_the_compose_temporal_turns_fairness_on_for_hooklines_task_queue() -> None:
    """Fairness keys change nothing until the server turns fairness on (docs/operations.md)."""
    temporal = compose("docker-compose.temporal.yml")["services"]["temporal"]
    [mount] = [v for v in temporal["volumes"] if "dynamicconfig" in v]
    source, target, _mode = mount.split(":")
    assert target == temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    config = yaml.safe_load((ROOT / source).read_text())
    [rule] = config["matching.enableFairness"]
    assert rule["value"] is True
    defaults = Settings.model_fields
    assert rule["constraints"] == {
        "namespace": defaults["temporal_namespace"].default, "taskQueueName": defaults["task_queue"].default
    }
