"""Hookline's version, from the installed package metadata (pyproject.toml is the one source)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("hookline")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"
