"""`spark-secrets doctor` on the test bed: a healthy setup is all ✔ with exit 0, and each ✗ is provoked
for real (an expired TGT, a renewer mismatch, the renew service stopped, RBAC bindings removed, a
NameNode down, the plugin jar unset in cluster mode) and named with its fix. Every ✗ check is ✔ in
the healthy run, so each assertion can fail."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from renewers import CONF, RenewerProcess, bind_lease, bind_renewer, manifest, wait_until

from spark_secrets.testbed.bed import RENEWER, RENEWER_NAMESPACE, USERS, Testbed
from spark_secrets.errors import TestbedError
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.kube import KubeControlPlane
from spark_secrets.testbed.metastore import HiveMetastore

pytestmark = pytest.mark.testbed

ROOT = Path(__file__).resolve().parent.parent
LEASE = "spark-secrets-renewer"  # the default spark.secrets.renewService.lease names it
JAR = "local:///opt/spark/jars/spark-secrets-plugin.jar"


class Doctor:
    def __init__(self, bed: Testbed, cluster: SecureHdfs) -> None:
        assert bed.kube is not None
        self.bed, self.cluster = bed, cluster
        self.ccache = bed.ticket_cache("alice")

    def args(self, *, renewer: bool = True, jar: bool = True, filesystem: str | None = None) -> list[str]:
        assert self.bed.kube is not None
        conf = {"spark.kubernetes.namespace": "alice",
                "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
                "spark.secrets.hadoop.filesystems": filesystem or self.cluster.uri}
        if renewer:
            conf["spark.secrets.renewer"] = RENEWER
        if jar:
            conf["spark.secrets.plugin.jar"] = JAR
        out = ["--master", f"k8s://{self.bed.kube.server}", "--deploy-mode", "cluster"]
        for key, value in conf.items():
            out += ["--conf", f"{key}={value}"]
        return out

    def run(self, *spark_args: str, ccache: Path | None = None, flags: tuple[str, ...] = ("--probe", "--duration", "1d"),
            conf_dir: Path | None = None) -> tuple[int, dict[str, tuple[str, str, str]], str]:
        env = self.bed.env("alice", ccache or self.ccache)
        env["HADOOP_CONF_DIR"] = str(conf_dir or self.cluster.client_conf_dir())
        env["PYTHONPATH"] = str(ROOT)
        text = subprocess.run([sys.executable, "-m", "spark_secrets", "doctor", *flags, "--", *spark_args],
                              capture_output=True, text=True, env=env, timeout=180)
        machine = subprocess.run([sys.executable, "-m", "spark_secrets", "doctor", *flags, "--json", "--",
                                  *spark_args], capture_output=True, text=True, env=env, timeout=180)
        assert machine.returncode == text.returncode, (machine.stderr, text.stderr)
        checks = {c["name"]: (c["status"], c["detail"], c["fix"]) for c in json.loads(machine.stdout)["checks"]}
        return text.returncode, checks, text.stdout


def lease_written(kube: KubeControlPlane) -> bool:
    """Whether the renew service has written its principal into its Lease (which may not exist yet)."""
    try:
        lease = kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{RENEWER_NAMESPACE}/leases/{LEASE}")
    except TestbedError as exc:
        if "HTTP 404" in str(exc):
            return False
        raise
    return "principal" in json.dumps(lease)


@pytest.fixture(scope="module")
def doctor(testbed: Testbed, ha_hdfs: SecureHdfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doctor]:
    """The renew service running (with its Lease, on the HA cluster), alice's namespace bound as the
    layouts bind theirs, and conf/rbac/common.yaml's Lease status access."""
    kube = testbed.kube
    assert kube is not None
    bind_renewer(testbed)
    bind_lease(testbed)
    for kind in ("Role", "RoleBinding"):
        kube.apply(manifest(CONF / "rbac" / "common.yaml", kind, "spark-secrets-renewer-status"))
    service = RenewerProcess(testbed, ha_hdfs, tmp_path_factory.mktemp("doctor-renewer"),
                             extra=("--lease", f"{RENEWER_NAMESPACE}/{LEASE}", "--lease-duration", "6s"))
    doc = Doctor(testbed, ha_hdfs)
    doc.service = service  # type: ignore[attr-defined]
    try:
        wait_until("the renew service holds its Lease", lambda: lease_written(kube), 60, service)
        yield doc
    finally:
        service.stop()
        kube.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{RENEWER_NAMESPACE}/leases/{LEASE}")


