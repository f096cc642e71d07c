"""NameNode failover, written once for everything that speaks to an HA filesystem's NameNodes.

As Hadoop's failover proxy does, the NameNodes of a set are tried in their configured order, the one
that answered last first; one that is standby or cannot be reached is skipped (its caller raises
:class:`NameNodeUnavailable` for it), and when none answers the error names each one's reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

from spark_secrets.logs import get_logger
from spark_secrets.errors import NameNodeUnavailable
from spark_secrets.hadoop.conf import FileSystemTarget, HadoopConf, resolve_filesystem
from spark_secrets.hadoop.identifier import SWEBHDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.hadoop.token import Token

log = get_logger(__name__)  # logging itself only where a record goes (spark_secrets.logs)
T = TypeVar("T")


class Failover:
    """Remembers, per set of NameNodes, the one that answered last, and asks it first next time.

    One object lives as long as its owner (a token provider, a runtime client), so the memory is
    that owner's, not the process's; calls from several threads are safe."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Failover({len(self._last)} set(s) of NameNodes)"

    def last(self, urls: Sequence[str]) -> str:
        """The NameNode of ``urls`` that answered last (the first configured one before any did)."""
        with self._lock:
            return self._last.get(tuple(urls), urls[0])

    def call(self, urls: Sequence[str], where: str, op: str, attempt: Callable[[str], T]) -> T:
        """``attempt(url)`` on each NameNode in turn until one does not raise :class:`NameNodeUnavailable`.

        ``where`` names the filesystem in messages; the error raised when none answers lists each
        NameNode's host and why it was skipped."""
        key = tuple(urls)
        last = self.last(key)
        skipped: list[str] = []
        for url in sorted(key, key=lambda u: u != last):
            host = urlsplit(url).netloc
            try:
                result = attempt(url)
            except NameNodeUnavailable as exc:
                log.info("skipping NameNode %s of %s for %s: %s", host, where, op, exc.problem)
                skipped.append(f"{host}: {exc.problem.split(': ', 1)[-1]}")
                continue
            with self._lock:
                self._last[key] = url
            return result
        raise NameNodeUnavailable(f"no NameNode of {where} answered {op} ({'; '.join(skipped)})",
                                  "check that an active NameNode is running and reachable")


def namenodes_for(token: Token, conf: HadoopConf | None = None) -> FileSystemTarget:
    """The NameNodes that can renew or cancel ``token``, found from its kind and service.

    ``ha-<scheme>:<ns>`` names a nameservice in the Hadoop configuration; a WebHDFS token's
    ``ip:port`` is the HTTP address itself; an RPC ``ip:port`` is looked up in the configuration.
    """
    service = token.service
    if service.startswith("ha-") and ":" in service:
        scheme, _, ns = service[3:].partition(":")
        return resolve_filesystem(f"{scheme}://{ns}", conf)
    if token.kind == SWEBHDFS_DELEGATION_KIND:
        return resolve_filesystem(f"https://{service}", conf)
    if token.kind == WEBHDFS_DELEGATION_KIND:
        return resolve_filesystem(f"http://{service}", conf)
    return resolve_filesystem(f"hdfs://{service}", conf)
