"""The renew service's eyes: one thread per namespace (or one for all) that lists and watches token
Secrets' **metadata** (labels and annotations carry what scheduling needs; no data crosses the wire),
resuming by resourceVersion and listing again on 410 Gone or after an outage.

A list is a *streaming list* where the API server has one (``WatchList``, on by default since
Kubernetes 1.34): one request whose answer the server streams from its watch cache, then goes on as
the watch. Elsewhere (1.33, or the feature off) it falls back to a paged list from etcd, then a watch.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
from typing import Any

from spark_secrets.errors import KubernetesError, KubernetesGone, KubernetesInvalid
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.metrics import Metrics
from spark_secrets.secrets.tokensecret import TOKEN_SECRET_SELECTOR

log = logging.getLogger("spark_secrets.renew")

LISTING = "LISTING"  # a full list of one namespace begins
PAGE = "PAGE"  # one page of it
SYNC = "SYNC"  # the full list of one namespace is complete
ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
#: Marks the bookmark that ends a streaming list's initial events.
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclasses.dataclass
class SecretEvent:
    kind: str  # LISTING, PAGE, SYNC, ADDED, MODIFIED or DELETED
    namespace: str | None
    objects: list[dict[str, Any]]


class SecretWatch:
    """Feeds :class:`SecretEvent` to ``events`` until :meth:`stop`; never ends on an API-server outage."""

    def __init__(self, kube: KubeClient, namespace: str | None, events: queue.Queue[SecretEvent], metrics: Metrics,
                 *, timeout_seconds: int = 60, page: int = 500, streaming: bool = True,
                 selector: str = TOKEN_SECRET_SELECTOR) -> None:
        self.kube, self.namespace, self.events, self.metrics = kube, namespace, events, metrics
        self.selector = selector
        self.timeout_seconds, self.page = timeout_seconds, page
        self.streaming = streaming  # False once the API server refused a streaming list
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
                if resource_version is None and self.streaming:
                    # the stream stays open as the watch: give it the time a long list may need
                    resource_version = self._follow(None, self.timeout_seconds * 10)
                elif resource_version is None:
                    resource_version = self._paged_list()
                else:
                    resource_version = self._follow(resource_version, self.timeout_seconds)
                backoff = 1.0
            except KubernetesInvalid as exc:
                if resource_version is None and self.streaming:
                    log.info("the API server of %s has no streaming list (%s): listing in pages", where, exc.problem)
                    self.streaming = False
                else:
                    backoff = self._failed(where, exc.problem, backoff)
            except KubernetesGone:
                resource_version = None
            except KubernetesError as exc:
                backoff = self._failed(where, exc.problem, backoff)
            except Exception as exc:  # noqa: BLE001 - an API-server outage must not end the thread
                backoff = self._failed(where, type(exc).__name__, backoff)

    def _paged_list(self) -> str:
        self.events.put(SecretEvent(LISTING, self.namespace, []))
        resource_version = self.kube.list_secret_metadata(
            self.namespace, self.selector,
            lambda items: self.events.put(SecretEvent(PAGE, self.namespace, items)), self.page)
        self.metrics.relists += 1
        self.events.put(SecretEvent(SYNC, self.namespace, []))
        return resource_version

    def _follow(self, resource_version: str | None, timeout_seconds: int) -> str | None:
        """Hands over the events of one watch request; returns the resourceVersion to resume from, or
        ``None`` to list again (410 Gone, or a streaming list cut off before its end)."""
        listing = began = resource_version is None
        batch: list[dict[str, Any]] = []
        for event in self.kube.watch_secret_metadata(self.namespace, self.selector, resource_version,
                                                     timeout_seconds):
            if began:  # announced once the server answered (a refused streaming list announces nothing)
                self.events.put(SecretEvent(LISTING, self.namespace, []))
                began = False
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    log.info("watch of %s expired (410 Gone): listing again", self.namespace or "all namespaces")
                    return None
                raise KubernetesError(f"watch error: {str(obj.get('message', ''))[:200]}")
            meta = obj.get("metadata") or {}
            if listing:
                if kind == ADDED:
                    batch.append(obj)
                    if len(batch) >= self.page:
                        self.events.put(SecretEvent(PAGE, self.namespace, batch))
                        batch = []
                elif kind == BOOKMARK and (meta.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                    if batch:
                        self.events.put(SecretEvent(PAGE, self.namespace, batch))
                    self.metrics.relists += 1
                    self.events.put(SecretEvent(SYNC, self.namespace, []))
                    listing = False
                    resource_version = meta.get("resourceVersion")
            else:
                resource_version = meta.get("resourceVersion", resource_version)
                if kind in (ADDED, MODIFIED, DELETED):
                    self.events.put(SecretEvent(str(kind), self.namespace, [obj]))
            if self._stop.is_set():
                break
        return None if listing else resource_version

    def _failed(self, where: str, what: str, backoff: float) -> float:
        log.warning("cannot list/watch token Secrets in %s (%s); retrying in %.0f s", where, what, backoff)
        self._stop.wait(backoff * random.uniform(0.8, 1.2))
        return min(backoff * 2, 30.0)
