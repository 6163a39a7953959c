"""ruff and mypy as part of the test run, so CI (README's pytest command) fails on a lint or type error.

Both read their configuration from pyproject.toml. mypy runs from a scratch directory in which
`hookline` links to the repository root: the root is the package `hookline` (see pyproject.toml,
[tool.setuptools]), which mypy cannot see through the editable install's import hook.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def linked_root(tmp_path: Path) -> Path:
    """A directory holding `hookline`, a link to the repository root."""
    (tmp_path / "hookline").symlink_to(ROOT, target_is_directory=True)
    return tmp_path


def test_ruff_finds_nothing() -> None:
    result = run(["ruff", "check", "--no-cache", "."], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    result = run(["mypy", "--config-file", str(ROOT / "pyproject.toml")], cwd=linked_root(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


# Calls a workflow must not make; each alone in a file under workflows/ must be reported.
NONDETERMINISTIC = {
    "time.time()": "import time\n\nstarted = time.time()\n",
    "time.sleep()": "import time\n\ntime.sleep(1)\n",
    "datetime.now()": "from datetime import datetime\n\nnow = datetime.now()\n",
    "random": "import random\n\npick = random.random()\n",
    "uuid.uuid4()": "import uuid\n\nrequest_id = uuid.uuid4()\n",
    "asyncio.sleep()": "import asyncio\n\n\nasync def wait() -> None:\n    await asyncio.sleep(1)\n",
    "open()": "text = open('settings.json').read()\n",
    "pathlib": "from pathlib import Path\n\ntext = Path('settings.json').read_text()\n",
    "httpx": "import httpx\n\nhttpx.get('http://127.0.0.1/')\n",
}


def project_copy(tmp_path: Path) -> Path:
    """The lint configuration and an empty workflows/ and activities/, to drop a module into."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "workflows").mkdir()
    (tmp_path / "activities").mkdir()
    return tmp_path


@pytest.mark.parametrize("call", sorted(NONDETERMINISTIC))
def test_ruff_bans_clocks_randomness_and_io_in_workflows(tmp_path: Path, call: str) -> None:
    copy = project_copy(tmp_path)
    source = NONDETERMINISTIC[call]
    (copy / "workflows" / "clock.py").write_text(source)
    (copy / "activities" / "clock.py").write_text(source)  # the same code is fine in an activity

    result = run(["ruff", "check", "--no-cache", "--output-format", "concise", "."], cwd=copy)

    assert result.returncode == 1, result.stdout + result.stderr
    findings = [line for line in result.stdout.splitlines() if ": TID251 " in line or ": PTH123 " in line]
    assert findings, result.stdout + result.stderr
    assert all(line.startswith("workflows/clock.py:") for line in findings), result.stdout


def test_the_workflows_keep_the_ban_in_force(tmp_path: Path) -> None:
    """The real workflow modules pass only because the ban is honoured, not because it is off."""
    copy = project_copy(tmp_path)
    for module in (ROOT / "workflows").glob("*.py"):
        shutil.copy(module, copy / "workflows" / module.name)
    clean = run(["ruff", "check", "--no-cache", "--select", "TID251,PTH123", "."], cwd=copy)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    event = copy / "workflows" / "event.py"
    event.write_text(event.read_text() + "\n\ndef _stamp() -> float:\n    import time\n\n    return time.time()\n")
    dirty = run(
        ["ruff", "check", "--no-cache", "--select", "TID251,PTH123", "--output-format", "concise", "."], cwd=copy
    )
    assert dirty.returncode == 1 and "workflows/event.py:" in dirty.stdout, dirty.stdout + dirty.stderr
