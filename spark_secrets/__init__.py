"""spark-secrets: Kerberized HDFS delegation tokens for Apache Spark on Kubernetes, without keytabs in jobs.

What users import from here is the codec of Hadoop's token files and the error tree; the submission
side is :mod:`submit_steps` (``configure`` for notebooks, ``Submission``), the renew service
:mod:`spark_secrets.renew`. Everything is imported on first use, so ``import spark_secrets`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_EXPORTS = {
    "Credentials": "spark_secrets.hadoop.credentials",
    "Token": "spark_secrets.hadoop.token",
    "DelegationTokenIdentifier": "spark_secrets.hadoop.identifier",
    "SparkSecretsError": "spark_secrets.errors",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spark_secrets' has no attribute {name!r}")
