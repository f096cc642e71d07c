"""The renew service's eyes: one thread per namespace (or one for all) that lists and watches token
Secrets' **metadata** (labels and annotations carry what scheduling needs; no data crosses the wire),
resuming by resourceVersion and listing again on 410 Gone or after an outage."""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
from typing import Any

from spark_secrets.errors import KubernetesError, KubernetesGone
from spark_secrets.kube import KubeClient
from spark_secrets.renew.metrics import Metrics
from spark_secrets.tokensecret import TOKEN_SECRET_SELECTOR

log = logging.getLogger("spark_secrets.renew")

LISTING = "LISTING"  # a full list of one namespace begins
PAGE = "PAGE"  # one page of it
SYNC = "SYNC"  # the full list of one namespace is complete
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclasses.dataclass
class SecretEvent:
    kind: str  # LISTING, PAGE, SYNC, ADDED, MODIFIED or DELETED
    namespace: str | None
    objects: list[dict[str, Any]]


class SecretWatch:
    """Feeds :class:`SecretEvent` to ``events`` until :meth:`stop`; never ends on an API-server outage."""

    def __init__(self, kube: KubeClient, namespace: str | None, events: queue.Queue[SecretEvent], metrics: Metrics,
                 *, timeout_seconds: int = 60, page: int = 500) -> None:
        self.kube, self.namespace, self.events, self.metrics = kube, namespace, events, metrics
        self.timeout_seconds, self.page = timeout_seconds, page
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch-{namespace or 'all'}", daemon=True)

    def __repr__(self) -> str:
        return f"SecretWatch({self.namespace or 'all namespaces'})"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        backoff = 1.0
        resource_version: str | None = None
        where = self.namespace or "all namespaces"
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    self.events.put(SecretEvent(LISTING, self.namespace, []))
                    resource_version = self.kube.list_secret_metadata(
                        self.namespace, TOKEN_SECRET_SELECTOR,
                        lambda items: self.events.put(SecretEvent(PAGE, self.namespace, items)), self.page)
                    self.metrics.relists += 1
                    self.events.put(SecretEvent(SYNC, self.namespace, []))
                for event in self.kube.watch_secret_metadata(self.namespace, TOKEN_SECRET_SELECTOR, resource_version,
                                                             self.timeout_seconds):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            log.info("watch of %s expired (410 Gone): listing again", where)
                            resource_version = None
                            break
                        raise KubernetesError(f"watch error: {str(obj.get('message', ''))[:200]}")
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                    if kind in (ADDED, MODIFIED, DELETED):
                        self.events.put(SecretEvent(str(kind), self.namespace, [obj]))
                    if self._stop.is_set():
                        break
                backoff = 1.0
            except KubernetesGone:
                resource_version = None
            except KubernetesError as exc:
                backoff = self._failed(where, exc.problem, backoff)
            except Exception as exc:  # noqa: BLE001 - an API-server outage must not end the thread
                backoff = self._failed(where, type(exc).__name__, backoff)

    def _failed(self, where: str, what: str, backoff: float) -> float:
        log.warning("cannot list/watch token Secrets in %s (%s); retrying in %.0f s", where, what, backoff)
        self._stop.wait(backoff * random.uniform(0.8, 1.2))
        return min(backoff * 2, 30.0)
