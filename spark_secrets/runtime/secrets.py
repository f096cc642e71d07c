"""The job's own secrets, for Python code in the driver and in executors' Python workers (UDFs).

``secret("name")`` reads the file ``<name>`` of the job-secrets directory (``SPARK_SECRETS_DIR``, a Secret
volume in pods, a private 0600 directory for a driver on the submitter's machine), or the path a
``k8s:`` reference was mounted at. Files are read at each call, so a value rotated while the job runs
(kubelet swaps the volume's files) is seen by the next call; :func:`fresh` and :func:`on_change` make
that explicit. Env secrets (``spark.secrets.env.*``) are plain ``os.environ``: fixed when the process starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from spark_secrets.errors import ConfigError
from spark_secrets.secrets.jobsecret import ENV_DIR, ENV_FILES, decode_files

DEFAULT_DIR = "/mnt/secrets/spark-secrets"


class MissingSecretError(ConfigError):
    """The job has no secret by that name (it was not declared, or its file is not there)."""


def secret_path(name: str) -> Path:
    """Where the secret ``name`` is in this container or process."""
    mounted = decode_files(os.environ.get(ENV_FILES, ""))
    if name in mounted:
        return Path(mounted[name])
    if not name or "/" in name or name.startswith("."):
        raise MissingSecretError(f"{name!r} is not a job secret's name", "give the <name> of spark.secrets.file.<name>")
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR) / name


def secret_bytes(name: str) -> bytes:
    """The secret's current value as bytes."""
    path = secret_path(name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MissingSecretError(f"the job has no secret {name!r} (no file {path})",
                                 f"declare it with spark.secrets.file.{name}=<reference>") from None
    except PermissionError:
        raise MissingSecretError(f"the job's secret {name!r} at {path} is not readable by this user",
                                 "run the containers as the image's user, or as the pod's fsGroup") from None


def secret(name: str) -> str:
    """The secret's current value as text (UTF-8)."""
    return secret_bytes(name).decode("utf-8")


class FreshSecret:
    """A view that re-reads the file whenever it changed (kubelet's swap gives it a new inode)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = secret_path(name)
        self._stamp: tuple[int, int, int] | None = None
        self._value = b""
        self.version = 0  # how many distinct values this view has seen

    def __repr__(self) -> str:
        return f"FreshSecret({self.name!r}, path={str(self.path)!r}, version={self.version})"

    def changed(self) -> bool:
        """Re-reads if the file changed; True when the value differs from the last one seen."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False  # mid-swap or not projected yet: keep the last value
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        value = secret_bytes(self.name)
        self._stamp = stamp
        if value == self._value and self.version:
            return False
        self._value = value
        self.version += 1
        return True

    @property
    def bytes(self) -> bytes:
        self.changed()
        if not self.version:
            secret_bytes(self.name)  # raises the clear error when it does not exist
        return self._value

    @property
    def value(self) -> str:
        return self.bytes.decode("utf-8")


def fresh(name: str) -> FreshSecret:
    """A view of the secret ``name`` whose ``.value`` is always the current one."""
    view = FreshSecret(name)
    _ = view.bytes
    return view


class Subscription:
    """A daemon thread calling back on changes; ``stop()`` ends it."""

    def __init__(self, view: FreshSecret, callback: Callable[[str], None], interval: float) -> None:
        self.view = view
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(callback, interval), daemon=True,
                                        name=f"spark-secrets-watch-{view.name}")
        self._thread.start()

    def _run(self, callback: Callable[[str], None], interval: float) -> None:
        while not self._stop.wait(interval):
            if self.view.changed():
                callback(self.view.value)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def on_change(name: str, callback: Callable[[str], None], interval: float = 2.0) -> Subscription:
    """Calls ``callback(new value)`` when the secret ``name`` changes (checked every ``interval`` s)."""
    view = fresh(name)
    return Subscription(view, callback, interval)
