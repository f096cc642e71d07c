"""``spark-secrets doctor``: before submitting, every check a job's HDFS access depends on, as lines a
person reads (✔, !, ✗ with the fix) or JSON a machine parses.

The names below are imported on first use: ``spark-secrets status`` imports :mod:`.status` of this package,
which reads Secrets' metadata only and needs none of the examination's Kerberos, WebHDFS or Thrift clients."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spark_secrets.check.examination import examine
    from spark_secrets.check.report import FAIL, OK, WARN, Check, Report

_EXPORTS = {"examine": "spark_secrets.check.examination", **dict.fromkeys(
    ("FAIL", "OK", "WARN", "Check", "Report"), "spark_secrets.check.report")}
__all__ = ["FAIL", "OK", "WARN", "Check", "Report", "examine"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spark_secrets.check' has no attribute {name!r}")