def test_a_healthy_setup_is_all_green(doctor: Doctor) -> None:
    status, checks, text = doctor.run(*doctor.args())
    assert status == 0, text
    assert {name: c[0] for name, c in checks.items()} == {name: "ok" for name in checks}, text
    assert set(checks) == {"settings", "ticket", f"filesystem {doctor.cluster.uri}", f"probe {doctor.cluster.uri}",
                           "your access", "owner policy", "driver account", "renew service", "renewer",
                           "renew service access", "token refresher", "duration"}
    assert "standby" in checks[f"filesystem {doctor.cluster.uri}"][1]  # nn1 of ns1 is the standby
    assert "active" in checks[f"filesystem {doctor.cluster.uri}"][1]
    assert "20s after each renewal, 40s at most" in checks[f"probe {doctor.cluster.uri}"][1]  # learnt, not told
    assert "spark-renewer/localhost@" in checks["renewer"][1]
    assert checks["renew service"][1].endswith("; ready")  # its /readyz, from the address in its Lease
    lines = text.splitlines()
    assert all(line.startswith("✔ ") for line in lines[:-1]) and lines[-1].startswith("nothing would fail"), text


def test_an_expired_ticket(doctor: Doctor) -> None:
    ccache = doctor.bed.ticket_cache("alice", lifetime="3s", renewable=None)
    time.sleep(4)
    status, checks, text = doctor.run(*doctor.args(), ccache=ccache)
    assert status == 1
    state, detail, fix = checks["ticket"]
    assert state == "fail" and "has expired" in detail and "kinit" in fix, text
    assert "✗ ticket: the Kerberos ticket in" in text


def test_tokens_that_would_name_someone_else_as_renewer(doctor: Doctor) -> None:
    status, checks, _ = doctor.run(*doctor.args(renewer=False))
    assert status == 1
    state, detail, fix = checks["renewer"]
    assert state == "fail" and "tokens would name alice as renewer" in detail
    assert fix == f"--conf spark.secrets.renewer={RENEWER}"
    assert checks["duration"][0] == "fail"  # nothing would renew a day-long job's tokens


def test_the_plugin_jar_unset_in_cluster_mode(doctor: Doctor) -> None:
    status, checks, _ = doctor.run(*doctor.args(jar=False))
    assert status == 1
    state, detail, fix = checks["token refresher"]
    assert state == "fail" and "cluster mode without spark.secrets.plugin.jar" in detail
    assert "spark.secrets.plugin.jar=local://" in fix


def test_rbac_bindings_removed(doctor: Doctor) -> None:
    kube = doctor.bed.kube
    assert kube is not None
    bindings = {name: kube.request("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/alice/rolebindings/{name}")
                for name in ("spark-secrets-renewer-user", "spark-edit")}
    try:
        for name in bindings:
            kube.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/namespaces/alice/rolebindings/{name}")
        status, checks, _ = doctor.run(*doctor.args(), flags=())
    finally:
        for body in bindings.values():
            meta = body["metadata"]
            kube.apply({**body, "metadata": {"name": meta["name"], "namespace": meta["namespace"]}})
    assert status == 1
    state, detail, fix = checks["renew service access"]
    assert state == "fail" and f"({RENEWER}) may not list, watch, get, patch Secrets in alice" in detail
    assert "spark-secrets rbac" in fix
    state, detail, _ = checks["driver account"]
    assert state == "fail" and "spark may not get Secrets in alice" in detail


