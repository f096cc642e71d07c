"""The renew service's main loop: per-Secret scheduling; the actions (renew, re-issue, cancel) are :mod:`.actions`.

Stateless: everything it needs is in the Secrets' metadata, so a restart re-lists and misses
nothing. The watch threads (:mod:`.watch`) feed metadata-only events; the main thread keeps a
compact view of each Secret, acts on whatever is due, and reads a Secret's data only to act on it.
Writes carry the resourceVersion they were computed from, so a concurrent change gives 409 and the
action is recomputed from the newer object.

Nothing a Secret's writer controls is trusted (:mod:`.seal`, :mod:`.admission`): the service acts only
for the owner label the API server bound to the Secret's creator, only on tokens of that owner, and
re-issues or cancels only tokens it renewed itself (sealed on the Secret), never from what the bytes say.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import heapq
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from spark_secrets.errors import (KubernetesConflict, KubernetesNotFound, SparkSecretsError, TokenRefused,
                                  UnusableSecret)
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.actions import TokenActions
from spark_secrets.renew.admission import FIX as POLICY_FIX
from spark_secrets.renew.admission import OwnerPolicy
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.events import EventPoster
from spark_secrets.renew.grants import AccessGrants
from spark_secrets.renew.housekeeping import Housekeeper, Key
from spark_secrets.renew.kinds import TokenKind
from spark_secrets.renew.metrics import EXPIRY_SERIES, Metrics
from spark_secrets.renew.policy import REISSUE
from spark_secrets.renew.rotation import SecretRotator
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.standby import Standby
from spark_secrets.renew.watch import DELETED, LISTING, PAGE, SYNC, SecretEvent, SecretWatch
from spark_secrets.secrets.tokensecret import LABEL_OWNER, TokenSecret

log = logging.getLogger("spark_secrets.renew")

#: A Secret refused because no admission policy covers it is looked at again after this long (an admin
#: may bind the policy meanwhile); other refusals wait until the Secret changes.
POLICY_RETRY_MS = 15_000
#: The cyclic GC's first threshold while a list is in progress: what a list decodes is freed by reference counts,
#: so a collection every 700 allocations (the default) only walks a page in flight again and again.
LIST_GC_THRESHOLD = 50_000


class RenewService(TokenActions):
    """Tracks token Secrets in ``namespaces`` (None: all) and acts on them when due."""

    def __init__(self, config: ServiceConfig, kube: KubeClient, kinds: Sequence[TokenKind], *,
                 metrics: Metrics | None = None, events: EventPoster | None = None,
                 clock: Callable[[], float] = time.time, leader: Callable[[], bool] | None = None,
                 grants: AccessGrants | None = None, seal: Seal | None = None, owner_policy: OwnerPolicy | None = None,
                 rotator: SecretRotator | None = None) -> None:
        self.config = config
        #: Counts its API calls (:meth:`KubeClient.counting`) when the app made it so.
        self.kube = kube
        #: Signs what the service verified; a random key (nothing survives a restart) unless given one.
        self.seal = seal or Seal(os.urandom(32))
        #: Checks that the API server binds owner labels to their creators; None: not checked (tests only).
        self.owner_policy = owner_policy
        #: Who the service is, in the Secrets it writes (``acted-by``): its principal.
        self.principal = config.acted_by
        self.namespaces = list(config.namespaces) if config.namespaces else None
        self.policy = config.policy
        self.clock = clock
        #: Whether this replica may act now (a Lease); without one it always may.
        self.leader = leader or (lambda: True)
        self.kinds = list(kinds)
        self.metrics = metrics or Metrics()
        self.events = events or EventPoster(kube)
        self.secrets: dict[Key, TokenSecret] = {}
        self.housekeeper = Housekeeper(kube, self.secrets, self.metrics, report=self.events.post, now_ms=self._now,
                                       grants=grants, sweep_interval=config.sweep_interval,
                                       orphan_grace_ms=config.orphan_grace_ms)
        #: While not leading: renews (only) sealed tokens the leader let come close to lapsing.
        self.standby = Standby(kube, self.secrets, self.metrics, kind_of=self._kind, checked=self._checked,
                               bound=self._bound, track=self._track, ratio=lambda: self.policy.ratio, now_ms=self._now,
                               leading=lambda: self.leader())
        self._due: list[tuple[int, Key, str]] = []  # (due ms, key, resourceVersion it was computed from)
        self._backoff: dict[Key, int] = {}
        self._refused: dict[Key, tuple[str, str]] = {}  # Secret -> (resourceVersion, reason) last refused
        self._events: queue.Queue[SecretEvent] = queue.Queue()
        self._synced: set[str | None] = set()
        self._listing: dict[str | None, set[Key]] = {}  # keys seen so far by a list in progress, per namespace
        self._gc_threshold = gc.get_threshold()  # as it is when no list is in progress
        self._stop = threading.Event()
        self._watches: list[SecretWatch] = []
        self._nearest_at = 0.0
        #: Keeps job secrets' vault: values current (sharing the metrics and Events).
        self.rotator = rotator

    def __repr__(self) -> str:
        return f"RenewService(namespaces={self.namespaces or 'all'}, tracked={len(self.secrets)})"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        where: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for ns in where:
            watch = SecretWatch(self.kube, ns, self._events, self.metrics, timeout_seconds=self.config.watch_timeout)
            watch.start()
            self._watches.append(watch)
        if self.rotator is not None:
            self.rotator.start()

    def stop(self) -> None:
        self._stop.set()
        for watch in self._watches:
            watch.stop()
        if self.rotator is not None:
            self.rotator.stop()

    def run(self) -> None:
        """Until :meth:`stop`: take events, act on what is due."""
        self.start()
        while not self._stop.is_set():
            self.metrics.heartbeat = time.monotonic()
            wait = self._seconds_to_next_due()
            try:
                self.handle(self._events.get(timeout=min(max(wait, 0.05), 5.0)))
                while True:
                    self.handle(self._events.get_nowait())
            except queue.Empty:
                pass
            self.run_due()
            self.housekeeper.run()
            if self.rotator is not None:
                self.rotator.run()
            self._update_nearest()

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # -- events ----------------------------------------------------------------------------------
    def handle(self, event: SecretEvent) -> None:
        """Takes one event of a watch (:mod:`.watch`) into the service's view of the Secrets."""
        if event.kind == LISTING:  # a list in pages: LISTING, PAGE..., SYNC
            if not self._listing:
                gc.set_threshold(LIST_GC_THRESHOLD, *self._gc_threshold[1:])
            self._listing[event.namespace] = set()
        elif event.kind == PAGE:
            present = self._listing.setdefault(event.namespace, set())
            try:
                for obj in event.objects:
                    present.add(self._track(obj))
            finally:
                event.taken()
            # What a list adds lives on: kept out of the cyclic GC's passes until the list ends, which would
            # otherwise walk every Secret tracked so far again and again (a quarter of the start's CPU).
            gc.freeze()
        elif event.kind == SYNC:
            present = self._listing.pop(event.namespace, set())
            gone = [k for k in self.secrets if (event.namespace is None or k[0] == event.namespace) and k not in present]
            for key in gone:  # deleted while we were not watching: its tokens still need cancelling
                self._cancel(self.secrets.pop(key))
                self.housekeeper.revoke(key)
            self._synced.add(event.namespace)
            self.metrics.ready = len(self._synced) == len(self.namespaces or [None])
            if not self._listing:
                gc.set_threshold(*self._gc_threshold)
            gc.unfreeze()  # a cycle made meanwhile is freed by the next full collection
            _give_back_memory()  # a list of 100,000 leaves megabytes of freed pages behind
        elif event.kind == DELETED:
            meta = event.objects[0].get("metadata") or {}
            key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
            known = self.secrets.pop(key, None)
            try:
                last = self._checked(TokenSecret.from_metadata(event.objects[0]))
            except UnusableSecret:
                last = None
            # Cancel only tokens this service verified in this Secret (its seal): handles copied from
            # someone else's Secret must not make it cancel their tokens. A released (emptied) Secret
            # leaves the selection with its annotations gone: cancel what the service last knew it held.
            target = last if last is not None and last.verified else (known or last)
            if target is not None:
                self._cancel(target)  # which cancels nothing it never verified
            self.housekeeper.revoke(key)
            self._refused.pop(key, None)
        else:
            self._track(event.objects[0])
        self.metrics.tracked = len(self.secrets)

    def _track(self, obj: dict[str, Any]) -> Key:
        try:
            ts = self._checked(TokenSecret.from_metadata(obj))
        except UnusableSecret as exc:
            meta = obj.get("metadata") or {}
            key = (str(meta.get("namespace")), str(meta.get("name")))
            if key not in self.secrets or self.secrets[key].resource_version != meta.get("resourceVersion"):
                self.events.post(key, "SecretUnusable", exc.problem)
            self.secrets.pop(key, None)
            return key
        ts.filesystems = _shared(ts.filesystems)
        # The Secret's own (interned) strings, not the event's copies; one tuple for the view and the schedule.
        key = (ts.namespace, ts.name)
        known = self.secrets.pop(key, None)  # so that the view keeps this key, not an older equal one
        self.secrets[key] = ts
        self.housekeeper.tracked(key, known is None or known.uid != ts.uid)
        if known is None or known.resource_version != ts.resource_version:
            self._schedule(ts, key)
        return key

    def _checked(self, ts: TokenSecret) -> TokenSecret:
        """``ts`` with :attr:`~TokenSecret.verified` set from the seal (and, with data, the file matching it)."""
        ts.verified = self.seal.holds(ts) and (ts.credentials is None or ts.data_matches_handles)
        ts.seal = ""  # checked: the flag is all the service keeps (memory per Secret at 100,000 of them)
        self.rollover.check(ts)  # the outgoing tokens' own seal
        return ts

    def _schedule(self, ts: TokenSecret, key: Key | None = None) -> None:
        _, due = self.policy.next_action(ts, self._now())
        heapq.heappush(self._due, (due, key or (ts.namespace, ts.name), ts.resource_version))

    def _update_nearest(self) -> None:
        """The nearest expiry for /metrics: a pass over every Secret, so at most once a second (a
        pass per event would make a list of N Secrets cost N² at start), and not before the first list is
        complete (it would show a part, at the cost of passes over a growing view while the service starts)."""
        if self.metrics.ready and time.monotonic() - self._nearest_at >= 1.0:
            self._nearest_at = time.monotonic()
            earliest: dict[tuple[str, str], int] = {}
            for s in self.secrets.values():
                if s.expiry_ms and s.expiry_ms < earliest.get((s.namespace, s.app), 1 << 62):
                    earliest[(s.namespace, s.app)] = s.expiry_ms
            self.metrics.expiry_by_app = heapq.nsmallest(EXPIRY_SERIES, earliest.items(), key=lambda kv: kv[1])
            self.metrics.nearest_expiry_ms = self.metrics.expiry_by_app[0][1] if earliest else None

    def _seconds_to_next_due(self) -> float:
        """How long the loop may wait for events. A standby never pops its due heap (a past-due head would wake
        it every 50 ms): it waits for its own next check, but a second at most, so that once it holds the
        Lease it acts on what is overdue at once."""
        if not self.leader():
            return min(self.standby.next_check_in(), 1.0)
        return (self._due[0][0] - self._now()) / 1000 if self._due else 5.0

    # -- actions ---------------------------------------------------------------------------------
    def run_due(self) -> None:
        """Acts on every Secret whose action is due (as a standby: only what a late leader let come close)."""
        self.metrics.leader = self.leader()
        if not self.metrics.leader:
            self.standby.run()  # renews only what a late leader let come close to lapsing; writes nothing
            if len(self._due) > 2 * len(self.secrets) + 1_000:  # every version seen is scheduled, none popped
                self._due = []
                for tracked in self.secrets.values():
                    self._schedule(tracked)
            return  # a standby keeps its view current and acts once it holds the lease
        now = self._now()
        while self._due and self._due[0][0] <= now:
            _, key, rv = heapq.heappop(self._due)
            ts = self.secrets.get(key)
            if ts is None or ts.resource_version != rv:
                continue  # deleted, or superseded by a newer version with its own schedule
            action, due = self.policy.next_action(ts, now)
            if due > now:
                heapq.heappush(self._due, (due, key, rv))
                continue
            try:
                full = self._load(ts)
                if full is None:
                    continue  # changed meanwhile: the newer version is scheduled
                self._bound(full)
                if action == REISSUE:
                    self._reissue(full)
                else:
                    self._renew(full)
                self._backoff.pop(key, None)
            except KubernetesConflict:
                log.info("%s changed while acting on it; using the newer version", ts.ref)
                self._refresh(ts)
            except KubernetesNotFound:
                log.info("%s is gone", ts.ref)
            except TokenRefused as exc:
                self._refuse(ts, exc)
            except UnusableSecret as exc:
                self.events.post(key, "SecretUnusable", exc.problem)
                self.secrets.pop(key, None)  # until it changes (a new version is tracked again)
            except SparkSecretsError as exc:
                self._failed(ts, action, exc)

    def _load(self, ts: TokenSecret) -> TokenSecret | None:
        """The Secret with its token file, if it is still the version ``ts`` was scheduled from."""
        obj = self.kube.read_secret(ts.namespace, ts.name)
        if str((obj.get("metadata") or {}).get("resourceVersion")) != ts.resource_version:
            self._track(obj)
            return None
        return self._checked(TokenSecret.from_object(obj))

    def _bound(self, ts: TokenSecret) -> None:
        """Raises :class:`TokenRefused` unless the Secret's tokens all belong to its owner label and the API
        server bound that label to the Secret's creator (the admission policy covered it)."""
        if not ts.owner_label:
            raise TokenRefused(f"{ts.ref} names no owner (label {LABEL_OWNER})", "recreate it with spark-secrets")
        self._learn(ts)
        others = ts.token_owners() - {ts.owner_label}
        if others:
            raise TokenRefused(f"{ts.ref} holds tokens of {', '.join(sorted(others))}, but its owner is "
                               f"{ts.owner_label}", "a Secret may only hold its creator's own tokens")
        problem = self.owner_policy.problem(ts) if self.owner_policy is not None else None
        if problem:
            raise TokenRefused(f"{ts.ref}: {problem}", POLICY_FIX)

    def _learn(self, ts: TokenSecret) -> None:
        """Asks the servers whose tokens' identifiers say nothing (Kafka's) whose they are and when they end;
        refuses a token its server does not show this service (not one it renews, or a forged id)."""
        for token in ts.opaque_tokens():
            kind = self._kind(token)
            facts = kind.facts(token)
            if facts is None:
                raise TokenRefused(f"{ts.ref} holds a {kind.name} token ({token.fingerprint}) that its servers do not "
                                   f"show to this service", "submit the job again with spark-secrets, naming this "
                                   "renew service as the tokens' renewer (spark.secrets.renewer)")
            ts.learn(token, facts)

    def _refuse(self, ts: TokenSecret, exc: TokenRefused) -> None:
        """One Event and log line, a count, and no action: until the Secret changes (or, when only the
        policy is missing, for :data:`POLICY_RETRY_MS`)."""
        key = (ts.namespace, ts.name)
        if self._refused.get(key) != (ts.resource_version, exc.problem):  # once per version and reason
            self._refused[key] = (ts.resource_version, exc.problem)
            self.metrics.refusals += 1
            self.events.post(key, "TokenRefused", f"refused {exc.problem}: nothing renewed, re-issued or cancelled"
                                              + (f" ({exc.fix})" if exc.fix else ""))
        if exc.fix == POLICY_FIX:
            heapq.heappush(self._due, (self._now() + POLICY_RETRY_MS, key, ts.resource_version))
        else:
            self.secrets.pop(key, None)

    def _failed(self, ts: TokenSecret, action: str, exc: SparkSecretsError) -> None:
        self.metrics.failures += 1
        key = (ts.namespace, ts.name)
        delay = min(self._backoff.get(key, 5_000) * 2, 300_000)
        self._backoff[key] = delay
        now = self._now()
        # Never wait past the point where the token could still be saved.
        limit = max(1_000, (min(ts.expiry_ms, ts.max_date_ms) - now) // 3)
        retry = now + int(min(delay, limit) * random.uniform(0.8, 1.2))
        self.events.post(key, "RenewFailed" if action != REISSUE else "ReissueFailed",
                     f"{action} of {ts.ref} failed: {exc.problem}; retrying in {(retry - now) / 1000:.0f} s")
        heapq.heappush(self._due, (retry, key, ts.resource_version))

    def _patch(self, ts: TokenSecret, patch: dict[str, Any]) -> None:
        """A merge patch that only applies to the version the action was computed from (else 409).

        The answer (the Secret as it now is) is tracked at once, so the next action is scheduled even
        when the watch is down or late (an API-server outage right after a renewal would otherwise leave
        the service waiting for an event that comes only after the outage, past the token's expiry)."""
        patch["metadata"]["resourceVersion"] = ts.resource_version
        self._track(self.kube.patch_secret(ts.namespace, ts.name, patch))

    def _refresh(self, ts: TokenSecret) -> None:
        try:
            self._track(self.kube.read_secret(ts.namespace, ts.name))
        except KubernetesNotFound:
            self.secrets.pop((ts.namespace, ts.name), None)


def _give_back_memory() -> None:
    """Return the heap freed by a full list to the OS (glibc's ``malloc_trim``; a no-op elsewhere). What a list
    decodes is freed by reference counts, so no collection first: one over 100,000 Secrets holds the GIL for a
    sixth of a second just as the service says it is ready (ctypes lets go of it for the trim)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=256)
def _shared(filesystems: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple per distinct ``filesystems`` (the jobs of a cluster name the same few): 48 bytes less per Secret."""
    return filesystems


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
