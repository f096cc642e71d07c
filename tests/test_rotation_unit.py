"""Whom the job-secrets rotator reads as: the account the job's pods run as, never the Secret's annotation
(injected API answers; the real OpenBao and pods: test_jobsecrets.py, test_pods.py)."""

from __future__ import annotations

from typing import Any

from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.rotation import SecretRotator, secrets_used
from spark_secrets.jobsecrets.vault import VaultConfig


def _pod(name: str, uid: str, account: str, secret: str, how: str = "volume") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c"}
    spec: dict[str, Any] = {"serviceAccountName": account, "containers": [container]}
    if how == "volume":
        spec["volumes"] = [{"name": "v", "secret": {"secretName": secret}}]
    elif how == "projected":
        spec["volumes"] = [{"name": "v", "projected": {"sources": [{"configMap": {"name": "x"}},
                                                                   {"secret": {"name": secret}}]}}]
    elif how == "env":
        container["env"] = [{"name": "E", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]
    else:
        spec["initContainers"] = [{"name": "i", "envFrom": [{"secretRef": {"name": secret}}]}]
    return {"metadata": {"name": name, "uid": uid}, "spec": spec}


class _Kube:
    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        (pod,) = [p for p in self.pods if p["metadata"]["name"] == name]
        return pod

    def list_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.pods


def _rotator(pods: list[dict[str, Any]], reports: list[str]) -> SecretRotator:
    return SecretRotator(_Kube(pods), VaultConfig(address="http://127.0.0.1:1", role="r"),  # type: ignore[arg-type]
                         namespaces=["team"], metrics=Metrics(),
                         report=lambda key, reason, message, kind: reports.append(message))


def _meta(owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "team", "name": "job-s", "annotations": {
        "spark-secrets.io/service-account": "spark-bob"}}  # the writer's word: never used
    if owner:
        meta["ownerReferences"] = [{"kind": "Pod", "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
    return meta


def test_every_way_a_pod_uses_a_secret_is_seen() -> None:
    for how in ("volume", "projected", "env", "envFrom"):
        assert secrets_used(_pod("p", "u", "a", "job-s", how)) == {"job-s"}, how


def test_the_owning_driver_pod_that_mounts_the_secret_names_the_account() -> None:
    driver = _pod("driver", "u1", "spark-alice", "job-s")
    assert _rotator([driver], [])._job_account(_meta(driver)) == "spark-alice"


def test_an_owner_that_does_not_mount_it_or_a_stale_uid_counts_for_nothing() -> None:
    bobs = _pod("bobs-driver", "u2", "spark-bob", "bobs-s")  # alice made her Secret point at bob's pod
    assert _rotator([bobs], [])._job_account(_meta(bobs)) is None
    stale = {**bobs, "metadata": {"name": "bobs-driver", "uid": "other"}}
    executor = _pod("executor", "u3", "spark-alice", "job-s")
    assert _rotator([bobs, executor], [])._job_account(_meta(stale)) == "spark-alice"  # the pods that mount it


def test_pods_of_two_accounts_mounting_it_are_reported_and_nothing_is_read() -> None:
    reports: list[str] = []
    pods = [_pod("a", "u4", "spark-alice", "job-s"), _pod("b", "u5", "spark-bob", "job-s", "env")]
    assert _rotator(pods, reports)._job_account(_meta()) is None
    assert reports and "spark-alice, spark-bob" in reports[0]
    assert _rotator([], [])._job_account(_meta()) is None  # no pod yet: nothing, not the annotation
