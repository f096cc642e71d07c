"""The renew service's main loop: per-Secret scheduling and the actions (renew, re-issue, cancel).

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

import base64
import ctypes
import os
import dataclasses
import functools
import gc
import heapq
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from requests.auth import AuthBase

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import (HdfsError, HdfsPermissionError, InvalidTokenError, KerberosError, KubernetesConflict,
                                  KubernetesNotFound, SparkSecretsError, TokenRefused, UnusableSecret)
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.admission import FIX as POLICY_FIX
from spark_secrets.renew.admission import OwnerPolicy
from spark_secrets.renew.grants import AccessGrants
from spark_secrets.renew.housekeeping import Housekeeper, Key
from spark_secrets.tokens.metastore import Metastore
from spark_secrets.renew.kinds import TokenKind, default_kinds
from spark_secrets.renew.metrics import EXPIRY_SERIES, Metrics
from spark_secrets.renew.policy import REISSUE, Policy, estimate_warning
from spark_secrets.renew.rollover import Rollover
from spark_secrets.renew.rotation import SecretRotator
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.standby import Standby
from spark_secrets.renew.watch import DELETED, LISTING, PAGE, SYNC, SecretEvent, SecretWatch
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import (ANNOTATION_ACTED_BY, ANNOTATION_LAST_ACTION, ANNOTATION_NEXT_ACTION,
                                       ANNOTATION_VERIFIED, LABEL_OWNER, TokenSecret, rfc3339, schedule_annotations,
                                       token_handles)

log = logging.getLogger("spark_secrets.renew")

#: A Secret refused because no admission policy covers it is looked at again after this long (an admin
#: may bind the policy meanwhile); other refusals wait until the Secret changes.
POLICY_RETRY_MS = 15_000


class RenewService:
    """Tracks token Secrets in ``namespaces`` (None: all) and acts on them when due."""

    def __init__(self, kube: KubeClient, auth: Callable[[], AuthBase], *, namespaces: Sequence[str] | None = None,
                 policy: Policy | None = None, hadoop_conf: HadoopConf | None = None, renewer: str,
                 verify: bool | str = True, watch_timeout: int = 60, clock: Callable[[], float] = time.time,
                 leader: Callable[[], bool] | None = None, sweep_interval: float = 30.0,
                 orphan_grace_ms: int = 600_000, grants: AccessGrants | None = None,
                 kinds: Sequence[TokenKind] | None = None, principal: str | None = None,
                 metastore: Metastore | None = None, rotator: Callable[[RenewService], SecretRotator] | None = None,
                 seal: Seal | None = None, owner_policy: OwnerPolicy | None = None) -> None:
        self.kube = kube
        #: Signs what the service verified; a random key (nothing survives a restart) unless given one.
        self.seal = seal or Seal(os.urandom(32))
        #: Checks that the API server binds owner labels to their creators; None: not checked (tests only).
        self.owner_policy = owner_policy
        #: Who the service is, in the Secrets it writes (``acted-by``): its principal.
        self.principal = principal or renewer
        self.namespaces = list(namespaces) if namespaces else None
        self.policy = policy or Policy()
        self.renewer = renewer
        self.watch_timeout = watch_timeout
        self.clock = clock
        #: Whether this replica may act now (a Lease); without one it always may.
        self.leader = leader or (lambda: True)
        self.kinds = list(kinds) if kinds is not None else default_kinds(auth, renewer, conf=hadoop_conf, verify=verify,
                                                                         metastore=metastore)
        self.metrics = Metrics()
        self.secrets: dict[Key, TokenSecret] = {}
        self.housekeeper = Housekeeper(kube, self.secrets, self.metrics, report=self._report, now_ms=self._now,
                                       grants=grants, sweep_interval=sweep_interval, orphan_grace_ms=orphan_grace_ms)
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
        self._stop = threading.Event()
        self._watches: list[SecretWatch] = []
        self._nearest_at = 0.0
        #: Keeps job secrets' vault: values current (built here: it shares the metrics and Events).
        self.rotator = rotator(self) if rotator is not None else None

    def __repr__(self) -> str:
        return f"RenewService(namespaces={self.namespaces or 'all'}, tracked={len(self.secrets)})"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        where: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for ns in where:
            watch = SecretWatch(self.kube, ns, self._events, self.metrics, timeout_seconds=self.watch_timeout)
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
                self._handle(self._events.get(timeout=min(max(wait, 0.05), 5.0)))
                while True:
                    self._handle(self._events.get_nowait())
            except queue.Empty:
                pass
            self._run_due()
            self.housekeeper.run()
            if self.rotator is not None:
                self.rotator.run()
            self._update_nearest()

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # -- events ----------------------------------------------------------------------------------
    def _handle(self, event: SecretEvent) -> None:
        if event.kind == LISTING:  # a list in pages: LISTING, PAGE..., SYNC
            self._listing[event.namespace] = set()
        elif event.kind == PAGE:
            present = self._listing.setdefault(event.namespace, set())
            for obj in event.objects:
                present.add(self._track(obj))
        elif event.kind == SYNC:
            present = self._listing.pop(event.namespace, set())
            gone = [k for k in self.secrets if (event.namespace is None or k[0] == event.namespace) and k not in present]
            for key in gone:  # deleted while we were not watching: its tokens still need cancelling
                self._cancel(self.secrets.pop(key))
                self.housekeeper.revoke(key)
            self._synced.add(event.namespace)
            self.metrics.ready = len(self._synced) == len(self.namespaces or [None])
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
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        try:
            ts = self._checked(TokenSecret.from_metadata(obj))
        except UnusableSecret as exc:
            if key not in self.secrets or self.secrets[key].resource_version != meta.get("resourceVersion"):
                self._report(key, "SecretUnusable", exc.problem)
            self.secrets.pop(key, None)
            return key
        key = (ts.namespace, ts.name)  # the Secret's own (interned) strings, not the event's copies
        known = self.secrets.get(key)
        self.secrets[key] = ts
        self.housekeeper.tracked(key, known is None or known.uid != ts.uid)
        if known is None or known.resource_version != ts.resource_version:
            self._schedule(ts)
        return key

    @functools.cached_property
    def rollover(self) -> Rollover:
        """A re-issue's outgoing tokens, kept alive until the pods can have the new ones (:mod:`.rollover`)."""
        return Rollover(self.seal, self.policy, self._kind, self.metrics)

    def _checked(self, ts: TokenSecret) -> TokenSecret:
        """``ts`` with :attr:`~TokenSecret.verified` set from the seal (and, with data, the file matching it)."""
        ts.verified = self.seal.holds(ts) and (ts.credentials is None or ts.data_matches_handles)
        ts.seal = ""  # checked: the flag is all the service keeps (memory per Secret at 100,000 of them)
        self.rollover.check(ts)  # the outgoing tokens' own seal
        return ts

    def _schedule(self, ts: TokenSecret) -> None:
        _, due = self.policy.next_action(ts, self._now())
        heapq.heappush(self._due, (due, (ts.namespace, ts.name), ts.resource_version))

    def _update_nearest(self) -> None:
        """The nearest expiry for /metrics: a pass over every Secret, so at most once a second (a
        pass per event would make a list of N Secrets cost N² at start)."""
        if time.monotonic() - self._nearest_at >= 1.0:
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
    def _run_due(self) -> None:
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
                self._report(key, "SecretUnusable", exc.problem)
                self.secrets.pop(key, None)  # until it changes (a new version is tracked again)
            except SparkSecretsError as exc:
                self._failed(ts, action, exc)

    def _load(self, ts: TokenSecret) -> TokenSecret | None:
        """The Secret with its token file, if it is still the version ``ts`` was scheduled from."""
        self.metrics.api_requests += 1
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
        others = ts.token_owners() - {ts.owner_label}
        if others:
            raise TokenRefused(f"{ts.ref} holds tokens of {', '.join(sorted(others))}, but its owner is "
                               f"{ts.owner_label}", "a Secret may only hold its creator's own tokens")
        problem = self.owner_policy.problem(ts) if self.owner_policy is not None else None
        if problem:
            raise TokenRefused(f"{ts.ref}: {problem}", POLICY_FIX)

    def _refuse(self, ts: TokenSecret, exc: TokenRefused) -> None:
        """One Event and log line, a count, and no action: until the Secret changes (or, when only the
        policy is missing, for :data:`POLICY_RETRY_MS`)."""
        key = (ts.namespace, ts.name)
        if self._refused.get(key) != (ts.resource_version, exc.problem):  # once per version and reason
            self._refused[key] = (ts.resource_version, exc.problem)
            self.metrics.refusals += 1
            self._report(key, "TokenRefused", f"refused {exc.problem}: nothing renewed, re-issued or cancelled"
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
        self._report(key, "RenewFailed" if action != REISSUE else "ReissueFailed",
                     f"{action} of {ts.ref} failed: {exc.problem}; retrying in {(retry - now) / 1000:.0f} s")
        heapq.heappush(self._due, (retry, key, ts.resource_version))

    def _kind(self, token: Token) -> TokenKind:
        for kind in self.kinds:
            if kind.owns_token(token):
                return kind
        raise UnusableSecret(f"no token kind renews {token.kind} tokens", "upgrade the renew service")

    def _renew(self, ts: TokenSecret) -> None:
        """Renew the main tokens (and in the same write the outgoing ones, if due), or only the outgoing ones
        when they alone are due; a re-issue instead if its window opened meanwhile."""
        now = self._now()
        action, due = self.policy.main_action(ts, now, spread=False)
        outgoing_due = self.policy.outgoing_due(ts, now)
        if outgoing_due is not None and outgoing_due <= now < due:
            self._keep_outgoing(ts, now)
            return
        if action == REISSUE and due <= now:
            self._reissue(ts)
            return
        expiries = []
        for token in ts.distinct_tokens():
            kind = self._kind(token)
            try:
                expiries.append(kind.renew(token))
                self.metrics.count(kind.name, "renew")
            except InvalidTokenError as exc:  # expired, cancelled, wrong password, unknown key
                if not ts.verified:
                    raise self._not_genuine(ts, kind.name, exc) from None
                log.info("%s: the %s server no longer renews a token this service verified (%s); re-issuing",
                         ts.ref, kind.name, exc.problem)
                self._reissue(ts)
                return
            except HdfsPermissionError as exc:  # e.g. a renewer that is not this service
                if not ts.verified:
                    raise self._not_genuine(ts, kind.name, exc) from None
                raise
        expiry = min(expiries)
        now = self._now()
        assert ts.credentials is not None
        outgoing = self.rollover.at_write(ts, now)
        notes = {**schedule_annotations(ts.credentials, expiry, renewed_at_ms=now),
                 **self._plan(dataclasses.replace(ts, outgoing=outgoing.outgoing), "renewed", expiry, ts.max_date_ms,
                              now),
                 ANNOTATION_VERIFIED: self.seal.of(ts, token_handles(ts.credentials))}
        self._patch(ts, outgoing.patch(notes))
        self.metrics.renewals += 1
        log.info("renewed %s (%d token(s), %s): now expires %s", ts.ref, len(expiries), self._seq(ts), rfc3339(expiry))
        if not ts.expiry_known:
            self._check_estimate(ts, expiry, now)

    @staticmethod
    def _check_estimate(ts: TokenSecret, expiry_ms: int, now_ms: int) -> None:
        """One line when the submission's estimated renew interval was off by more than a tenth."""
        warning = estimate_warning(ts, expiry_ms, now_ms)
        if warning:
            log.warning("%s", warning)

    @staticmethod
    def _not_genuine(ts: TokenSecret, kind: str, exc: SparkSecretsError) -> TokenRefused:
        return TokenRefused(f"{ts.ref}: the {kind} server would not renew a token this service never verified "
                            f"({exc.problem})", "submit the job again with spark-secrets")

    def _reissue(self, ts: TokenSecret) -> None:
        if not ts.filesystems:
            raise UnusableSecret(f"{ts.ref} names no filesystems", "recreate it with spark-secrets")
        extended = self._extend_for_rollover(ts)
        creds = Credentials()
        for kind in self.kinds:
            targets = [t for t in ts.filesystems if kind.owns_target(t)]
            if targets:
                obtained = kind.obtain(targets, ts.owner_label)
                creds.tokens.update(obtained.tokens)
                creds.secret_keys.update(obtained.secret_keys)
        fresh = dataclasses.replace(ts, credentials=creds, verified=True, outgoing=None)  # obtained by the service
        for token in fresh.distinct_tokens():
            self.metrics.count(self._kind(token).name, "obtain")
        expiry = min(self._kind(t).renew(t) for t in fresh.distinct_tokens())
        data = base64.b64encode(creds.to_bytes(ts.file_format)).decode("ascii")
        now = self._now()
        outgoing = self.rollover.begin(ts, extended, now)  # the tokens the pods use until they have the new ones
        try:
            notes = {**schedule_annotations(creds, expiry, renewed_at_ms=now),
                     **self._plan(dataclasses.replace(fresh, outgoing=outgoing.outgoing), "re-issued", expiry,
                                  fresh.max_date_ms, now),
                     ANNOTATION_VERIFIED: self.seal.of(ts, token_handles(creds))}
            self._patch(ts, outgoing.patch(notes, {ts.key: data}))
        except KubernetesConflict:
            # Someone else (another replica) changed the Secret first: this token goes nowhere, so cancel it
            # (only it: ``fresh`` has no outgoing tokens, and the Secret's own are still in use).
            self._cancel(fresh, why="obtained for, but not written into, changed")
            raise
        self.metrics.reissues += 1
        log.info("re-issued %s for %s (%s): expires %s, max %s", ts.ref, ts.owner_label, self._seq(fresh),
                 rfc3339(expiry), rfc3339(fresh.max_date_ms))

    def _keep_outgoing(self, ts: TokenSecret, now: int) -> None:
        """Renew only a re-issue's outgoing tokens (the main ones are not due); on an outage, try again soon."""
        outgoing = self.rollover.renew(ts, now)
        if outgoing.failed is not None:
            retry = self.rollover.retry_at(ts, now)
            log.warning("could not renew the outgoing tokens of %s: %s; retrying in %.1f s", ts.ref,
                        outgoing.failed.problem, (retry - now) / 1000)
            heapq.heappush(self._due, (retry, (ts.namespace, ts.name), ts.resource_version))
            return
        action, due = self.policy.next_action(dataclasses.replace(ts, outgoing=outgoing.outgoing), now)
        next_action = f"{'re-issue' if action == REISSUE else 'renew'} {rfc3339(max(due, now))}"
        self._patch(ts, outgoing.patch({ANNOTATION_NEXT_ACTION: next_action}))

    def _plan(self, ts: TokenSecret, done: str, expiry_ms: int, max_date_ms: int, now_ms: int) -> dict[str, str]:
        """What was done, by whom, and what comes next (about when), in the same write: for
        ``spark-secrets status``, which may read metadata but not the tokens."""
        after = dataclasses.replace(ts, expiry_ms=expiry_ms, renewed_at_ms=now_ms, max_date_annotation_ms=max_date_ms,
                                    expiry_estimated=False)
        action, due = self.policy.next_action(after, now_ms)
        return {ANNOTATION_LAST_ACTION: done, ANNOTATION_ACTED_BY: self.principal,
                ANNOTATION_NEXT_ACTION: f"{'re-issue' if action == REISSUE else 'renew'} {rfc3339(max(due, now_ms))}"}

    def _extend_for_rollover(self, ts: TokenSecret) -> tuple[int, int] | None:
        """Renew the outgoing tokens once more (up to their max date) before writing new ones: pods keep
        using them until kubelet projects the new file, and the re-issue keeps them alive from here
        (:mod:`.rollover`). Always tried, whatever the annotations say of the expiry (the writer's
        word): a lapsed token just says so. Returns their expiry and when it was learnt (on an outage,
        the last known: the keep-alive retries soon), or None if a server refused them (nothing to keep).

        The same renewals prove the tokens genuine where the service has not verified them before:
        then any refusal means no re-issue (:class:`TokenRefused`), and any other failure waits for a
        retry; for verified tokens both are only logged (the re-issue matters more)."""
        expiries: list[int] = []
        refused = False
        tokens = ts.distinct_tokens()
        for token in tokens:
            kind = self._kind(token)
            try:
                expiries.append(kind.renew(token))
                self.metrics.count(kind.name, "renew")
            except SparkSecretsError as exc:
                refusal = isinstance(exc, (InvalidTokenError, HdfsPermissionError))
                if not ts.verified:  # a refusal is final; anything else (an outage) is retried
                    if refusal:
                        raise self._not_genuine(ts, kind.name, exc) from None
                    raise
                refused = refused or refusal
                log.info("%s: could not extend the outgoing token before the re-issue: %s", ts.ref, exc.problem)
        if refused:
            return None
        if len(expiries) == len(tokens):
            return min(expiries), self._now()
        return ts.expiry_ms, ts.renewed_at_ms or ts.issue_date_ms

    def _cancel(self, ts: TokenSecret, why: str = "deleted") -> None:
        """Cancel the tokens the service verified in ``ts``: the main ones, and the outgoing ones of a re-issue
        it sealed (pods may have used them to the end); never any a writer merely named."""
        if ts.outgoing is not None and ts.outgoing.verified:
            self._cancel_tokens(ts, ts.outgoing.cancel_tokens(), why)
        if not ts.verified:
            if ts.handles:
                log.info("not cancelling the tokens named by deleted %s: this service never verified them", ts.ref)
            return
        tokens = ts.cancel_tokens()
        if not tokens:
            log.warning("cannot cancel the tokens of deleted %s: it named none (written by an older spark-secrets)",
                        ts.ref)
        self._cancel_tokens(ts, tokens, why)

    def _cancel_tokens(self, ts: TokenSecret, tokens: list[Token], why: str) -> None:
        for token in tokens:
            try:
                kind = self._kind(token)
                kind.cancel(token)
                self.metrics.count(kind.name, "cancel")
                self.metrics.cancellations += 1
                log.info("cancelled a token of %s %s (%s)", why, ts.ref, self._seq(ts))
            except HdfsError as exc:
                # Already expired or cancelled is fine: nothing can use it any more.
                log.info("token of deleted %s not cancelled: %s", ts.ref, exc.problem)
            except (KerberosError, UnusableSecret) as exc:
                self.metrics.failures += 1
                log.warning("cannot cancel tokens of deleted %s: %s", ts.ref, exc.problem)

    def _patch(self, ts: TokenSecret, patch: dict[str, Any]) -> None:
        """A merge patch that only applies to the version the action was computed from (else 409).

        The answer (the Secret as it now is) is tracked at once, so the next action is scheduled even
        when the watch is down or late (an API-server outage right after a renewal would otherwise leave
        the service waiting for an event that comes only after the outage, past the token's expiry)."""
        patch["metadata"]["resourceVersion"] = ts.resource_version
        self.metrics.api_requests += 1
        self.metrics.api_writes += 1
        self._track(self.kube.patch_secret(ts.namespace, ts.name, patch))

    def _refresh(self, ts: TokenSecret) -> None:
        self.metrics.api_requests += 1
        try:
            self._track(self.kube.read_secret(ts.namespace, ts.name))
        except KubernetesNotFound:
            self.secrets.pop((ts.namespace, ts.name), None)

    def _report(self, key: Key, reason: str, message: str, kind: str = "Warning") -> None:
        """A log line and a Kubernetes Event on the Secret (best effort)."""
        log.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s", message)
        namespace, name = key
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{name}.", "namespace": namespace},
                 "involvedObject": {"apiVersion": "v1", "kind": "Secret", "name": name, "namespace": namespace},
                 "reason": reason, "message": message[:1000], "type": kind,
                 "source": {"component": "spark-secrets-renewer"}, "firstTimestamp": now, "lastTimestamp": now,
                 "count": 1}
        try:
            self.metrics.api_requests += 1
            self.metrics.api_writes += 1
            self.kube.create_event(namespace, event)
        except SparkSecretsError as exc:  # an Event is a courtesy, never a reason to stop
            log.info("could not record an Event on %s/%s (%s)", namespace, name, exc.problem)

    @staticmethod
    def _seq(ts: TokenSecret) -> str:
        return "sequence " + ",".join(str(i.sequence_number) for i in ts.identifiers[:1])


def _give_back_memory() -> None:
    """Return the heap freed by a full list to the OS (glibc's ``malloc_trim``; a no-op elsewhere)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
