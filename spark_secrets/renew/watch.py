"""The renew service's eyes: one thread per namespace (or one for all) that lists and watches token
Secrets' **metadata** (labels and annotations carry what scheduling needs; no data crosses the wire),
resuming by resourceVersion and listing again on 410 Gone or after an outage.

A list is a *streaming list* where the API server has one (``WatchList``, on by default since
Kubernetes 1.34): one request whose answer the server streams from its watch cache, then goes on as
the watch. Elsewhere (1.33, or the feature off) it falls back to a paged list from etcd, then a watch.

A list's pages wait for the main loop: at most :data:`PAGES_IN_FLIGHT` handed over and not yet taken in
(:meth:`SecretEvent.taken`). A list arrives faster than the service takes it in, and every decoded page
waiting in the queue is memory that stays in the process's arenas once freed, between the Secrets kept
(three times what the view itself needs at 100,000 Secrets, measured with ``benchmarks/renewer_start.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
from collections.abc import Callable
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
#: Pages of a list handed to the main loop and not yet taken in, at most.
PAGES_IN_FLIGHT = 2
#: Secrets per page of a streaming list (a paged list's pages are the server's, of ``page`` each): small, so that
#: little waits decoded.
STREAM_PAGE = 100
#: How long a page waits for room before it is handed over anyway (a main loop busy acting must not stall a
#: list for good; the bound is for memory, not correctness).
PAGE_WAIT_S = 10.0


@dataclasses.dataclass
class SecretEvent:
    kind: str  # LISTING, PAGE, SYNC, ADDED, MODIFIED or DELETED
    namespace: str | None
    objects: list[dict[str, Any]]
    #: Called once the main loop took a page in (frees its place among :data:`PAGES_IN_FLIGHT`).
    release: Callable[[], None] | None = None

    def taken(self) -> None:
        if self.release is not None:
            self.release()
            self.release = None


class SecretWatch:
    """Feeds :class:`SecretEvent` to ``events`` until :meth:`stop`; never ends on an API-server outage."""

    def __init__(self, kube: KubeClient, namespace: str | None, events: queue.Queue[SecretEvent], metrics: Metrics,
                 *, timeout_seconds: int = 60, page: int = 500, streaming: bool = True,
                 selector: str = TOKEN_SECRET_SELECTOR, stream_page: int = STREAM_PAGE,
                 page_wait: float = PAGE_WAIT_S) -> None:
        self.kube, self.namespace, self.events, self.metrics = kube, namespace, events, metrics
        self.selector = selector
        self.timeout_seconds, self.page, self.stream_page, self.page_wait = timeout_seconds, page, stream_page, page_wait
        self.streaming = streaming  # False once the API server refused a streaming list
        self._room = threading.BoundedSemaphore(PAGES_IN_FLIGHT)
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
            self._hand_over, self.page)
        self.metrics.relists += 1
        self.events.put(SecretEvent(SYNC, self.namespace, []))
        return resource_version

    def _hand_over(self, items: list[dict[str, Any]]) -> None:
        """One page of a list, once fewer than :data:`PAGES_IN_FLIGHT` wait (or after :data:`PAGE_WAIT_S`)."""
        waited = self._room.acquire(timeout=self.page_wait)
        self.events.put(SecretEvent(PAGE, self.namespace, items, self._room.release if waited else None))

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
            meta.pop("managedFields", None)  # the largest part of an event, and nothing the service reads
            if listing:
                if kind == ADDED:
                    batch.append(obj)
                    if len(batch) >= self.stream_page:
                        self._hand_over(batch)
                        batch = []
                elif kind == BOOKMARK and (meta.get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                    if batch:
                        self._hand_over(batch)
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
