"""What the renew service counts, exported with ``prometheus_client``.

The main loop updates plain integers (no locks on the hot path); a custom collector turns them into
metric families when ``/metrics`` is scraped, so the exposition format, escaping and content
negotiation are the library's.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

PREFIX = "spark_secrets"
#: At most this many (namespace, app) series of ``seconds_until_expiry``: those nearest expiry, which
#: are the ones an alert is about (a label per Secret would grow without bound).
EXPIRY_SERIES = 200

#: (attribute, name without prefix and suffix, help) of every counter.
COUNTERS = (
    ("renewals", "renewals", "Successful token renewals"),
    ("standby_renewals", "standby_renewals", "Token renewals by a standby replica for a late leader (it writes nothing)"),
    ("reissues", "reissues", "Tokens re-issued before their max date"),
    ("cancellations", "cancellations", "Tokens cancelled after their Secret was deleted"),
    ("failures", "failures", "Failed renewals, re-issues or cancellations"),
    ("refusals", "refusals", "Token Secrets refused: owner not bound to their creator, or tokens not genuine"),
    ("relists", "relists", "Full re-lists of token Secrets (start, 410 Gone, errors)"),
    ("adoptions", "adoptions", "Owner-less Secrets given to the driver pod that mounts them"),
    ("cleanups", "cleanups", "Secrets no pod uses any more, deleted or emptied"),
    ("grants", "grants", "Read grants made for jobs' service accounts (controller mode)"),
    ("secret_rotations", "secret_rotations", "Job-secrets Secrets updated to new OpenBao/Vault KV versions"),
    ("api_requests", "api_requests", "Kubernetes API requests made for actions"),
    ("api_writes", "api_writes", "Kubernetes API writes made for actions (patches, deletes, Events, grants)"),
)


@dataclasses.dataclass
class Metrics:
    """The service's counters and gauges, as plain values."""

    def count(self, kind: str, operation: str) -> None:
        """One token of ``kind`` renewed, obtained or cancelled."""
        self.by_kind[kind, operation] = self.by_kind.get((kind, operation), 0) + 1

    def api_call(self, write: bool) -> None:
        """One Kubernetes API request (the client's :attr:`~spark_secrets.kube.client.KubeClient.on_request`),
        from any thread: the main loop, the grant pool."""
        with self._lock:
            self.api_requests += 1
            self.api_writes += write

    renewals: int = 0
    #: Secrets whose tokens a standby renewed because the leader was late (:mod:`.standby`).
    standby_renewals: int = 0
    reissues: int = 0
    cancellations: int = 0
    failures: int = 0
    refusals: int = 0
    relists: int = 0
    adoptions: int = 0
    cleanups: int = 0
    grants: int = 0
    secret_rotations: int = 0
    api_requests: int = 0
    api_writes: int = 0
    tracked: int = 0
    nearest_expiry_ms: int | None = None
    #: ``((namespace, app), earliest expiry ms)`` of the :data:`EXPIRY_SERIES` pairs nearest expiry.
    expiry_by_app: list[tuple[tuple[str, str], int]] = dataclasses.field(default_factory=list)
    #: Token operations by (kind, operation): ("hdfs", "renew"), ("kms", "cancel"), ...
    by_kind: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    ready: bool = False
    leader: bool = False
    heartbeat: float = dataclasses.field(default_factory=time.monotonic)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)


class MetricsCollector(Collector):
    """Reads :class:`Metrics` at scrape time."""

    def __init__(self, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.metrics, self.clock = metrics, clock

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        for attr, name, text in COUNTERS:
            family = CounterMetricFamily(f"{PREFIX}_{name}", text)
            family.add_metric([], getattr(m, attr))
            yield family
        until = (m.nearest_expiry_ms / 1000 - self.clock()) if m.nearest_expiry_ms else math.nan
        for name, text, value in (("tokens_tracked", "Token Secrets being kept alive", m.tracked),
                                  ("leader", "1 when this replica holds the lease and acts", int(m.leader)),
                                  ("ready", "1 once every watched namespace has been listed", int(m.ready)),
                                  ("seconds_until_nearest_expiry", "Time left on the token closest to expiring",
                                   until)):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", text, value=value)
        ops = CounterMetricFamily(f"{PREFIX}_token_operations", "Tokens renewed, obtained or cancelled, by token "
                                  "kind (hdfs, kms, ...) and operation", labels=["kind", "operation"])
        for (kind, operation), count in sorted(m.by_kind.items()):
            ops.add_metric([kind, operation], count)
        yield ops
        by_app = GaugeMetricFamily(f"{PREFIX}_seconds_until_expiry",
                                   f"Time left on the earliest-expiring token of each job (namespace, app); the "
                                   f"{EXPIRY_SERIES} nearest expiry", labels=["namespace", "app"])
        now = self.clock()
        for (namespace, app), expiry_ms in m.expiry_by_app:
            by_app.add_metric([namespace, app], expiry_ms / 1000 - now)
        yield by_app


def registry_for(metrics: Metrics, clock: Callable[[], float] = time.time) -> CollectorRegistry:
    """A registry of its own (not the process-global one), so several services in one process never clash."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector(metrics, clock))
    return registry
