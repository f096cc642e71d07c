"""The renew service: keeps the tokens in token Secrets alive, re-issues them before their max date,
and cancels them when their Secret goes.

Stateless: everything it needs is in the Secrets (tokens, annotations), so a restart re-lists and
misses nothing. One watcher thread per namespace (or one for all) lists and watches token Secrets by
label, resuming by resourceVersion and re-listing on 410 Gone; the main thread acts on whatever is
due. Secret updates carry the resourceVersion they were computed from, so a concurrent change gives
409 and the action is recomputed from the newer object.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
import http.server
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from requests.auth import AuthBase

from spark_secrets.errors import HdfsError, KerberosError, SparkSecretsError, TokenExpiredError
from spark_secrets.fetcher import cancel_token, obtain_tokens, renew_token
from spark_secrets.hadoopconf import HadoopConf
from spark_secrets.kerberos import keytab_login
from spark_secrets.kube import KubeClient, KubernetesConflict, KubernetesError, KubernetesNotFound
from spark_secrets.grants import AccessGrants
from spark_secrets.labels import (ANNOTATION_EXPIRY, ANNOTATION_EXPIRY_ESTIMATED, ANNOTATION_MAX_DATE,
                                  ANNOTATION_RENEWED_AT, LABEL_KIND, TOKEN_SECRET_SELECTOR, rfc3339)
from spark_secrets.ownership import ADOPT, DELETE, RELEASE, PodInfo, Verdict, judge
from spark_secrets.renewal import REISSUE, Policy, TokenSecret, UnusableSecret
from spark_secrets.spnego import SpnegoAuth

log = logging.getLogger("spark_secrets.renewer")

Key = tuple[str, str]
#: Parallel API calls for read grants (controller mode).
GRANT_THREADS = 8
#: How often to look at every Secret for a missing grant (failed ones are retried then).
GRANT_RETRY_S = 30.0


@dataclasses.dataclass
class Metrics:
    """What ``/metrics`` reports (Prometheus text format)."""

    renewals: int = 0
    reissues: int = 0
    cancellations: int = 0
    failures: int = 0
    relists: int = 0
    adoptions: int = 0
    cleanups: int = 0
    grants: int = 0
    api_requests: int = 0
    tracked: int = 0
    nearest_expiry_ms: int | None = None
    ready: bool = False
    leader: bool = False
    heartbeat: float = dataclasses.field(default_factory=time.monotonic)

    def render(self, now_ms: int) -> str:
        until = (self.nearest_expiry_ms - now_ms) / 1000 if self.nearest_expiry_ms else float("nan")
        rows = [("tokens_tracked", "gauge", "Token Secrets being kept alive", self.tracked),
                ("renewals_total", "counter", "Successful token renewals", self.renewals),
                ("reissues_total", "counter", "Tokens re-issued before their max date", self.reissues),
                ("cancellations_total", "counter", "Tokens cancelled after their Secret was deleted", self.cancellations),
                ("failures_total", "counter", "Failed renewals, re-issues or cancellations", self.failures),
                ("relists_total", "counter", "Full re-lists of token Secrets (start, 410 Gone, errors)", self.relists),
                ("adoptions_total", "counter", "Owner-less Secrets given to the driver pod that mounts them",
                 self.adoptions),
                ("cleanups_total", "counter", "Secrets no pod uses any more, deleted or emptied", self.cleanups),
                ("grants_total", "counter", "Read grants made for jobs' service accounts (controller mode)",
                 self.grants),
                ("api_requests_total", "counter", "Kubernetes API requests made for actions", self.api_requests),
                ("leader", "gauge", "1 when this replica holds the lease and acts", int(self.leader)),
                ("seconds_until_nearest_expiry", "gauge", "Time left on the token closest to expiring", until)]
        out = []
        for name, kind, text, value in rows:
            out += [f"# HELP spark_secrets_{name} {text}", f"# TYPE spark_secrets_{name} {kind}",
                    f"spark_secrets_{name} {value}"]
        return "\n".join(out) + "\n"


@dataclasses.dataclass
class _Event:
    kind: str  # SYNC (a full list of one namespace), ADDED, MODIFIED, DELETED
    namespace: str | None
    objects: list[dict[str, Any]]


class RenewService:
    """Tracks token Secrets in ``namespaces`` (None: all) and acts on them when due."""

    def __init__(self, kube: KubeClient, auth: Callable[[], AuthBase], *, namespaces: Sequence[str] | None = None,
                 policy: Policy | None = None, hadoop_conf: HadoopConf | None = None, renewer: str,
                 verify: bool | str = True, watch_timeout: int = 60, clock: Callable[[], float] = time.time,
                 leader: Callable[[], bool] | None = None, sweep_interval: float = 30.0,
                 orphan_grace_ms: int = 600_000, grants: AccessGrants | None = None) -> None:
        self.kube = kube
        self.auth = auth
        self.namespaces = list(namespaces) if namespaces else None
        self.policy = policy or Policy()
        self.hadoop_conf = hadoop_conf
        self.renewer = renewer
        self.verify = verify
        self.watch_timeout = watch_timeout
        self.clock = clock
        #: Whether this replica may act now (a Lease); without one it always may.
        self.leader = leader or (lambda: True)
        self.metrics = Metrics()
        #: How often to look at the pods that use the Secrets (adopt, clean up); 0 = never.
        self.sweep_interval = sweep_interval
        self.orphan_grace_ms = orphan_grace_ms
        #: Controller mode: per-Secret read grants for the jobs' service accounts.
        self.grants = grants
        self._granted: dict[Key, str] = {}  # Secret -> uid of the incarnation granted (or being granted)
        self._grant_pool = ThreadPoolExecutor(GRANT_THREADS, thread_name_prefix="grant") if grants else None
        self._grant_queue: set[Key] = set()  # tracked since the last pass (main thread only)
        self._next_grant_pass = 0.0  # a pass over every Secret: on taking the lease, then to retry failures
        self._next_sweep = 0.0
        self._metrics_lock = threading.Lock()
        self.secrets: dict[Key, TokenSecret] = {}
        self._due: list[tuple[int, Key, str]] = []  # (due ms, key, resourceVersion it was computed from)
        self._backoff: dict[Key, int] = {}
        self._events: queue.Queue[_Event] = queue.Queue()
        self._synced: set[str | None] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"RenewService(namespaces={self.namespaces or 'all'}, tracked={len(self.secrets)})"

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        for ns in self.namespaces or [None]:
            thread = threading.Thread(target=self._watch_loop, args=(ns,), name=f"watch-{ns or 'all'}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

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
            self._run_housekeeping()

    def _now(self) -> int:
        return int(self.clock() * 1000)

    # -- watching ------------------------------------------------------------------------------------
    def _watch_loop(self, namespace: str | None) -> None:
        core = self.kube.core
        backoff = 1.0
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list(namespace)
                    self.metrics.relists += 1
                stream = k8s_watch.Watch()
                fn, args = ((core.list_namespaced_secret, (namespace,)) if namespace
                            else (core.list_secret_for_all_namespaces, ()))
                for event in stream.stream(fn, *args, label_selector=TOKEN_SECRET_SELECTOR,
                                           resource_version=resource_version, timeout_seconds=self.watch_timeout,
                                           allow_watch_bookmarks=True):
                    raw = event.get("raw_object") or {}
                    kind = event.get("type")
                    if kind == "ERROR":
                        if raw.get("code") == 410:
                            log.info("watch of %s expired (410 Gone): listing again", namespace or "all namespaces")
                            resource_version = None
                            break
                        raise KubernetesError(f"watch error: {raw.get('message', '')[:200]}")
                    resource_version = (raw.get("metadata") or {}).get("resourceVersion", resource_version)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self._events.put(_Event(kind, namespace, [raw]))
                    if self._stop.is_set():
                        break
                backoff = 1.0
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                backoff = self._watch_failed(namespace, f"HTTP {exc.status}", backoff)
            except Exception as exc:  # noqa: BLE001 - an API-server outage must not end the thread
                backoff = self._watch_failed(namespace, type(exc).__name__, backoff)

    def _watch_failed(self, namespace: str | None, what: str, backoff: float) -> float:
        log.warning("cannot list/watch token Secrets in %s (%s); retrying in %.0f s", namespace or "all namespaces",
                    what, backoff)
        self._stop.wait(backoff * random.uniform(0.8, 1.2))
        return min(backoff * 2, 30.0)

    def _list(self, namespace: str | None) -> str:
        core = self.kube.core
        resp = (core.list_namespaced_secret(namespace, label_selector=TOKEN_SECRET_SELECTOR, _preload_content=False)
                if namespace else core.list_secret_for_all_namespaces(label_selector=TOKEN_SECRET_SELECTOR,
                                                                      _preload_content=False))
        body = json.loads(resp.data)
        self._events.put(_Event("SYNC", namespace, list(body.get("items") or [])))
        return str(body["metadata"]["resourceVersion"])

    # -- events --------------------------------------------------------------------------------------
    def _handle(self, event: _Event) -> None:
        if event.kind == "SYNC":
            present = set()
            for obj in event.objects:
                present.add(self._track(obj))
            gone = [k for k in self.secrets if (event.namespace is None or k[0] == event.namespace) and k not in present]
            for key in gone:  # deleted while we were not watching: its tokens still need cancelling
                self._cancel(self.secrets.pop(key))
                self._revoke(key)
            self._synced.add(event.namespace)
            self.metrics.ready = len(self._synced) == len(self.namespaces or [None])
        elif event.kind == "DELETED":
            meta = event.objects[0].get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            known = self.secrets.pop(key, None)
            try:
                self._cancel(TokenSecret.from_object(event.objects[0]))
            except UnusableSecret as exc:
                if known is not None:  # emptied (a released pre-created Secret): cancel what it held
                    self._cancel(known)
                else:
                    log.warning("%s", exc.problem)
            self._revoke(key)
        else:
            self._track(event.objects[0])
        self.metrics.tracked = len(self.secrets)

    def _track(self, obj: dict[str, Any]) -> Key:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        try:
            ts = TokenSecret.from_object(obj)
        except UnusableSecret as exc:
            if key not in self.secrets or self.secrets[key].resource_version != meta.get("resourceVersion"):
                self._report(key, "SecretUnusable", exc.problem)
            self.secrets.pop(key, None)
            return key
        known = self.secrets.get(key)
        self.secrets[key] = ts
        if self._grant_pool is not None and (known is None or known.uid != ts.uid):
            self._grant_queue.add(key)
        if known is None or known.resource_version != ts.resource_version:
            self._schedule(ts)
        return key

    def _schedule(self, ts: TokenSecret) -> None:
        _, due = self.policy.next_action(ts, self._now())
        heapq.heappush(self._due, (due, (ts.namespace, ts.name), ts.resource_version))
        self._update_nearest()

    def _update_nearest(self) -> None:
        self.metrics.nearest_expiry_ms = min((s.expiry_ms for s in self.secrets.values()), default=None)

    def _seconds_to_next_due(self) -> float:
        return (self._due[0][0] - self._now()) / 1000 if self._due else 5.0

    # -- housekeeping: read grants, ownership, clean-up ------------------------------------------------
    def _run_housekeeping(self) -> None:
        if not self.metrics.leader:
            self._next_grant_pass = 0.0  # look at every Secret once this replica leads
            return
        if self._grant_pool is not None:
            if time.monotonic() >= self._next_grant_pass:
                self._next_grant_pass = time.monotonic() + GRANT_RETRY_S
                self._grant_queue.update(self.secrets)
            queue, self._grant_queue = self._grant_queue, set()
            for key in queue:
                ts = self.secrets.get(key)
                if ts is not None and self._granted.get(key) != ts.uid:
                    self._granted[key] = ts.uid
                    self._grant_pool.submit(self._grant, ts)
        if self.sweep_interval > 0 and time.monotonic() >= self._next_sweep and self.metrics.ready:
            self._next_sweep = time.monotonic() + self.sweep_interval
            self.sweep()

    def _grant(self, ts: TokenSecret) -> None:
        """In the grant pool: two independent API calls per Secret, so a burst of new jobs is granted in parallel."""
        assert self.grants is not None
        key = (ts.namespace, ts.name)
        try:
            with self._metrics_lock:
                self.metrics.api_requests += 2
            account = self.grants.grant(ts)
        except Exception as exc:  # noqa: BLE001 - reported, and retried on the next full pass
            with self._metrics_lock:
                self.metrics.failures += 1
            log.warning("cannot grant read access to %s: %s", ts.ref, getattr(exc, "problem", type(exc).__name__))
            if self._granted.get(key) == ts.uid:
                del self._granted[key]
            return
        with self._metrics_lock:
            self.metrics.grants += 1
        log.info("granted get on %s to service account %s", ts.ref, account)

    def _revoke(self, key: Key) -> None:
        if self.grants is None or not self.metrics.leader:
            return
        self._granted.pop(key, None)
        try:
            self.metrics.api_requests += 2
            self.grants.revoke(*key)
            log.info("removed the read grant on %s/%s", *key)
        except KubernetesError as exc:  # the Secret owns the grant: the garbage collector removes it anyway
            log.info("could not remove the read grant on %s/%s: %s", key[0], key[1], exc.problem)

    def sweep(self) -> None:
        """Give owner-less Secrets to the driver pod that mounts them; delete (or, if pre-created, empty)
        the ones no pod uses any more. One pod list per namespace."""
        by_namespace: dict[str, list[TokenSecret]] = {}
        for ts in self.secrets.values():
            by_namespace.setdefault(ts.namespace, []).append(ts)
        now = self._now()
        for namespace, items in by_namespace.items():
            try:
                self.metrics.api_requests += 1
                pods = [PodInfo.from_object(p) for p in self.kube.list_pods(namespace)]
            except KubernetesError as exc:
                log.warning("cannot list pods in %s to check who uses its token Secrets: %s", namespace, exc.problem)
                continue
            for ts in items:
                verdict = judge(ts, pods, now, self.orphan_grace_ms)
                try:
                    self._settle(ts, verdict)
                except (KubernetesConflict, KubernetesNotFound):
                    pass  # changed or gone meanwhile: the next sweep sees the new state
                except KubernetesError as exc:
                    self._report((ts.namespace, ts.name), "CleanupFailed", f"cannot {verdict.action} {ts.ref}: "
                                                                             f"{exc.problem}")

    def _settle(self, ts: TokenSecret, verdict: Verdict) -> None:
        if verdict.action == ADOPT:
            assert verdict.pod is not None
            self.metrics.api_requests += 1
            self.kube.patch_secret(ts.namespace, ts.name, {"metadata": {
                "resourceVersion": ts.resource_version,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": verdict.pod.name,
                                     "uid": verdict.pod.uid}]}})
            self.metrics.adoptions += 1
            log.info("%s now belongs to driver pod %s (%s)", ts.ref, verdict.pod.name, verdict.reason)
        elif verdict.action == DELETE:
            self.metrics.api_requests += 1
            self.kube.delete_secret(ts.namespace, ts.name, uid=ts.uid)  # the watch then cancels its tokens
            self.metrics.cleanups += 1
            log.info("deleted %s: %s", ts.ref, verdict.reason)
        elif verdict.action == RELEASE:
            self.metrics.api_requests += 1
            self.kube.patch_secret(ts.namespace, ts.name, {
                "data": {ts.key: None},
                "metadata": {"resourceVersion": ts.resource_version, "labels": {LABEL_KIND: None},
                             "annotations": {ANNOTATION_EXPIRY: None, ANNOTATION_MAX_DATE: None,
                                             ANNOTATION_EXPIRY_ESTIMATED: None, ANNOTATION_RENEWED_AT: None}}})
            self.metrics.cleanups += 1
            log.info("emptied %s: %s", ts.ref, verdict.reason)

    # -- actions -------------------------------------------------------------------------------------
    def _run_due(self) -> None:
        self.metrics.leader = self.leader()
        if not self.metrics.leader:
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
                if action == REISSUE:
                    self._reissue(ts)
                else:
                    self._renew(ts)
                self._backoff.pop(key, None)
            except KubernetesConflict:
                log.info("%s changed while acting on it; using the newer version", ts.ref)
                self._refresh(ts)
            except KubernetesNotFound:
                log.info("%s is gone", ts.ref)
            except SparkSecretsError as exc:
                self._failed(ts, action, exc)

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

    def _renew(self, ts: TokenSecret) -> None:
        expiries = []
        for token in ts.distinct_tokens():
            try:
                expiries.append(renew_token(token, self.auth(), conf=self.hadoop_conf, verify=self.verify))
            except TokenExpiredError:
                log.info("%s: token past its max date; re-issuing instead", ts.ref)
                self._reissue(ts)
                return
        expiry = min(expiries)
        now = self._now()
        self._patch(ts, {"metadata": {"annotations": {ANNOTATION_EXPIRY: rfc3339(expiry),
                                                       ANNOTATION_EXPIRY_ESTIMATED: None,
                                                       ANNOTATION_RENEWED_AT: rfc3339(now)}}})
        self.metrics.renewals += 1
        log.info("renewed %s (%d token(s), %s): now expires %s", ts.ref, len(expiries), self._seq(ts), rfc3339(expiry))
        if not ts.expiry_known:
            self._check_estimate(ts, expiry, now)

    @staticmethod
    def _check_estimate(ts: TokenSecret, expiry_ms: int, now_ms: int) -> None:
        """One line when the submission's estimated renew interval was off by more than a tenth."""
        if expiry_ms >= ts.max_date_ms:
            return  # capped at the max date: the answer does not say what the interval is
        actual, guessed = expiry_ms - now_ms, ts.expiry_ms - ts.issue_date_ms
        capped = ts.expiry_ms >= ts.max_date_ms  # the estimate was cut at the max date: it was at least this
        if guessed > 0 and (capped or abs(actual - guessed) > max(0.1 * actual, 2_000)):
            log.warning("%s: the token server's renew interval is about %s, the submission estimated %s%s; "
                        "set spark.secrets.renewInterval=%s (or dfs.namenode.delegation.token.renew-interval in "
                        "the submitters' HADOOP_CONF_DIR) so expiry annotations are right", ts.ref,
                        duration_text(actual), "at least " if capped else "", duration_text(guessed),
                        duration_text(actual))

    def _reissue(self, ts: TokenSecret) -> None:
        if not ts.filesystems:
            raise UnusableSecret(f"{ts.ref} names no filesystems", "recreate it with spark-secrets")
        self._extend_for_rollover(ts)
        creds = obtain_tokens(ts.filesystems, self.renewer, self.auth(), doas=ts.owner, conf=self.hadoop_conf,
                              verify=self.verify)
        fresh = dataclasses.replace(ts, credentials=creds, identifiers=tuple(
            i for i in (t.decode_identifier() for t in creds if t.is_delegation_token) if i is not None))
        expiry = min(renew_token(t, self.auth(), conf=self.hadoop_conf, verify=self.verify)
                     for t in fresh.distinct_tokens())
        data = base64.b64encode(creds.to_bytes(ts.file_format)).decode("ascii")
        now = self._now()
        try:
            self._patch(ts, {"data": {ts.key: data},
                             "metadata": {"annotations": {ANNOTATION_EXPIRY: rfc3339(expiry),
                                                          ANNOTATION_EXPIRY_ESTIMATED: None,
                                                          ANNOTATION_MAX_DATE: rfc3339(fresh.max_date_ms),
                                                          ANNOTATION_RENEWED_AT: rfc3339(now)}}})
        except KubernetesConflict:
            # Someone else (another replica) changed the Secret first: this token goes nowhere, so cancel it.
            self._cancel(fresh)
            raise
        self.metrics.reissues += 1
        log.info("re-issued %s for %s (%s): expires %s, max %s", ts.ref, ts.owner, self._seq(fresh),
                 rfc3339(expiry), rfc3339(fresh.max_date_ms))

    def _extend_for_rollover(self, ts: TokenSecret) -> None:
        """Renew the outgoing tokens once more (up to their max date) before writing new ones: pods keep
        using them until kubelet projects the new file (about a minute at its default sync period),
        and a token renewed long ago could lapse in that gap."""
        if ts.expiry_ms <= self._now():
            return  # already lapsed: nothing to keep alive
        for token in ts.distinct_tokens():
            try:
                renew_token(token, self.auth(), conf=self.hadoop_conf, verify=self.verify)
            except SparkSecretsError as exc:  # best effort: the re-issue itself matters more
                log.info("%s: could not extend the outgoing token before the re-issue: %s", ts.ref, exc.problem)

    def _cancel(self, ts: TokenSecret) -> None:
        for token in ts.distinct_tokens():
            try:
                cancel_token(token, self.auth(), conf=self.hadoop_conf, verify=self.verify)
                self.metrics.cancellations += 1
                log.info("cancelled a token of deleted %s (%s)", ts.ref, self._seq(ts))
            except HdfsError as exc:
                # Already expired or cancelled is fine: nothing can use it any more.
                log.info("token of deleted %s not cancelled: %s", ts.ref, exc.problem)
            except KerberosError as exc:
                self.metrics.failures += 1
                log.warning("cannot cancel tokens of deleted %s: %s", ts.ref, exc.problem)

    def _patch(self, ts: TokenSecret, patch: dict[str, Any]) -> None:
        """A merge patch that only applies to the version the action was computed from (else 409)."""
        patch["metadata"]["resourceVersion"] = ts.resource_version
        self.metrics.api_requests += 1
        self.kube.patch_secret(ts.namespace, ts.name, patch)

    def _refresh(self, ts: TokenSecret) -> None:
        self.metrics.api_requests += 1
        try:
            self._track(self.kube.read_secret(ts.namespace, ts.name))
        except KubernetesNotFound:
            self.secrets.pop((ts.namespace, ts.name), None)

    def _report(self, key: Key, reason: str, message: str) -> None:
        """A log line and a Kubernetes Event on the Secret (best effort)."""
        log.warning("%s", message)
        namespace, name = key
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{name}.", "namespace": namespace},
                 "involvedObject": {"apiVersion": "v1", "kind": "Secret", "name": name, "namespace": namespace},
                 "reason": reason, "message": message[:1000], "type": "Warning",
                 "source": {"component": "spark-secrets-renewer"}, "firstTimestamp": now, "lastTimestamp": now,
                 "count": 1}
        try:
            self.metrics.api_requests += 1
            self.kube.core.create_namespaced_event(namespace, event, _preload_content=False)
        except Exception as exc:  # noqa: BLE001 - an Event is a courtesy, never a reason to stop
            log.info("could not record an Event on %s/%s (%s)", namespace, name, type(exc).__name__)

    @staticmethod
    def _seq(ts: TokenSecret) -> str:
        return "sequence " + ",".join(str(i.sequence_number) for i in ts.identifiers[:1])