def _binding_actions(kube: KubeControlPlane, actions: list[str]) -> None:
    """Set the owner policy binding's validationActions and wait until the API server applies them."""
    path = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/spark-secrets-token-owner"
    body = kube.request("GET", path)
    body["spec"]["validationActions"] = actions
    kube.request("PUT", path, body)
    probe = {"apiVersion": "v1", "kind": "Secret", "metadata": {"generateName": "probe-", "labels": {
        "spark-secrets.io/owner": "nobody-at-all"}}}

    def applied() -> bool:
        try:
            kube.request("POST", "/api/v1/namespaces/alice/secrets?dryRun=All", probe, user="alice")
            return actions == ["Audit"]
        except TestbedError:
            return actions == ["Deny"]
    wait_until(f"the binding's {actions} did not take effect", applied, 30)


def test_an_owner_policy_that_does_not_deny(doctor: Doctor) -> None:
    """The binding only audits (as an admin trying it out might leave it): the job's Secret would be refused
    by the renew service, and doctor says why and what to apply (the healthy run is the control)."""
    kube = doctor.bed.kube
    assert kube is not None
    try:
        _binding_actions(kube, ["Audit"])
        status, checks, _ = doctor.run(*doctor.args(), flags=())
    finally:
        _binding_actions(kube, ["Deny"])
    assert status == 1
    state, detail, fix = checks["owner policy"]
    assert state == "fail" and "for another owner" in detail and "spark-secrets rbac common" in fix, detail


def test_a_namenode_down(doctor: Doctor, tmp_path: Path) -> None:
    cluster = SecureHdfs(tmp_path / "hdfs", doctor.bed.kdc_required())
    with cluster.serving(USERS):
        status, checks, _ = doctor.run(*doctor.args(filesystem=cluster.uri), flags=(),
                                       conf_dir=cluster.client_conf_dir())
        assert checks[f"filesystem {cluster.uri}"][0] == "ok"  # control: the same check while it runs
        cluster.stop()
        status, checks, text = doctor.run(*doctor.args(filesystem=cluster.uri), flags=(),
                                          conf_dir=cluster.client_conf_dir())
    assert status == 1
    state, detail, fix = checks[f"filesystem {cluster.uri}"]
    assert state == "fail" and "no active NameNode" in detail and "down (cannot connect" in detail, text
    assert "start the NameNode" in fix


def test_the_metastore_login_and_probe_and_a_wrong_principal(doctor: Doctor, metastore: HiveMetastore) -> None:
    """A job with a Kerberized metastore: its login checked and a probe token's lifetimes learnt (the
    client is told neither); the same with a principal the KDC does not know: ✗ naming the setting."""
    principal = metastore.client_conf()["hive.metastore.kerberos.principal"]
    name = f"metastore {metastore.uri}"

    def hive(principal: str) -> list[str]:
        return ["--conf", f"spark.secrets.hive.metastoreUris={metastore.uri}",
                "--conf", f"spark.secrets.hive.principal={principal}"]

    status, checks, text = doctor.run(*doctor.args(), *hive(principal))
    state, detail, _ = checks[name]
    assert status == 0 and state == "ok", text
    assert "accepts your Kerberos login" in detail and "20s after each renewal, 40s at most" in detail, detail
    status, checks, text = doctor.run(*doctor.args(), *hive(principal.replace("hive/", "nohive/")), flags=())
    state, detail, fix = checks[name]
    assert status == 1 and state == "fail", text
    assert "nohive/localhost@" in detail + fix and "spark.secrets.hive.principal" in fix, (detail, fix)
    assert "Traceback" not in text


