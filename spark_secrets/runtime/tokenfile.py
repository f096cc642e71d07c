"""The job's token file, re-read when it changes, and the token in it for one filesystem.

A job's token file is replaced while the job runs: the renew service re-issues tokens into the token
Secret and kubelet swaps the mounted file atomically (a ``..data`` symlink moved to a new directory),
and a client-mode driver's private file is rewritten the same way (temp file and rename). Every use
stats the path (following symlinks), and the file is read again when its device, inode, mtime
or size changed, and at least every ``recheck`` seconds (then compared by content), so a swap is seen
at the next request. A file that is missing or unreadable for a moment while it is replaced keeps the
last good tokens in use (logged once); only the first read has to succeed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import ConfigError, MissingTokenError, TokenFormatError
from spark_secrets.hadoop.conf import FileSystemTarget, token_service_address
from spark_secrets.hadoop.identifier import HDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.hadoop.token import Token

log = logging.getLogger(__name__)

TOKEN_FILE_ENV = "HADOOP_TOKEN_FILE_LOCATION"


def token_file_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$HADOOP_TOKEN_FILE_LOCATION`` (executors, and a client-mode driver's private file)."""
    chosen = path if path is not None else os.environ.get(TOKEN_FILE_ENV)
    if not chosen:
        raise ConfigError(f"no token file: {TOKEN_FILE_ENV} is not set",
                          "run inside a job submitted with spark-secrets, or pass token_file=")
    return Path(chosen)


@dataclass(frozen=True)
class TokenWanted:
    """The token services a filesystem's WebHDFS token may be stored under, best first.

    The WebHDFS (or SWebHDFS) token under ``ha-<scheme>:<ns>`` or a NameNode's HTTP ``ip:port``, as
    :func:`spark_secrets.tokens.fetcher.obtain_tokens` stores it; failing that the ``HDFS_DELEGATION_TOKEN``
    under the RPC service (``ha-hdfs:<ns>`` or ``ip:port``), which is all a token file written by
    Spark's own token manager holds: the NameNode checks identifier and password, not the kind.
    """

    uri: str
    web_kind: str
    web_services: tuple[str, ...]
    rpc_services: tuple[str, ...]

    @classmethod
    def of(cls, target: FileSystemTarget) -> TokenWanted:
        kind = SWEBHDFS_DELEGATION_KIND if target.https else WEBHDFS_DELEGATION_KIND
        if target.nameservice:
            return cls(target.uri, kind, (f"ha-{target.web_scheme}:{target.nameservice}",),
                       (f"ha-hdfs:{target.nameservice}",))
        web = tuple(dict.fromkeys(token_service_address(nn.http_url) for nn in target.namenodes))
        return cls(target.uri, kind, web, (target.rpc_service,) if target.rpc_service else ())

    @property
    def services(self) -> tuple[str, ...]:
        return self.web_services + self.rpc_services

    def pick(self, creds: Credentials) -> Token | None:
        by_service: dict[str, list[Token]] = {}
        for token in creds:
            by_service.setdefault(token.service, []).append(token)
        for service in self.web_services:
            for token in by_service.get(service, []):
                if token.kind in (WEBHDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND):
                    return token
        for service in self.rpc_services:
            for token in by_service.get(service, []):
                if token.kind == HDFS_DELEGATION_KIND:
                    return token
        return None


class TokenFile:
    """A Hadoop token file that may be replaced at any time; thread-safe."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, recheck: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = token_file_path(path)
        self.recheck = recheck
        self._clock = clock
        self._lock = threading.Lock()
        self._stat: tuple[int, int, int, int] | None = None
        self._digest = b""
        self._read_at = 0.0
        self._creds: Credentials | None = None
        self._complained = False
        #: Bumped each time the file's tokens change (a renewal or re-issue swapped it).
        self.generation = 0

    def __repr__(self) -> str:
        return f"TokenFile({str(self.path)!r}, generation={self.generation})"

    def credentials(self, *, force: bool = False) -> Credentials:
        """The file's tokens as they are now; read again only when it changed (or ``force``)."""
        with self._lock:
            try:
                st = os.stat(self.path)
                key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
                due = force or self._creds is None or key != self._stat or \
                    self._clock() - self._read_at >= self.recheck
                if due:
                    self._read(key)
            except (OSError, TokenFormatError) as exc:
                if self._creds is None:
                    if isinstance(exc, TokenFormatError):
                        raise
                    raise TokenFormatError(f"cannot read token file {self.path}: {exc.strerror or exc}") from None
                if not self._complained:
                    log.warning("token file %s cannot be read now (%s); going on with the tokens read before",
                                self.path, exc)
                    self._complained = True
            assert self._creds is not None
            return self._creds

    def _read(self, key: tuple[int, int, int, int]) -> None:
        data = self.path.read_bytes()
        digest = hashlib.sha256(data).digest()
        self._read_at = self._clock()
        self._stat = key
        if digest == self._digest and self._creds is not None:
            return
        try:
            creds = Credentials.from_bytes(data)
        except TokenFormatError as exc:
            raise TokenFormatError(f"token file {self.path}: {exc.problem}", exc.fix) from None
        if self._creds is not None:
            log.info("token file %s changed: %d token(s) now", self.path, len(creds))
        self._creds, self._digest, self._complained = creds, digest, False
        self.generation += 1

    def token_for(self, wanted: TokenWanted, *, force: bool = False) -> Token:
        """The current token for a filesystem, or :class:`MissingTokenError` naming what the file holds."""
        creds = self.credentials(force=force)
        token = wanted.pick(creds)
        if token is None:
            present = ", ".join(f"{t.service} ({t.kind})" for t in creds) or "no tokens at all"
            raise MissingTokenError(
                f"token file {self.path} holds no delegation token for {wanted.uri} (looked for services "
                f"{', '.join(wanted.services) or '(none)'}; present: {present})",
                "add the filesystem to spark.secrets.hadoop.filesystems when submitting the job")
        return token
