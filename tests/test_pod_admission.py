"""What a pod may mount in the shared layouts, asserted by asking the API server (dry runs: admission in
full, nothing stored) with real identities, under ``spark-secrets rbac common``'s pod policy; the same
attempts admitted once the binding only audits (the control); a real pod on the node per shared layout
reads its owner's Secret (an admitted pod really gets the file)."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.kube import rbac
from spark_secrets.check.access import check_pod_policy
from spark_secrets.check.report import FAIL, OK
from spark_secrets.secrets.jobsecret import ANNOTATION_REFERENCES, KIND_JOB_SECRETS
from spark_secrets.kube.client import KubeClient
from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, Testbed
from spark_secrets.testbed.kube import KubeControlPlane
from spark_secrets.testbed.openbao import OpenBao
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, node_pod_template
from spark_secrets.secrets.tokensecret import ANNOTATION_SERVICE_ACCOUNT, LABEL_KIND, LABEL_MANAGED_BY

from renewers import RenewerProcess, wait_until
from podjobs import submit_as_alice
from test_rbac import NAMESPACES, identities, layouts, submit  # noqa: F401 - layouts is a fixture

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


def test_bob_cannot_use_the_bearer_secret_of_alice_s_connect_server_in_the_controller_layout(
        layouts: Testbed, secrets: dict[str, str]) -> None:  # noqa: F811
    """alice's Connect server's bearer token (whoever holds it may run queries as her) is in a Secret named as her job
    secrets: bob's pod may not use it, hers may. The control: under a name of no job's (as it was named before), bob's
    pod gets it."""
    from submit_steps.connectpod import bearer_secret_name

    kube = layouts.kube
    assert kube is not None
    ns, stamp = NAMESPACES["controller"], time.time_ns() % 10**6
    alice, bob = _api(kube.kubeconfig("alice")), _api(kube.kubeconfig("bob"))
    guarded, plain = bearer_secret_name("alice", f"connect-alice-{stamp}"), f"connect-alice-{stamp}-token"
    for name in (guarded, plain):
        alice.create_namespaced_secret(ns, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                            "stringData": {"token": "not-a-real-bearer"}})
    for how in ("volume", "env"):
        allowed, message = _admitted(bob, ns, _pod(guarded, how, "spark-bob"))
        assert not allowed and rbac.POD_POLICY in message and "bob may not" in message, (how, message)
        assert _admitted(alice, ns, _pod(guarded, how, "spark-alice")) == (True, ""), how
        assert _admitted(bob, ns, _pod(plain, how, "spark-bob")) == (True, ""), how  # the control: the test can fail


def test_a_spark_operator_s_driver_pods_with_alice_s_secret_are_refused_in_a_shared_layout(
        layouts: Testbed, secrets: dict[str, str]) -> None:  # noqa: F811
    """The spark-operator's controller creates driver pods as its own service account. In a shared layout that
    account, though RBAC lets it create pods there, may not mount alice's token Secret or run as her job
    account: otherwise anyone who may create a SparkApplication there could use her tokens (README, "With the
    spark-operator"). The control: the same account's pod without them, as the default account, is admitted."""
    kube = layouts.kube
    assert kube is not None
    ns, secret = NAMESPACES["controller"], secrets["controller"]
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "spark-operator"}})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "spark-operator-controller", "namespace": "spark-operator"}})
    kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",  # what its chart makes in job namespaces
                "metadata": {"name": "spark-operator-spark", "namespace": ns}})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "spark-operator-controller-edit", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "ServiceAccount", "name": "spark-operator-controller",
                              "namespace": "spark-operator"}]})
    operator = _api(kube.service_account_kubeconfig("spark-operator", "spark-operator-controller"))
    for what, body in {"alice's Secret as her account": _pod(secret, "volume", "spark-alice"),
                       "alice's Secret in env": _pod(secret, "env", "default"),
                       "her account alone": _pod("unrelated", "volume", "spark-alice")}.items():
        allowed, message = _admitted(operator, ns, body)
        assert not allowed and rbac.POD_POLICY in message, f"the operator's pod ({what}) was admitted: {message}"
    # Its chart's default job account spark-operator-spark reads, to the policy, as the job account of a user
    # "operator-spark"; the control runs as the namespace's default account.
    allowed, message = _admitted(operator, ns, _pod("unrelated", "volume", "spark-operator-spark"))
    assert not allowed and "job account of another user" in message, message
    assert _admitted(operator, ns, _pod("unrelated", "volume", "default")) == (True, "")


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


