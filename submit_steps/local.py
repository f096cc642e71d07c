"""A private local token file for a driver that runs here (client mode, notebooks)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from spark_secrets.hadoop.credentials import WRITABLE, Credentials
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY


def private_token_file(creds: Credentials, version: int = WRITABLE) -> Path:
    """Write ``creds`` to a new 0600 file in a new 0700 directory, removed when this process exits."""
    directory = Path(tempfile.mkdtemp(prefix="spark-secrets-"))
    atexit.register(shutil.rmtree, directory, True)
    return creds.save(directory / DEFAULT_TOKEN_KEY, version=version)
