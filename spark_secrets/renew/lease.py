"""Leader election over a ``coordination.k8s.io/v1`` Lease, so that of several renew-service
replicas exactly one acts at a time (the others keep their caches warm and take over when the
leader's lease runs out)."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid

from typing import Any

from spark_secrets.errors import KubernetesConflict, KubernetesForbidden, KubernetesNotFound
from spark_secrets.kube.client import KubeClient

log = logging.getLogger("spark_secrets.renew")

#: What the holder writes into its Lease, so that ``spark-secrets doctor`` can tell a user which
#: renewer principal tokens must name and whether the service may work in the job's namespace.
LEASE_PRINCIPAL = "spark-secrets.io/principal"
LEASE_USER = "spark-secrets.io/kubernetes-user"
LEASE_GROUPS = "spark-secrets.io/kubernetes-groups"
LEASE_NAMESPACES = "spark-secrets.io/namespaces"
#: Where its ``/readyz`` (and ``/metrics``) answer, as the holder sees itself.
LEASE_HEALTH = "spark-secrets.io/health"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LeaderElector:
    """Holds or waits for the Lease ``namespace/name``; :attr:`is_leader` is safe to read any time.

    A leader renews every ``duration / 3`` and stops acting on its own once it has not renewed for
    ``duration`` (so two leaders never act at once, as long as clocks agree within the margin).
    """

    def __init__(self, kube: KubeClient, namespace: str, name: str, *, duration: float = 15.0,
                 identity: str | None = None, annotations: dict[str, str] | None = None) -> None:
        self.kube = kube
        #: Written into the Lease by its holder: who the service is, for ``spark-secrets doctor``.
        self.annotations = dict(annotations or {})
        self.namespace, self.name, self.duration = namespace, name, duration
        self.identity = identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self._renewed_at = 0.0  # monotonic time of the last successful acquire/renew
        self._stop = threading.Event()
        self.transitions = 0
        #: Monotonic time when another holder's lease runs out, as last seen (None: not seen).
        self._others_until: float | None = None

    def __repr__(self) -> str:
        return f"LeaderElector({self.namespace}/{self.name}, {self.identity}, leader={self.is_leader})"

    @property
    def is_leader(self) -> bool:
        return time.monotonic() - self._renewed_at < self.duration * 0.9

    def start(self) -> None:
        threading.Thread(target=self._loop, name="lease", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def release(self) -> None:
        """Stop, and give the Lease up if this identity holds it (as client-go's ReleaseOnCancel does): a
        standby then takes over at its next check instead of waiting the lease out. Call it only once this
        replica no longer acts."""
        self._stop.set()
        self._renewed_at = 0.0
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro(_now()))
            lease["spec"] = spec
            self.kube.replace_lease(self.namespace, lease)  # carries resourceVersion: a taken lease stays taken
            log.info("%s released the lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as exc:  # noqa: BLE001 - the lease then runs out by itself
            log.info("could not release the lease %s/%s (%s)", self.namespace, self.name,
                     getattr(exc, "problem", type(exc).__name__))

    def _loop(self) -> None:
        while not self._stop.is_set():
            was = self.is_leader
            # The Lease says the renewal happened when the request was made, not when it returned: the
            # other replicas judge from that stamp, so this one's term is counted from it too (a request
            # that stalls eats into the term instead of extending it past what the others see).
            started = time.monotonic()
            try:
                if self.try_acquire_or_renew():
                    self._renewed_at = started
            except Exception as exc:  # noqa: BLE001 - an API outage: keep trying; leadership lapses by itself
                why = ("forbidden: bind the lease Role of conf/rbac/common.yaml to this identity"
                       if isinstance(exc, KubernetesForbidden) else getattr(exc, "problem", type(exc).__name__))
                log.warning("cannot renew lease %s/%s (%s)", self.namespace, self.name, why)
            if self.is_leader != was:
                self.transitions += 1
                log.info("%s %s the lease %s/%s", self.identity, "holds" if self.is_leader else "lost",
                         self.namespace, self.name)
            self._stop.wait(self._next_check())

    def _next_check(self) -> float:
        """A holder renews every third of the duration; a standby looks again then, or just after another
        holder's lease runs out if that is sooner, so a takeover after a crash waits for the lease alone."""
        wait = self.duration / 3
        if not self.is_leader and self._others_until is not None:
            wait = min(wait, max(0.05, self._others_until - time.monotonic() + 0.05))
        self._others_until = None
        return wait

    def try_acquire_or_renew(self) -> bool:
        """One round: True when this identity holds the Lease afterwards."""
        now = _now()
        try:
            lease = self.kube.read_lease(self.namespace, self.name)
        except KubernetesNotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace, "annotations": self.annotations},
                    "spec": self._spec(now, now, 0)}
            try:
                self.kube.create_lease(self.namespace, body)
                return True
            except KubernetesConflict:
                return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = parse_micro_time(spec.get("renewTime") or spec.get("acquireTime"))
        expired = renewed is None or (now - renewed).total_seconds() > (spec.get("leaseDurationSeconds") or self.duration)
        if holder != self.identity and not expired:
            self._renewed_at = 0.0  # another holder: stop acting now, not when this replica's term runs out
            assert renewed is not None
            lasts = float(spec.get("leaseDurationSeconds") or self.duration)
            self._others_until = time.monotonic() + lasts - (now - renewed).total_seconds()
            return False
        transitions = (spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquired = parse_micro_time(spec.get("acquireTime")) if holder == self.identity and spec.get("acquireTime") else now
        lease["spec"] = self._spec(acquired or now, now, transitions)
        meta = lease.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}), **self.annotations}
        try:
            self.kube.replace_lease(self.namespace, lease)  # carries resourceVersion
        except KubernetesConflict:
            return False  # someone else took or renewed it first
        return True

    def _spec(self, acquired: dt.datetime, renewed: dt.datetime, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration),
                "acquireTime": _micro(acquired), "renewTime": _micro(renewed), "leaseTransitions": transitions}


def _micro(stamp: dt.datetime) -> str:
    """A Lease's MicroTime: RFC 3339 with microseconds, UTC."""
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str | None) -> dt.datetime | None:
    """A Lease's MicroTime (or None for none)."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
