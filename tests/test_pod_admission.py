"""What a pod may mount in the shared layouts, asserted by asking the API server (dry runs: admission in
full, nothing stored) with real identities, under ``spark-secrets rbac common``'s pod policy; the same
attempts admitted once the binding only audits (the control); a real pod on the node per shared layout
reads its owner's Secret (an admitted pod really gets the file)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets import rbac
from spark_secrets.doctor.access import check_pod_policy
from spark_secrets.doctor.report import FAIL, OK
from spark_secrets.kube import KubeClient
from spark_secrets.testbed.bed import Testbed
from spark_secrets.testbed.kube import KubeControlPlane

from renewers import wait_until
from test_rbac import NAMESPACES, layouts, submit  # noqa: F401 - layouts is a fixture

pytestmark = pytest.mark.testbed

BINDING = f"/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/{rbac.POD_POLICY}"


def _api(kubeconfig: Path) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(kubeconfig)))


def _pod(secret: str, how: str, account: str, image: str = "spark:absent") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "job", "image": image, "command": ["sh", "-c", "sleep 1"]}
    spec: dict[str, Any] = {"serviceAccountName": account, "restartPolicy": "Never", "containers": [container]}
    if how == "volume":
        spec["volumes"] = [{"name": "t", "secret": {"secretName": secret}}]
        container["volumeMounts"] = [{"name": "t", "mountPath": "/mnt/t"}]
    elif how == "projected":
        spec["volumes"] = [{"name": "t", "projected": {"sources": [{"secret": {"name": secret}}]}}]
    elif how == "env":
        container["env"] = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": secret, "key": "hadoop-tokens"}}}]
    elif how == "envFrom":
        spec["initContainers"] = [{"name": "init", "image": image, "envFrom": [{"secretRef": {"name": secret}}]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "probe-"}, "spec": spec}


def _admitted(api: k8s.CoreV1Api, namespace: str, body: dict[str, Any]) -> tuple[bool, str]:
    try:
        api.create_namespaced_pod(namespace, body, dry_run="All", _preload_content=False)
        return True, ""
    except ApiException as exc:
        if exc.status == 403:
            return False, str(exc.body)
        raise


def _set_actions(kube: KubeControlPlane, actions: list[str], probe: Any) -> None:
    body = kube.request("GET", BINDING)
    body["spec"]["validationActions"] = actions
    kube.request("PUT", BINDING, body)
    wait_until(f"the pod policy's {actions} did not take effect", lambda: probe() == (actions == ["Audit"]), 30)


@pytest.fixture(scope="module")
def secrets(layouts: Testbed, monkeypatch_module: pytest.MonkeyPatch) -> dict[str, str]:  # noqa: F811
    """alice's token Secret in each shared layout, made by her real submission (named with her as owner)."""
    made = {layout: submit(layouts, layout, monkeypatch_module, app=f"pods-{layout}")
            for layout in ("controller", "precreated", "group")}
    assert made["controller"].startswith("alice--") and made["precreated"] == "hadoop-tokens-alice"
    return made


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.mark.parametrize("layout", ["controller", "precreated"])
def test_bob_cannot_mount_use_or_run_as_alice_s_job_in_a_shared_layout(
        layouts: Testbed, secrets: dict[str, str], layout: str) -> None:  # noqa: F811
    kube = layouts.kube
    assert kube is not None
    ns, secret = NAMESPACES[layout], secrets[layout]
    alice, bob = _api(kube.kubeconfig("alice")), _api(kube.kubeconfig("bob"))
    attempts = {how: _pod(secret, how, "spark-bob") for how in ("volume", "projected", "env", "envFrom")}
    attempts["as alice's account"] = _pod("unrelated", "volume", "spark-alice")
    for what, body in attempts.items():
        allowed, message = _admitted(bob, ns, body)
        assert not allowed, f"bob's pod ({what}) was admitted in {ns}"
        assert rbac.POD_POLICY in message and "bob may not" in message, message
    # The controls: alice's own pod, as her account, with her Secret in every way, is admitted.
    for how in ("volume", "projected", "env", "envFrom"):
        assert _admitted(alice, ns, _pod(secret, how, "spark-alice")) == (True, ""), how
    # Her job account creating executors (the driver does) may too; bob's account may not.
    driver = _api(kube.service_account_kubeconfig(ns, "spark-alice"))
    assert _admitted(driver, ns, _pod(secret, "volume", "spark-alice")) == (True, "")
    allowed, message = _admitted(_api(kube.service_account_kubeconfig(ns, "spark-bob")), ns,
                                 _pod(secret, "volume", "spark-bob"))
    assert not allowed and "may not mount a job Secret of another user" in message, message

    # Without the policy's Deny (the binding only audits) the same attempts are admitted: the test can fail.
    def bob_admitted() -> bool:
        return _admitted(bob, ns, attempts["volume"])[0]
    alice_client = KubeClient.from_config(str(kube.kubeconfig("alice")))
    found = check_pod_policy(alice_client, ns, layout)
    assert found is not None and found.status == OK, found  # doctor, as alice
    try:
        _set_actions(kube, ["Audit"], bob_admitted)
        for what, body in attempts.items():
            assert _admitted(bob, ns, body)[0], f"without the policy bob's pod ({what}) was refused"
        found = check_pod_policy(alice_client, ns, layout)
        assert found is not None and found.status == FAIL and "spark-secrets rbac common" in found.fix, found
    finally:
        _set_actions(kube, ["Deny"], bob_admitted)


