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


def test_a_standby_looks_again_just_after_another_holder_s_lease_runs_out() -> None:
    """A crashed leader's lease is taken over once it runs out, not up to a third of the duration later."""
    kube = _Kube("other")
    kube.lease["spec"]["leaseDurationSeconds"] = 6
    kube.lease["spec"]["renewTime"] = _micro(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    standby = LeaderElector(kube, "ns", "l", duration=6.0, identity="me")  # type: ignore[arg-type]
    assert standby.try_acquire_or_renew() is False
    assert 0.9 < standby._next_check() < 1.3  # about one second left of the other's lease, not 2 s
    assert standby._next_check() == 2.0  # nothing seen since: the usual third of the duration
    kube.lease["spec"]["renewTime"] = _micro(dt.datetime.now(dt.timezone.utc))
    assert standby.try_acquire_or_renew() is False
    assert standby._next_check() == 2.0  # a fresh lease: the usual check comes first
