"""The servers this machine's user started, and their bearer tokens: kept where only that user reads them.

``connect()`` reuses a server found by its pod's labels only after checking, through the API, that the pod is the
user's and reading its bearer token back from its Secret. In a shared namespace (the ``controller`` layout) users
may create Secrets but read none, so neither check can be made there. A record of a pod this user created, keyed by
the pod's uid (which the API server assigns and no one chooses), is proof enough: a pod made by anyone else has
another uid, so a bearer token is only ever sent to the pod it was made for.

One 0600 file per server in a 0700 directory (``$XDG_STATE_HOME/spark-secrets/connect``, else
``~/.local/state/spark-secrets/connect``), named ``<namespace>_<pod uid>``; records of pods that are gone are
removed when the namespace is next looked at.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

_UID = re.compile(r"^[0-9a-f-]{8,64}$")


def default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "spark-secrets" / "connect"


class ServerRecords:
    """Records of the servers started from here. ``repr`` shows the directory only."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_dir()

    def __repr__(self) -> str:
        return f"ServerRecords({str(self.directory)!r})"

    def _path(self, namespace: str, uid: str) -> Path | None:
        return self.directory / f"{namespace}_{uid}" if _UID.match(uid) else None

    def save(self, namespace: str, uid: str, pod: str, token: str) -> None:
        """Record a server just created (its pod's uid from the API server's answer to the create)."""
        path = self._path(namespace, uid)
        if path is None:
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        part = path.with_name(path.name + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"pod": pod, "token": token}, out)
        os.replace(part, path)

    def token(self, namespace: str, uid: str, pod: str) -> str | None:
        """The bearer token recorded for the pod with ``uid`` (and that name), if this user started it from here."""
        path = self._path(namespace, uid)
        try:
            record = json.loads(path.read_text()) if path is not None else None
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("pod") != pod or not isinstance(record.get("token"), str):
            return None
        return str(record["token"])

    def forget_others(self, namespace: str, live: Iterable[str]) -> None:
        """Remove the namespace's records whose pods are not among the ``live`` uids."""
        keep = set(live)
        for path in self.directory.glob(f"{namespace}_*") if self.directory.is_dir() else ():
            if path.name.removeprefix(f"{namespace}_") not in keep:
                path.unlink(missing_ok=True)
