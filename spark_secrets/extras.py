"""Optional dependencies (setup.cfg's extras), imported on first use: a missing one becomes one line
naming the extra to install, and nothing else is swallowed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from spark_secrets.errors import ConfigError


def install_line(extra: str) -> str:
    return f"pip install 'spark-secrets[{extra}]'"


def load(module: str, what: str, extra: str, provided: Mapping[str, str]) -> ModuleType:
    """``module`` imported; when a top-level module of ``provided`` (name → what a user would recognise)
    is missing, :class:`ConfigError` "``what`` needs <it>" with the pip line of ``extra``. Any other import
    failure (a broken installation, a bug) propagates as it is."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").partition(".")[0]
        if root not in provided:
            raise
        raise ConfigError(f"{what} needs {provided[root]}, which is not installed", install_line(extra)) from None
