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

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("spark_secrets.lease")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LeaderElector:
    """Holds or waits for the Lease ``namespace/name``; :attr:`is_leader` is safe to read any time.

    A leader renews every ``duration / 3`` and stops acting on its own once it has not renewed for
    ``duration`` (so two leaders never act at once, as long as clocks agree within the margin).
    """

    def __init__(self, api_client: k8s.ApiClient, namespace: str, name: str, *, duration: float = 15.0,
                 identity: str | None = None) -> None:
        self.api = k8s.CoordinationV1Api(api_client)
        self.namespace, self.name, self.duration = namespace, name, duration
        self.identity = identity or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self._renewed_at = 0.0  # monotonic time of the last successful acquire/renew
        self._stop = threading.Event()
        self.transitions = 0

    def __repr__(self) -> str:
        return f"LeaderElector({self.namespace}/{self.name}, {self.identity}, leader={self.is_leader})"

    @property
    def is_leader(self) -> bool:
        return time.monotonic() - self._renewed_at < self.duration * 0.9

    def start(self) -> None:
        threading.Thread(target=self._loop, name="lease", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            was = self.is_leader
            try:
                if self.try_acquire_or_renew():
                    self._renewed_at = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - an API outage: keep trying; leadership lapses by itself
                why = ("forbidden: bind the lease Role of conf/rbac/common.yaml to this identity"
                       if getattr(exc, "status", None) == 403 else type(exc).__name__)
                log.warning("cannot renew lease %s/%s (%s)", self.namespace, self.name, why)
            if self.is_leader != was:
                self.transitions += 1
                log.info("%s %s the lease %s/%s", self.identity, "holds" if self.is_leader else "lost",
                         self.namespace, self.name)
            self._stop.wait(self.duration / 3)

    def try_acquire_or_renew(self) -> bool:
        """One round: True when this identity holds the Lease afterwards."""
        now = _now()
        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace),
                               spec=self._spec(now, now, 0))
            try:
                self.api.create_namespaced_lease(self.namespace, body)
                return True
            except ApiException as create_exc:
                if create_exc.status == 409:
                    return False
                raise
        spec = lease.spec or k8s.V1LeaseSpec()
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        expired = renewed is None or (now - renewed).total_seconds() > (spec.lease_duration_seconds or self.duration)
        if holder != self.identity and not expired:
            return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = spec.acquire_time if holder == self.identity and spec.acquire_time else now
        lease.spec = self._spec(acquired, now, transitions)
        try:
            self.api.replace_namespaced_lease(self.name, self.namespace, lease)  # carries resourceVersion
        except ApiException as exc:
            if exc.status == 409:
                return False  # someone else took or renewed it first
            raise
        return True

    def _spec(self, acquired: dt.datetime, renewed: dt.datetime, transitions: int) -> k8s.V1LeaseSpec:
        return k8s.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=int(self.duration),
                               acquire_time=acquired, renew_time=renewed, lease_transitions=transitions)
