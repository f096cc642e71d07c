"""What a driver that runs here (client mode, notebooks) gets instead of mounts: a private token file,
and the job's secrets as private files and environment variables."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spark_secrets.hadoop.credentials import WRITABLE, Credentials
from spark_secrets.secrets.jobsecret import ENV_DIR
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY


def private_token_file(creds: Credentials, version: int = WRITABLE) -> Path:
    """Write ``creds`` to a new 0600 file in a new 0700 directory, removed when this process exits."""
    directory = Path(tempfile.mkdtemp(prefix="spark-secrets-"))
    atexit.register(shutil.rmtree, directory, True)
    return creds.save(directory / DEFAULT_TOKEN_KEY, version=version)


@dataclass(frozen=True)
class LocalSecrets:
    """What a driver on this machine gets instead of mounts: files and env values (``repr`` hides them)."""

    files: Mapping[str, bytes] = field(repr=False)
    env: Mapping[str, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return f"LocalSecrets(files={sorted(self.files)}, env={sorted(self.env)})"

    def materialize(self) -> dict[str, str]:
        """Writes the files into a new 0700 directory (0600 each, removed at exit); returns the env a local
        driver needs: ``SPARK_SECRETS_DIR`` and each env secret."""
        directory = Path(tempfile.mkdtemp(prefix="spark-secrets-job-"))
        atexit.register(shutil.rmtree, directory, True)
        for name, value in self.files.items():
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(value)
        env = {ENV_DIR: str(directory)}
        env.update({var: value.decode("utf-8", errors="replace") for var, value in self.env.items()})
        return env