def duration_text(ms: int) -> str:
    """``ms`` rounded to the largest unit that keeps it a whole number above 1: 20s, 36h, 7d."""
    seconds = round(ms / 1000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 2 * size or (seconds >= size and seconds % size == 0):
            return f"{round(seconds / size)}{unit}"
    return f"{seconds}s"


class KeytabSession:
    """The service's own Kerberos login, from its keytab into a private cache, renewed well before expiry."""

    def __init__(self, principal: str, keytab: Path, ccache: Path, *, refresh_when_left: float = 0.3) -> None:
        self.principal, self.keytab, self.ccache = principal, keytab, ccache
        self.refresh_when_left = refresh_when_left
        self._ticket = keytab_login(principal, keytab, ccache)
        self._lifetime = self._ticket.remaining
        self._auth = SpnegoAuth(self._ticket.credentials)

    def __repr__(self) -> str:
        return f"KeytabSession({self.principal!r}, expires={self._ticket.expires.isoformat()})"

    @property
    def short_name(self) -> str:
        return self._ticket.short_name

    def __call__(self) -> AuthBase:
        if self._ticket.remaining < self._lifetime * self.refresh_when_left:
            self._ticket = keytab_login(self.principal, self.keytab, self.ccache)
            self._lifetime = self._ticket.remaining
            self._auth = SpnegoAuth(self._ticket.credentials)
            log.info("logged in again as %s from the keytab (TGT until %s)", self.principal,
                     self._ticket.expires.isoformat())
        return self._auth


class HealthServer:
    """``/healthz`` (the main loop is alive), ``/readyz`` (every namespace listed), ``/metrics``."""

    def __init__(self, service: RenewService, host: str, port: int) -> None:
        svc = service

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path == "/healthz":
                    ok = time.monotonic() - svc.metrics.heartbeat < 60
                    self._send(200 if ok else 503, "ok\n" if ok else "main loop stalled\n")
                elif self.path == "/readyz":
                    self._send(200 if svc.metrics.ready else 503, "ready\n" if svc.metrics.ready else "listing\n")
                elif self.path == "/metrics":
                    self._send(200, svc.metrics.render(int(svc.clock() * 1000)), "text/plain; version=0.0.4")
                else:
                    self._send(404, "not found\n")

            def _send(self, status: int, body: str, ctype: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="health", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
