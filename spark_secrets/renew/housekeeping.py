"""The renew service's housekeeping, done by the acting replica only: read grants for the jobs'
service accounts (controller mode), and a periodic sweep that gives owner-less Secrets to the driver
pod that mounts them and deletes (or, if pre-created, empties) the ones no pod uses any more."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from spark_secrets.errors import KubernetesConflict, KubernetesError, KubernetesNotFound
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.grants import AccessGrants
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.ownership import ADOPT, DELETE, RELEASE, PodInfo, Verdict, judge
from spark_secrets.secrets.tokensecret import TokenSecret, release_patch

log = logging.getLogger("spark_secrets.renew")

Key = tuple[str, str]
#: Parallel API calls for read grants (controller mode).
GRANT_THREADS = 8
#: How often to look at every Secret for a missing grant (failed ones are retried then).
GRANT_RETRY_S = 30.0


class Housekeeper:
    """Grants and sweeps over the service's view of the Secrets (``secrets``, owned by the main loop)."""

    def __init__(self, kube: KubeClient, secrets: Mapping[Key, TokenSecret], metrics: Metrics, *,
                 report: Callable[[Key, str, str], None], now_ms: Callable[[], int],
                 grants: AccessGrants | None = None, sweep_interval: float = 30.0,
                 orphan_grace_ms: int = 600_000) -> None:
        self.kube, self.secrets, self.metrics = kube, secrets, metrics
        self.report, self.now_ms = report, now_ms
        self.grants = grants
        #: How often to look at the pods that use the Secrets (adopt, clean up); 0 = never.
        self.sweep_interval = sweep_interval
        self.orphan_grace_ms = orphan_grace_ms
        self._granted: dict[Key, str] = {}  # Secret -> uid of the incarnation granted (or being granted)
        self._pool = ThreadPoolExecutor(GRANT_THREADS, thread_name_prefix="grant") if grants else None
        self._queue: set[Key] = set()  # tracked since the last pass (main thread only)
        self._next_grant_pass = 0.0  # a pass over every Secret: on taking the lease, then to retry failures
        self._next_sweep = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Housekeeper(grants={self.grants is not None}, sweep every {self.sweep_interval:.0f} s)"

    def tracked(self, key: Key, new_incarnation: bool) -> None:
        """The main loop saw ``key`` (a new Secret, or a new one under an old name)."""
        if self._pool is not None and new_incarnation:
            self._queue.add(key)

    def run(self) -> None:
        """One turn of the main loop."""
        if not self.metrics.leader:
            self._next_grant_pass = 0.0  # look at every Secret once this replica leads
            return
        if self._pool is not None:
            if time.monotonic() >= self._next_grant_pass:
                self._next_grant_pass = time.monotonic() + GRANT_RETRY_S
                self._queue.update(self.secrets)
            pending, self._queue = self._queue, set()
            for key in pending:
                ts = self.secrets.get(key)
                if ts is not None and self._granted.get(key) != ts.uid:
                    self._granted[key] = ts.uid
                    self._pool.submit(self._grant, ts)
        if self.sweep_interval > 0 and time.monotonic() >= self._next_sweep and self.metrics.ready:
            self._next_sweep = time.monotonic() + self.sweep_interval
            self.sweep()

    # -- grants ----------------------------------------------------------------------------------
    def _grant(self, ts: TokenSecret) -> None:
        """In the grant pool: two independent API calls per Secret, so a burst of new jobs is granted in parallel."""
        assert self.grants is not None
        key = (ts.namespace, ts.name)
        try:
            account = self.grants.grant(ts)
        except Exception as exc:  # noqa: BLE001 - reported, and retried on the next full pass
            with self._lock:
                self.metrics.failures += 1
            log.warning("cannot grant read access to %s: %s", ts.ref, getattr(exc, "problem", type(exc).__name__))
            if self._granted.get(key) == ts.uid:
                del self._granted[key]
            return
        with self._lock:
            self.metrics.grants += 1
        log.info("granted get on %s to service account %s", ts.ref, account)

    def revoke(self, key: Key) -> None:
        if self.grants is None or not self.metrics.leader:
            return
        self._granted.pop(key, None)
        try:
            self.grants.revoke(*key)
            log.info("removed the read grant on %s/%s", *key)
        except KubernetesError as exc:  # the Secret owns the grant: the garbage collector removes it anyway
            log.info("could not remove the read grant on %s/%s: %s", key[0], key[1], exc.problem)

    # -- ownership sweep -------------------------------------------------------------------------
    def sweep(self) -> None:
        """Give owner-less Secrets to the driver pod that mounts them; delete (or, if pre-created, empty)
        the ones no pod uses any more. One pod list per namespace."""
        by_namespace: dict[str, list[TokenSecret]] = {}
        for ts in self.secrets.values():
            by_namespace.setdefault(ts.namespace, []).append(ts)
        now = self.now_ms()
        for namespace, items in by_namespace.items():
            try:
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
                    self.report((ts.namespace, ts.name), "CleanupFailed", f"cannot {verdict.action} {ts.ref}: "
                                                                          f"{exc.problem}")

    def _settle(self, ts: TokenSecret, verdict: Verdict) -> None:
        if verdict.action == ADOPT:
            assert verdict.pod is not None
            self.kube.patch_secret(ts.namespace, ts.name, {"metadata": {
                "resourceVersion": ts.resource_version,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": verdict.pod.name,
                                     "uid": verdict.pod.uid}]}})
            self.metrics.adoptions += 1
            log.info("%s now belongs to driver pod %s (%s)", ts.ref, verdict.pod.name, verdict.reason)
        elif verdict.action == DELETE:
            self.kube.delete_secret(ts.namespace, ts.name, uid=ts.uid)  # the watch then cancels its tokens
            self.metrics.cleanups += 1
            log.info("deleted %s: %s", ts.ref, verdict.reason)
        elif verdict.action == RELEASE:
            self.kube.patch_secret(ts.namespace, ts.name, release_patch(ts.key, ts.resource_version))
            self.metrics.cleanups += 1
            log.info("emptied %s: %s", ts.ref, verdict.reason)
