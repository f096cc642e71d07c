"""The Lease's promise (injected API answers): a replica's term counts from the renewal it wrote, not from
when a stalled request returned, and ends at once when it sees another holder."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from spark_secrets.renew.lease import LeaderElector, _micro


class _Kube:
    def __init__(self, holder: str, stall: float = 0.0) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        self.lease: dict[str, Any] = {"metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
                                      "spec": {"holderIdentity": holder, "leaseDurationSeconds": 1,
                                               "acquireTime": _micro(now), "renewTime": _micro(now)}}
        self.stall = stall
        self.elector: LeaderElector | None = None

    def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        return self.lease

    def replace_lease(self, namespace: str, lease: dict[str, Any]) -> None:
        time.sleep(self.stall)  # the API server answers late
        self.lease = lease
        assert self.elector is not None
        self.elector.stop()  # one round


def _round(kube: _Kube, identity: str = "me") -> LeaderElector:
    elector = LeaderElector(kube, "ns", "l", duration=1.0, identity=identity)  # type: ignore[arg-type]
    kube.elector = elector
    elector._loop()
    return elector


def test_a_renewal_that_stalls_past_the_term_does_not_make_a_leader() -> None:
    assert _round(_Kube("me")).is_leader  # the control: answered at once, it leads
    assert not _round(_Kube("me", stall=1.0)).is_leader  # the others already judge the stamp expired


def test_seeing_another_holder_ends_leadership_at_once() -> None:
    kube = _Kube("me")
    elector = _round(kube)
    assert elector.is_leader
    kube.lease["spec"]["holderIdentity"] = "other"
    kube.lease["spec"]["renewTime"] = _micro(dt.datetime.now(dt.timezone.utc))
    elector._stop.clear()
    assert elector.try_acquire_or_renew() is False
    assert not elector.is_leader