def test_in_the_group_layout_members_share_on_purpose_and_outsiders_create_no_pods(
        layouts: Testbed, secrets: dict[str, str]) -> None:  # noqa: F811
    """No pod policy there: members read each other's token Secrets through the API already, so mounting them
    gives nothing more; a user outside the group may create no pod at all (RBAC)."""
    kube = layouts.kube
    assert kube is not None
    ns = NAMESPACES["group"]
    assert _admitted(_api(kube.kubeconfig("bob")), ns, _pod(secrets["group"], "volume", "spark"))[0]
    with pytest.raises(ApiException) as refused:
        _api(kube.kubeconfig("carol")).create_namespaced_pod(ns, _pod(secrets["group"], "volume", "spark"),
                                                             dry_run="All")
    assert refused.value.status == 403 and rbac.POD_POLICY not in str(refused.value.body)


@pytest.mark.parametrize("layout", ["controller", "precreated"])
def test_an_admitted_pod_on_the_node_reads_its_owner_s_secret(
        layouts: Testbed, secrets: dict[str, str], layout: str) -> None:  # noqa: F811
    kube = layouts.kube
    assert kube is not None
    if layouts.node is None:
        pytest.skip("needs the kubelet node")
    ns = NAMESPACES[layout]
    admin = _api(kube.kubeconfig("admin"))
    body = _pod(secrets[layout], "volume", "spark-alice", image=layouts.image("spark"))
    body["metadata"] = {"name": f"reads-{layout}"}
    body["spec"]["containers"][0]["command"] = ["sh", "-c", "test -s /mnt/t/hadoop-tokens && echo READ"]
    _api(kube.kubeconfig("alice")).create_namespaced_pod(ns, body)
    try:
        wait_until("the pod did not finish", lambda: admin.read_namespaced_pod(f"reads-{layout}", ns).status.phase
                   in ("Succeeded", "Failed"), 120)
        assert admin.read_namespaced_pod(f"reads-{layout}", ns).status.phase == "Succeeded"
        assert admin.read_namespaced_pod_log(f"reads-{layout}", ns).strip() == "READ"
    finally:
        admin.delete_namespaced_pod(f"reads-{layout}", ns, grace_period_seconds=0)
        time.sleep(1)