def test_status_of_a_running_job_across_a_renewal_and_a_reissue(doctor: Doctor) -> None:
    """A token Secret made by `spark-secrets conf`, mounted by a running pod, on the HA cluster whose
    tokens live 20 s (40 s at most): the renew service renews it at first sight, then re-issues it,
    and `status` (as alice, metadata only) shows each change; the expiry gauge names the job."""
    from spark_secrets.testbed import images

    bed, kube = doctor.bed, doctor.bed.kube
    assert kube is not None
    env = bed.env("alice", doctor.ccache)
    env.update(HADOOP_CONF_DIR=str(doctor.cluster.client_conf_dir()), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "spark_secrets", "conf", "--", "--name", "statusjob",
                    "--conf", "spark.kubernetes.namespace=alice", "--conf", f"spark.secrets.renewer={RENEWER}",
                    "--conf", f"spark.secrets.hadoop.filesystems={doctor.cluster.uri}"],
                   env=env, check=True, capture_output=True, timeout=120)

    def status() -> dict[str, object]:
        out = subprocess.run([sys.executable, "-m", "spark_secrets", "status", "statusjob", "-n", "alice", "--json"],
                             env=env, check=True, capture_output=True, text=True, timeout=60).stdout
        (job,) = json.loads(out)
        return job

    secret = str(status()["secret"])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "statusjob-driver", "namespace": "alice",
                                                           "labels": {"spark-role": "driver"}},
           "spec": {"containers": [{"name": "c", "image": images.PAUSE_IMAGE, "imagePullPolicy": "Never",
                                    "volumeMounts": [{"name": "t", "mountPath": "/mnt/t"}]}],
                    "volumes": [{"name": "t", "secret": {"secretName": secret}}]}}
    kube.apply(pod)
    phase = "Running" if bed.node is not None else "Pending"
    try:
        seen: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + 90
        while "re-issued" not in seen and time.monotonic() < deadline:
            job = status()
            if job["last_action"] and job["pods"] and job["pods"][0]["phase"] == phase:  # type: ignore[index]
                seen.setdefault(str(job["last_action"]), job)
            time.sleep(1)
        assert set(seen) == {"renewed", "re-issued"}, seen.keys()
        renewed, reissued = seen["renewed"], seen["re-issued"]
        for job in (renewed, reissued):
            assert str(job["acted_by"]).startswith("spark-renewer/localhost@") and job["next_action"]
            assert job["pods"] == [{"name": "statusjob-driver", "role": "driver", "phase": phase}]
            (token,) = job["tokens"]  # type: ignore[misc]
            assert (token["owner"], token["renewer"], token["service"]) == ("alice", RENEWER, "ha-webhdfs:ns1")
        assert reissued["tokens"][0]["sequence"] != renewed["tokens"][0]["sequence"]  # type: ignore[index]
        assert str(reissued["expiry"]) > str(renewed["expiry"]) and reissued["max_date"] != renewed["max_date"]
        text = subprocess.run([sys.executable, "-m", "spark_secrets", "status", "-n", "alice"], env=env, check=True,
                              capture_output=True, text=True, timeout=60).stdout
        assert f"alice/{secret}  app statusjob  owner alice" in text and "last re-issued" in text
        gauge = [line for line in requests.get(f"http://127.0.0.1:{doctor.service.port}/metrics",  # type: ignore[attr-defined]
                                               timeout=5).text.splitlines()
                 if line.startswith('spark_secrets_seconds_until_expiry{app="statusjob",namespace="alice"}')]
        assert len(gauge) == 1 and float(gauge[0].split()[-1]) > 0, gauge
    finally:
        for path in ("/api/v1/namespaces/alice/pods/statusjob-driver?gracePeriodSeconds=0",
                     f"/api/v1/namespaces/alice/secrets/{secret}"):
            try:
                kube.request("DELETE", path)
            except TestbedError:  # the garbage collector may have taken the Secret with the pod
                pass


def test_the_renew_service_stopped(doctor: Doctor) -> None:
    """Last: it stops the module's renew service."""
    doctor.service.stop()  # type: ignore[attr-defined]
    time.sleep(7)  # its 6 s Lease runs out
    status, checks, _ = doctor.run(*doctor.args())
    assert status == 1
    state, detail, fix = checks["renew service"]
    assert state == "fail" and f"not running: its Lease {RENEWER_NAMESPACE}/{LEASE} was last renewed" in detail
    assert "kubectl -n spark-secrets-system get pods" in fix
    assert checks["duration"][0] == "fail"