def test_alice_s_own_jobs_run_to_success_on_the_node_in_every_shared_layout(
        layouts: Testbed, tmp_path: Path) -> None:  # noqa: F811
    """Under the pod policy, alice's real jobs (spark-submit in cluster mode, a driver pod creating an executor
    pod as her layout's account, both mounting her token Secret) run to Succeeded in each shared layout's
    namespace, at once: the policy refuses bob (above) without getting in her way."""
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    if layouts.node is None:
        pytest.skip("needs the kubelet node")
    admin = _api(kube.kubeconfig("admin"))
    scripts = Path(__file__).parent / "scripts"
    shared = ("controller", "precreated", "group")
    for layout in shared:  # what an admin puts in a team's namespace: the realm's krb5.conf; the jobs' code
        for name, data in ((KRB5_CONFIG_MAP, {"krb5.conf": layouts.kdc_required().krb5_conf.read_text()}),
                           (JOBS_CONFIG_MAP, {p.name: p.read_text() for p in sorted(scripts.glob("*.py"))})):
            kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": name, "namespace": NAMESPACES[layout]}, "data": data})
    template = node_pod_template(tmp_path / "template.json", KRB5_CONFIG_MAP)
    renewer = RenewerProcess(layouts, hdfs, tmp_path / "renewer",
                             kubeconfig=identities(layouts, "controller")["renew service"],
                             namespaces=tuple(NAMESPACES[layout] for layout in shared), extra=("--grant-access",))
    results: dict[str, Any] = {}
    apps = {layout: f"own-{layout}-{time.time_ns() % 10**6}" for layout in shared}

    def run(layout: str) -> None:
        account = "spark" if layout == "group" else "spark-alice"
        conf = {"spark.secrets.layout": layout, "spark.secrets.hadoop.filesystems": hdfs.uri,
                "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
                "spark.kubernetes.authenticate.driver.serviceAccountName": account,
                "spark.executor.instances": "1",  # three jobs at once on one node: the driver's pod creation is the point
                "spark.kubernetes.executor.deleteOnTermination": "false"}  # kept to read their specs
        try:
            results[layout] = submit_as_alice(layouts, apps[layout], template, conf, "pod_job.py",
                                      f"/user/alice/{apps[layout]}", "1", namespace=NAMESPACES[layout])
        except BaseException as exc:  # reported below, with the others' outcomes
            results[layout] = exc

    try:
        renewer.wait_ready()
        threads = [threading.Thread(target=run, args=(layout,)) for layout in shared]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for layout in shared:
            ns, app = NAMESPACES[layout], apps[layout]
            proc = results[layout]
            assert not isinstance(proc, BaseException), (layout, proc)
            (driver,) = admin.list_namespaced_pod(ns, label_selector=f"spark-role=driver,spark-app-name={app}").items
            log = admin.read_namespaced_pod_log(driver.metadata.name, ns)
            assert proc.returncode == 0, (layout, proc.stderr[-2000:], log[-2000:])
            assert driver.status.phase == "Succeeded", (layout, driver.status.phase, log[-2000:])
            assert "WROTE AND READ 10000 rows" in log, (layout, log[-2000:])
            executors = admin.list_namespaced_pod(ns, label_selector=(
                f"spark-role=executor,spark-app-selector={driver.metadata.labels['spark-app-selector']}")).items
            probes = {line.split('"pod": "')[1].split('"')[0] for line in log.splitlines() if line.startswith("PROBE ")}
            assert probes == {p.metadata.name for p in executors} and len(probes) == 1, (layout, probes)
            account = "spark" if layout == "group" else "spark-alice"
            assert driver.spec.service_account_name == account
            for pod in executors:
                assert pod.spec.service_account_name == account, (layout, pod.metadata.name)
    finally:
        renewer.stop()
        for layout in shared:
            for pod in admin.list_namespaced_pod(NAMESPACES[layout],
                                                 label_selector=f"spark-app-name={apps[layout]}").items:
                admin.delete_namespaced_pod(pod.metadata.name, NAMESPACES[layout], grace_period_seconds=0)


def _user_policy(user: str) -> str:
    return (f'path "secret/data/users/{user}/*" {{ capabilities = ["read"] }}\n'
            f'path "secret/metadata/users/{user}/*" {{ capabilities = ["read"] }}\n')


