"""Who a token Secret belongs to (pure): adopt by the driver that mounts it, clean up what no pod uses."""

from __future__ import annotations

import dataclasses

from spark_secrets.secrets.tokensecret import rfc3339
from spark_secrets.renew.ownership import ADOPT, DELETE, KEEP, RELEASE, PodInfo, judge
from spark_secrets.secrets.tokensecret import TokenSecret

from test_renewal_unit import DAY, ISSUED, _secret

MIN = 60_000
GRACE = 10 * MIN
NOW = ISSUED + 3_600_000


def _ts(**changes: object) -> TokenSecret:
    return dataclasses.replace(_secret(ISSUED + DAY), **{"created_ms": ISSUED, **changes})  # type: ignore[arg-type]


def _pod(name: str, mounts: tuple[str, ...] = ("job-hadoop-tokens",), driver: bool = True,
         finished_ms: int | None = None, uid: str | None = None) -> PodInfo:
    return PodInfo(name, uid or f"uid-{name}", driver, frozenset(mounts), finished_ms)


def test_pod_info_reads_secret_volumes_projections_role_and_end() -> None:
    obj = {"metadata": {"name": "d", "uid": "1", "labels": {"spark-role": "driver"}},
           "spec": {"volumes": [{"name": "a", "secret": {"secretName": "s1"}},
                                {"name": "b", "projected": {"sources": [{"secret": {"name": "s2"}}, {"configMap": {}}]}},
                                {"name": "c", "emptyDir": {}}]},
           "status": {"phase": "Succeeded", "containerStatuses": [
               {"state": {"terminated": {"finishedAt": rfc3339(NOW)}}}]}}
    pod = PodInfo.from_object(obj)
    assert (pod.driver, pod.secrets, pod.finished_ms) == (True, frozenset({"s1", "s2"}), NOW)
    assert PodInfo.from_object({"metadata": {"name": "e"}, "status": {"phase": "Running"}}).finished_ms is None


def test_owner_less_secret_mounted_by_a_driver_is_adopted_by_it() -> None:
    verdict = judge(_ts(), [_pod("exec", driver=False), _pod("driver")], NOW, GRACE)
    assert verdict.action == ADOPT and verdict.pod is not None and verdict.pod.name == "driver"


def test_owner_less_unused_secret_waits_out_the_grace_then_goes() -> None:
    assert judge(_ts(created_ms=NOW - GRACE + MIN), [_pod("other", mounts=("x",))], NOW, GRACE).action == KEEP
    assert judge(_ts(created_ms=NOW - GRACE - MIN), [], NOW, GRACE).action == DELETE


def test_secret_whose_owner_pod_is_gone_is_deleted_and_one_whose_owner_lives_is_kept() -> None:
    owned = _ts(owners=(("Pod", "driver", "uid-driver"),))
    assert judge(owned, [], NOW, GRACE).action == DELETE
    assert judge(owned, [_pod("driver", uid="other-uid")], NOW, GRACE).action == DELETE  # same name, new pod
    assert judge(owned, [_pod("driver")], NOW, GRACE).action == KEEP


def test_finished_job_keeps_its_secret_for_the_grace_only() -> None:
    owned = _ts(owners=(("Pod", "driver", "uid-driver"),))
    assert judge(owned, [_pod("driver", finished_ms=NOW - MIN)], NOW, GRACE).action == KEEP
    assert judge(owned, [_pod("driver", finished_ms=NOW - GRACE - MIN)], NOW, GRACE).action == DELETE


def test_secret_owned_by_a_non_pod_is_left_to_kubernetes() -> None:
    assert judge(_ts(owners=(("SparkApplication", "app", "u1"),)), [], NOW, GRACE).action == KEEP


def test_pre_created_secret_is_emptied_not_deleted_once_unused() -> None:
    persistent = _ts(persistent=True)
    assert judge(persistent, [_pod("driver")], NOW, GRACE).action == KEEP
    assert judge(persistent, [], ISSUED + GRACE - MIN, GRACE).action == KEEP
    assert judge(persistent, [], ISSUED + GRACE + MIN, GRACE).action == RELEASE
    assert judge(persistent, [_pod("driver", finished_ms=ISSUED + GRACE)], ISSUED + GRACE + MIN, GRACE).action == KEEP
