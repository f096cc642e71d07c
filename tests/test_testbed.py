"""Smoke tests of the real test bed: each fails if its component is fake, misconfigured or down."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import TestbedError
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.login.kerberos import current_ticket_cache
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.spark import SPARK_LINES, cluster_submit_argv, run_spark_submit, spark_version
from spark_secrets.tokens.webhdfs import WebHdfsClient

pytestmark = pytest.mark.testbed


def _api(bed: Testbed, user: str) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig(user))))


# -- Kerberos ------------------------------------------------------------------------------------
def test_kinit_as_alice_gives_her_tgt(testbed: Testbed, alice_ccache: Path) -> None:
    cache = current_ticket_cache()
    assert cache.principal == f"alice@{testbed.kdc_required().realm}"
    klist = subprocess.run(["klist", str(alice_ccache)], env=testbed.kdc_required().env(), capture_output=True, text=True)
    assert f"krbtgt/{testbed.kdc_required().realm}" in klist.stdout


def test_kdc_refuses_a_wrong_password(testbed: Testbed, tmp_path: Path) -> None:
    kdc = testbed.kdc_required()
    with pytest.raises(TestbedError, match="Password incorrect"):
        kdc.kinit("alice", tmp_path / "cc", password="not-alices-password")


# -- secure HDFS ---------------------------------------------------------------------------------
def test_webhdfs_liststatus_needs_spnego(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    url = f"{testbed.hdfs.webhdfs_url}/webhdfs/v1/user"
    anonymous = requests.get(url, params={"op": "LISTSTATUS"}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers.get("WWW-Authenticate", "").startswith("Negotiate")
    spnego = requests.get(url, params={"op": "LISTSTATUS"}, auth=SpnegoAuth(), timeout=10)
    assert spnego.status_code == 200, spnego.text
    names = {s["pathSuffix"] for s in spnego.json()["FileStatuses"]["FileStatus"]}
    assert {"alice", "bob"} <= names


def test_getdelegationtoken_returns_a_token_for_alice(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    token = WebHdfsClient(testbed.hdfs.webhdfs_url, SpnegoAuth()).get_delegation_token(renewer=RENEWER)
    ident = token.decode_identifier()
    assert ident is not None
    assert (ident.owner, ident.renewer, ident.real_user) == ("alice", RENEWER, "")
    assert token.service == testbed.hdfs.rpc_token_service
    assert ident.max_date - ident.issue_date == testbed.hdfs.lifetimes.max_lifetime_ms
    assert len(token.password) == 20  # HMAC-SHA1 under the NameNode's master key


def test_jvm_with_only_the_token_reads_hdfs_until_cancelled(testbed: Testbed, alice_ccache: Path,
                                                            tmp_path: Path) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    creds = obtain_tokens([hdfs.webhdfs_url], renewer=RENEWER, auth=SpnegoAuth())
    token_file = creds.save(tmp_path / "alice.tokens")
    no_ccache = tmp_path / "no-ticket-cache"
    payload = b"written by a JVM that holds only a delegation token\n"

    put = hdfs.fs("-put", "-f", "-", "/user/alice/smoke.txt", ccache=no_ccache, token_file=token_file, input=payload)
    assert put.returncode == 0, put.stderr.decode()[-2000:]
    cat = hdfs.fs("-cat", "/user/alice/smoke.txt", ccache=no_ccache, token_file=token_file)
    assert cat.returncode == 0, cat.stderr.decode()[-2000:]
    assert cat.stdout == payload

    without = hdfs.fs("-cat", "/user/alice/smoke.txt", ccache=no_ccache)
    assert without.returncode != 0
    assert b"Client cannot authenticate via:[TOKEN, KERBEROS]" in without.stderr

    token = Credentials.load(token_file).tokens[hdfs.rpc_token_service]
    WebHdfsClient(hdfs.webhdfs_url, SpnegoAuth()).cancel_delegation_token(token)
    after = hdfs.fs("-cat", "/user/alice/smoke.txt", ccache=no_ccache, token_file=token_file)
    assert after.returncode != 0
    assert b"token" in after.stderr.lower()


# -- Kubernetes API server with RBAC ---------------------------------------------------------------
def test_alice_cannot_read_a_secret_in_bobs_namespace_but_admin_can(testbed: Testbed) -> None:
    secret = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="bobs-secret"), string_data={"k": "v"})
    _api(testbed, "bob").create_namespaced_secret("bob", secret)
    try:
        with pytest.raises(ApiException) as denied:
            _api(testbed, "alice").read_namespaced_secret("bobs-secret", "bob")
        assert denied.value.status == 403
        read = _api(testbed, "admin").read_namespaced_secret("bobs-secret", "bob")
        assert read.metadata.name == "bobs-secret"
    finally:
        _api(testbed, "admin").delete_namespaced_secret("bobs-secret", "bob")


def test_service_account_identity_is_enforced(testbed: Testbed) -> None:
    assert testbed.kube is not None
    sa_api = k8s.CoreV1Api(k8s_config.new_client_from_config(
        str(testbed.kube.service_account_kubeconfig("alice", "spark"))))
    assert sa_api.list_namespaced_pod("alice").items is not None  # edit role in its own namespace
    with pytest.raises(ApiException) as denied:
        sa_api.list_namespaced_secret("bob")
    assert denied.value.status == 403


# -- Spark ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", SPARK_LINES)
def test_spark_submit_in_cluster_mode_creates_a_driver_pod(testbed: Testbed, line: str) -> None:
    assert testbed.kube is not None
    name = f"smoke-pi-{line.replace('.', '')}"
    argv = cluster_submit_argv(testbed.kube.server, "alice", name, line=line)
    proc = run_spark_submit(argv, testbed.env("alice"), line=line)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    pods = _api(testbed, "alice").list_namespaced_pod("alice", label_selector="spark-role=driver").items
    drivers = [p for p in pods if p.metadata.labels.get("spark-app-name") == name]
    assert len(drivers) == 1
    assert drivers[0].status.phase == "Pending"  # its placeholder image is never pulled: the spec is all there is
    assert drivers[0].spec.service_account_name == "spark"
    assert drivers[0].metadata.labels["spark-version"] == spark_version(line)
    assert spark_version(line).startswith(f"{line}.")
    env = {e.name: e.value for e in drivers[0].spec.containers[0].env}
    assert env["SPARK_APPLICATION_ID"].startswith("spark-")


def test_the_node_runs_a_pod_on_the_pod_network_with_its_secret_and_cluster_dns(testbed: Testbed) -> None:
    """A plain pod (bridge network, not the host's) gets an IP from the CNI bridge, reads its Secret
    volume, and resolves a Service name through CoreDNS."""
    assert testbed.node is not None
    api = _api(testbed, "admin")
    name = f"probe-{time.time_ns() % 10**8}"
    api.create_namespaced_secret("alice", {"metadata": {"name": name}, "stringData": {"greeting": "hello pod"}})
    script = ("import socket; print('SECRET', open('/s/greeting').read()); "
              "print('DNS', socket.gethostbyname('kubernetes.default.svc.cluster.local'))")
    api.create_namespaced_pod("alice", {"metadata": {"name": name}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "probe", "image": testbed.node.images_imported["spark"], "imagePullPolicy": "Never",
                        "command": ["python3", "-c", script], "volumeMounts": [{"name": "s", "mountPath": "/s"}]}],
        "volumes": [{"name": "s", "secret": {"secretName": name}}]}})
    deadline = time.monotonic() + 120
    while (pod := api.read_namespaced_pod(name, "alice")).status.phase not in ("Succeeded", "Failed"):
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.5)
    log = api.read_namespaced_pod_log(name, "alice")
    assert pod.status.phase == "Succeeded", log
    assert pod.status.pod_ip.startswith("10.244.0.") and pod.status.pod_ip != "10.244.0.1"
    assert "SECRET hello pod" in log and "DNS 10.96.0.1" in log, log
    api.delete_namespaced_pod(name, "alice", grace_period_seconds=0)
    api.delete_namespaced_secret(name, "alice")
