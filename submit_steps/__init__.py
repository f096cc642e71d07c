"""Submission steps: small classes that turn a Spark submission into one that carries delegation
tokens through a per-job Kubernetes Secret, as Spark's own ``deploy/k8s/features`` steps turn a
submission into pod specs.

The public entry points: :func:`configure` (a notebook's ``SparkSession.builder``), :class:`Submission`
(what ``spark-secrets submit`` and ``conf`` run) and :class:`SubmitStep` (the base of extra steps
named by ``spark.secrets.steps``). Imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "configure": "submit_steps.notebook",
    "Submission": "submit_steps.submission",
    "SubmitStep": "submit_steps.step",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'submit_steps' has no attribute {name!r}")