def test_in_a_shared_namespace_job_secrets_are_read_as_the_pods_account_with_a_role_per_account(
        layouts: Testbed, openbao: OpenBao, tmp_path: Path) -> None:  # noqa: F811
    """OpenBao with a Kubernetes auth role per job account (``spark-alice`` reads ``secret/users/alice/*``,
    ``spark-bob`` reads bob's) and the renew service's ``--vault-role {account}``: alice's hand-made job-secrets
    Secret in the controller layout's namespace that names bob's account and bob's path, used by her pod (as
    ``spark-alice``: the pod policy lets her run as no one else), gets none of bob's values; bob's own Secret
    gets his (so reading as the annotation's account would have leaked it) and alice's own rotates (controls)."""
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    ns = NAMESPACES["controller"]
    bao = openbao.admin()
    values = {"alice": ("alice-pw-1-5d2e", "alice-pw-2-9b7c"), "bob": ("bob-pw-1-c3a8", "bob-pw-2-0f61")}
    for user in ("alice", "bob"):
        bao.sys.create_or_update_policy(f"users-{user}", _user_policy(user))
        openbao.enable_kubernetes_auth(kube, f"spark-{user}", ns, f"spark-{user}", policies=(f"users-{user}",))
        bao.secrets.kv.v2.create_or_update_secret(f"users/{user}/db", {"password": values[user][0]})
    renewer_account = identities(layouts, "controller")["renew service"]
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "spark-secrets-renewer-vault", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "spark-secrets-renewer-vault"},
                "subjects": [{"kind": "ServiceAccount", "name": rbac.RENEWER_ACCOUNT,
                              "namespace": rbac.RENEWER_NAMESPACE}]})
    stamp = time.time_ns() % 10**6
    # (creator, Secret, path read, account the annotation names, account its pod runs as)
    cases = {"attack": ("alice", f"alice--attack-{stamp}-job-secrets", "bob", "spark-bob", "spark-alice"),
             "alice": ("alice", f"alice--own-{stamp}-job-secrets", "alice", "spark-alice", "spark-alice"),
             "bob": ("bob", f"bob--own-{stamp}-job-secrets", "bob", "spark-bob", "spark-bob")}
    apis = {user: _api(kube.kubeconfig(user)) for user in ("alice", "bob")}
    admin = _api(kube.kubeconfig("admin"))
    made: list[tuple[str, str]] = []
    for what, (creator, secret, path, named, runs_as) in cases.items():
        # The pod first (as a driver exists before the service reads), then the Secret it mounts.
        pod = _pod(secret, "volume", runs_as)
        pod["metadata"] = {"name": f"{what}-{stamp}"}
        apis[creator].create_namespaced_pod(ns, pod)
        made.append(("pod", f"{what}-{stamp}"))
        apis[creator].create_namespaced_secret(ns, {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret, "labels": {LABEL_MANAGED_BY: "spark-secrets", LABEL_KIND: KIND_JOB_SECRETS},
                         "annotations": {ANNOTATION_REFERENCES: json.dumps(
                                             {"file.db": f"vault:secret/users/{path}/db#password"}),
                                         ANNOTATION_SERVICE_ACCOUNT: named}}})
        made.append(("secret", secret))
    # bob's pod as alice's account, or mounting her Secret, is refused (the policy this rests on).
    assert not _admitted(apis["bob"], ns, _pod(cases["alice"][1], "volume", "spark-bob"))[0]
    assert not _admitted(apis["bob"], ns, _pod("unrelated", "volume", "spark-alice"))[0]

    def value(secret: str) -> bytes:
        return base64.b64decode((admin.read_namespaced_secret(secret, ns).data or {}).get("db", ""))

    def events(secret: str) -> list[Any]:
        return [e for e in admin.list_namespaced_event(ns).items if e.involved_object.name == secret]

    renewer = RenewerProcess(layouts, hdfs, tmp_path / "renewer", kubeconfig=renewer_account, namespaces=(ns,),
                             extra=("--vault-role", "{account}", "--vault-address", openbao.address,
                                    "--secrets-interval", "5s"))
    try:
        renewer.wait_ready()
        wait_until("bob's own Secret did not get his value (the control: his account's role reads it)",
                   lambda: value(cases["bob"][1]) == values["bob"][0].encode(), 60)
        wait_until("alice's own Secret did not get her value", lambda: value(cases["alice"][1]) == values["alice"][0].encode(),
                   60)
        wait_until("no RotationFailed Event on alice's Secret naming bob's account and path",
                   lambda: any(e.reason == "RotationFailed" for e in events(cases["attack"][1])), 60)
        failed = next(e for e in events(cases["attack"][1]) if e.reason == "RotationFailed")
        assert f"secret/users/bob/db to service account {ns}/spark-alice" in failed.message, failed.message
        assert "spark-bob" not in failed.message, failed.message
        assert not (admin.read_namespaced_secret(cases["attack"][1], ns).data or {})
        # alice's own job rotates: a new KV version reaches her Secret (the control of the refusal).
        bao.secrets.kv.v2.create_or_update_secret("users/alice/db", {"password": values["alice"][1]})
        bao.secrets.kv.v2.create_or_update_secret("users/bob/db", {"password": values["bob"][1]})
        wait_until("alice's rotated value did not reach her Secret",
                   lambda: value(cases["alice"][1]) == values["alice"][1].encode(), 60)
        time.sleep(6)  # at least one more round: the attack Secret still has nothing
        assert not (admin.read_namespaced_secret(cases["attack"][1], ns).data or {})
        seen = renewer.log.read_text() + json.dumps([e.to_dict() for c in cases.values() for e in events(c[1])],
                                                     default=str)
        for pair in values.values():
            for secret_value in pair:
                assert secret_value not in seen, "a secret value reached the service's log or an Event"
    finally:
        renewer.stop()
        for kind, name in made:
            if kind == "pod":
                admin.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            else:
                admin.delete_namespaced_secret(name, ns)
