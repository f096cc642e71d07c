"""The access table of every RBAC layout, asserted cell by cell on the real API server with real
identities: users by static token, service accounts by TokenRequest. Token Secrets are made by real
submissions (alice's TGT, delegation tokens from the secure NameNode) under each layout's conventions.

Allowed actions must succeed and every other one must get 403. Writes are dry runs (the API server
authorizes them in full, then stores nothing), so one Secret serves every cell.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.kube import rbac
from spark_secrets.cli.main import build_parser
from spark_secrets.cli.rbac import rbac_yaml
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.kube.client import KubeClient
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.spark import cluster_submit_argv, spark_env
from submit_steps.submission import Submission

from renewers import RenewerProcess, wait_until

pytestmark = pytest.mark.testbed

ACTIONS = ("create", "get", "list", "patch", "delete")
RENEW_SERVICE = {"get", "list", "patch", "delete"}
CONF_RBAC = Path(__file__).resolve().parent.parent / "conf" / "rbac"
NAMESPACES = {"namespace-per-user": "spark-alice", "group": "spark-team-a", "precreated": "spark-team-a-tokens",
              "controller": "spark-jobs"}

#: layout -> identity -> what it may do to alice's token Secret (everything else must be 403);
#: ``create`` is making a new Secret in that namespace.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "namespace-per-user": {"owner": {"create"}, "owner's pods": {"get"}, "other user": set(),
                           "other user's pods": set(), "renew service": RENEW_SERVICE},
    # Group members see each other's tokens (the layout's point); users outside the group see nothing.
    "group": {"owner": {"create", "get", "list"}, "group member": {"create", "get", "list"},
              "owner's pods": {"get", "list"}, "other user": set(), "other user's pods": set(),
              "renew service": RENEW_SERVICE},
    # The owner fills her pre-created Secret (patch), she creates none.
    "precreated": {"owner": {"patch"}, "owner's pods": {"get"}, "other user": set(), "other user's pods": set(),
                   "renew service": RENEW_SERVICE},
    # Before the renew service grants anything (see the controller test for after). In the shared namespace
    # every user creates Secrets of their own; nobody but the renew service can touch alice's.
    "controller": {"owner": {"create"}, "owner's pods": set(), "other user": {"create"}, "other user's pods": set(),
                   "renew service": RENEW_SERVICE},
}


def _api(kubeconfig: Path) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(kubeconfig)))


def attempt(api: k8s.CoreV1Api, action: str, namespace: str, name: str) -> bool:
    """Whether ``action`` on Secret ``name`` is allowed (True) or forbidden (False); anything else raises."""
    try:
        if action == "get":
            api.read_namespaced_secret(name, namespace, _preload_content=False)
        elif action == "list":
            api.list_namespaced_secret(namespace, _preload_content=False)
        elif action == "create":
            body = {"metadata": {"name": f"probe-{time.monotonic_ns()}"}, "data": {"k": "dg=="}}
            api.create_namespaced_secret(namespace, body, dry_run="All", _preload_content=False)
        elif action == "patch":
            api.patch_namespaced_secret(name, namespace, {"metadata": {"annotations": {"probe": "x"}}}, dry_run="All",
                                        _preload_content=False)
        elif action == "delete":
            api.delete_namespaced_secret(name, namespace, dry_run="All", _preload_content=False)
        return True
    except ApiException as exc:
        if exc.status == 403:
            return False
        raise


def _get_status(api: k8s.CoreV1Api, namespace: str, name: str) -> int:
    """The HTTP status of a get: 403 once access is gone, 404 if still allowed but the Secret is not there."""
    try:
        api.read_namespaced_secret(name, namespace, _preload_content=False)
        return 200
    except ApiException as exc:
        return int(exc.status)


def allowed(api: k8s.CoreV1Api, namespace: str, name: str) -> set[str]:
    return {a for a in ACTIONS if attempt(api, a, namespace, name)}


@pytest.fixture(scope="module")
def layouts(testbed: Testbed) -> Testbed:
    """Every layout applied as an admin would, the renew keytab Secret in place."""
    kube = testbed.kube
    assert kube is not None
    manifests = [*rbac.common(), *rbac.namespace_per_user(["alice", "bob"]), *rbac.group("team-a"),
                 *rbac.group("team-b"), *rbac.precreated("team-a", ["alice", "bob"], namespace=NAMESPACES["precreated"]),
                 *rbac.controller(NAMESPACES["controller"], ["alice", "bob"])]
    for manifest in manifests:
        kube.apply(manifest)
    kube.apply({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": rbac.KEYTAB_SECRET, "namespace": rbac.RENEWER_NAMESPACE},
                "data": {"renewer.keytab": base64.b64encode(testbed.renewer_keytab.read_bytes()).decode()}})
    return testbed


def identities(bed: Testbed, layout: str) -> dict[str, Path]:
    """The real identities behind each column of the table, for ``layout``."""
    kube = bed.kube
    assert kube is not None
    ns = NAMESPACES[layout]
    sa = kube.service_account_kubeconfig
    renewer = sa(rbac.RENEWER_NAMESPACE, rbac.RENEWER_ACCOUNT)
    if layout == "namespace-per-user":
        return {"owner": kube.kubeconfig("alice"), "owner's pods": sa("spark-alice", "spark"),
                "other user": kube.kubeconfig("bob"), "other user's pods": sa("spark-bob", "spark"),
                "renew service": renewer}
    if layout == "group":
        return {"owner": kube.kubeconfig("alice"), "group member": kube.kubeconfig("bob"),
                "owner's pods": sa(ns, "spark"), "other user": kube.kubeconfig("carol"),
                "other user's pods": sa("spark-team-b", "spark"), "renew service": renewer}
    return {"owner": kube.kubeconfig("alice"), "owner's pods": sa(ns, "spark-alice"),
            "other user": kube.kubeconfig("bob"), "other user's pods": sa(ns, "spark-bob"), "renew service": renewer}


def submit(bed: Testbed, layout: str, monkeypatch: pytest.MonkeyPatch, app: str = "nightly",
           extra: dict[str, str] | None = None) -> str:
    """alice's real submission under ``layout``; returns the token Secret's name."""
    assert bed.kube is not None and bed.hdfs is not None
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{bed.ticket_cache('alice')}")
    conf = {"spark.app.name": app, "spark.secrets.layout": layout, "spark.secrets.hadoop.filesystems": bed.hdfs.webhdfs_url,
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": "none"}
    if layout != "namespace-per-user":
        conf["spark.kubernetes.namespace"] = NAMESPACES[layout]
    conf.update(extra or {})
    alice = KubeClient.from_config(str(bed.kube.kubeconfig("alice")))
    spec = Submission(conf, alice, progress=lambda _: None).prepare()
    (plan,) = spec.secrets
    assert plan.namespace == NAMESPACES[layout]
    return plan.name


def _table(found: dict[str, set[str]], expected: dict[str, set[str]]) -> str:
    rows = [f"{who:>18}: allowed {sorted(found[who])}, expected {sorted(expected[who])}" for who in expected]
    return "\n".join(rows)


@pytest.mark.parametrize("layout", list(NAMESPACES))
def test_every_cell_of_the_access_table(layouts: Testbed, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = submit(layouts, layout, monkeypatch)
    ns = NAMESPACES[layout]
    who = identities(layouts, layout)
    found = {ident: allowed(_api(path), ns, name) for ident, path in who.items()}
    assert found == EXPECTED[layout], "token Secret:\n" + _table(found, EXPECTED[layout])
    keytab = {ident: allowed(_api(path), rbac.RENEWER_NAMESPACE, rbac.KEYTAB_SECRET) for ident, path in who.items()}
    expected_keytab = {ident: ({"get"} if ident == "renew service" else set()) for ident in who}
    assert keytab == expected_keytab, "renew keytab:\n" + _table(keytab, expected_keytab)


def test_controller_grants_the_owners_account_within_seconds_and_removes_it_with_the_secret(
        layouts: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    ns = NAMESPACES["controller"]
    who = identities(layouts, "controller")
    owner_pods, other_pods = _api(who["owner's pods"]), _api(who["other user's pods"])
    renewer = RenewerProcess(layouts, hdfs, tmp_path, kubeconfig=who["renew service"], namespaces=(ns,),
                             extra=("--grant-access",))
    try:
        renewer.wait_ready()
        name = submit(layouts, "controller", monkeypatch, app="granted")
        # alice's Secret whose annotation names bob's account: the grant goes to hers, never to the one named.
        named = submit(layouts, "controller", monkeypatch, app="names-bob",
                       extra={"spark.kubernetes.authenticate.driver.serviceAccountName": "spark-bob"})
        assert _api(kube.kubeconfig("admin")).read_namespaced_secret(named, ns).metadata.annotations[
            "spark-secrets.io/service-account"] == "spark-bob"
        waited = wait_until("alice's job account never got read access", lambda: attempt(owner_pods, "get", ns, name),
                        10, renewer)
        wait_until("alice's account was not granted the Secret naming bob's",
                   lambda: attempt(owner_pods, "get", ns, named), 10, renewer)
        assert not attempt(other_pods, "get", ns, named), "the annotation made the service grant bob's account"
        assert allowed(owner_pods, ns, name) == {"get"}
        assert allowed(other_pods, ns, name) == set(), "bob's pods can touch alice's tokens"
        assert allowed(_api(who["other user"]), ns, name) == {"create"}  # Secrets of his own only
        role = k8s.RbacAuthorizationV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("admin"))))
        binding = role.read_namespaced_role_binding(f"{name}-reader", ns)
        assert [(s.kind, s.name) for s in binding.subjects] == [("ServiceAccount", "spark-alice")]
        assert binding.metadata.owner_references[0].name == name  # goes with the Secret, even without us

        _api(kube.kubeconfig("admin")).delete_namespaced_secret(name, ns)
        wait_until("the grant outlived the Secret", lambda: _get_status(owner_pods, ns, name) == 403, 10, renewer)
        with pytest.raises(ApiException) as gone:
            role.read_namespaced_role(f"{name}-reader", ns)
        assert gone.value.status == 404
        assert renewer.metrics()["grants_total"] >= 1
    finally:
        renewer.stop()
    print(f"\ncontroller grant: alice's job account could read its Secret {waited:.2f} s after it was created")


def test_precreated_secret_is_filled_by_its_owner_and_emptied_when_unused(
        layouts: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    ns = NAMESPACES["precreated"]
    name = submit(layouts, "precreated", monkeypatch, app="filled")
    admin = _api(kube.kubeconfig("admin"))
    secret = admin.read_namespaced_secret(name, ns)
    creds = Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"]))
    assert {t.decode_identifier().owner for t in creds if t.is_delegation_token} == {"alice"}
    assert secret.metadata.labels["spark-secrets.io/persistent"] == "true"
    assert secret.metadata.labels["spark-secrets.io/kind"] == "hadoop-delegation-tokens"
    assert not secret.metadata.owner_references

    renewer = RenewerProcess(layouts, hdfs, tmp_path, kubeconfig=identities(layouts, "precreated")["renew service"],
                             namespaces=(ns,), extra=("--sweep-interval", "1s", "--orphan-grace", "3s"))
    try:
        renewer.wait_ready()
        wait_until("the unused pre-created Secret was not emptied",
               lambda: "hadoop-tokens" not in (admin.read_namespaced_secret(name, ns).data or {}), 30, renewer)
        wait_until("its tokens were not cancelled", lambda: renewer.metrics()["cancellations_total"] >= 1, 20, renewer)
    finally:
        renewer.stop()
    emptied = admin.read_namespaced_secret(name, ns)
    assert emptied.metadata.labels.get("spark-secrets.io/persistent") == "true"  # kept for the next job
    assert "spark-secrets.io/kind" not in emptied.metadata.labels


def test_conf_rbac_examples_are_what_the_cli_prints() -> None:
    """conf/rbac/*.yaml (but the hand-written cluster-wide binding) are `spark-secrets rbac` output."""
    files = sorted(p for p in CONF_RBAC.glob("*.yaml") if p.name != "renewer-cluster-wide.yaml")
    assert {p.stem for p in files} == {"common", *NAMESPACES}
    for path in files:
        command = path.read_text().splitlines()[0].removeprefix("# spark-secrets ").split()
        assert rbac_yaml(build_parser().parse_args(command)) == path.read_text(), f"regenerate {path.name}"


def test_controller_layout_from_spark_submit_to_the_end_of_the_job(layouts: Testbed, tmp_path: Path) -> None:
    """`spark-secrets submit` with real spark-submit where alice may only create Secrets: the wrapper says
    it cannot attach the Secret, the renew service gives it to the driver pod and grants alice's job
    account read access; deleting the pod takes the Secret (garbage collector), its token and the grant."""
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    ns, app = NAMESPACES["controller"], "end-to-end"
    who = identities(layouts, "controller")
    owner_pods = _api(who["owner's pods"])
    admin = _api(kube.kubeconfig("admin"))
    renewer = RenewerProcess(layouts, hdfs, tmp_path, kubeconfig=who["renew service"], namespaces=(ns,),
                             extra=("--grant-access", "--sweep-interval", "1s"))
    try:
        renewer.wait_ready()
        conf = {"spark.secrets.layout": "controller", "spark.secrets.hadoop.filesystems": hdfs.webhdfs_url,
                "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": "none"}
        argv = cluster_submit_argv(kube.server, ns, app, conf=conf)
        at = argv.index("spark.kubernetes.authenticate.driver.serviceAccountName=spark")
        del argv[at - 1:at + 1]  # no account given: the layout's, spark-alice, is used
        env = spark_env(layouts.env("alice", layouts.ticket_cache("alice")))
        proc = subprocess.run([sys.executable, "-m", "spark_secrets", "submit", "--spark-submit", argv[0], "--",
                               *argv[1:]], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, "\n".join(ln for ln in proc.stderr.splitlines() if "\tat " not in ln)[-3000:]
        assert "the renew service attaches it" in proc.stderr, proc.stderr[-2000:]
        (secret,) = admin.list_namespaced_secret(ns, label_selector=f"spark-secrets.io/app-name={app}").items
        name = secret.metadata.name
        (pod,) = admin.list_namespaced_pod(ns, label_selector=f"spark-role=driver,spark-app-name={app}").items
        assert pod.spec.service_account_name == "spark-alice"
        creds = Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"]))

        def owners() -> list[str]:
            return [o.uid for o in admin.read_namespaced_secret(name, ns).metadata.owner_references or []]
        wait_until("the renew service did not give the Secret to the driver pod", lambda: owners() == [pod.metadata.uid],
               30, renewer)
        wait_until("alice's job account cannot read its Secret", lambda: attempt(owner_pods, "get", ns, name), 10, renewer)
        assert not attempt(_api(who["other user's pods"]), "get", ns, name)

        admin.delete_namespaced_pod(pod.metadata.name, ns, grace_period_seconds=0)
        wait_until("the Secret outlived its driver pod", lambda: _get_status(admin, ns, name) == 404, 60, renewer)
        wait_until("the token was not cancelled", lambda: renewer.metrics()["cancellations_total"] >= 1, 30, renewer)
        wait_until("the grant outlived the Secret", lambda: _get_status(owner_pods, ns, name) == 403, 10, renewer)
    finally:
        renewer.stop()
    events = admin.list_namespaced_event(ns, _preload_content=False).data.decode()
    seen = proc.stdout + proc.stderr + renewer.log.read_text() + events
    for token in creds:
        for form in (token.password.hex(), base64.b64encode(token.password).decode(), token.encode_url()):
            assert form not in seen, "a token password reached the output, the log or an Event"
