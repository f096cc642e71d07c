"""Jobs in real pods on the test bed's kubelet node: `spark-secrets submit` as alice (TGT on this host),
Spark 4 cluster mode, a driver pod and two executor pods that hold only the mounted token Secret."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import InvalidTokenError, TestbedError, TokenExpiredError
from spark_secrets.tokens.fetcher import renew_token
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND, KMS_DELEGATION_KIND
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import (KRB5_CONFIG_MAP, RENEWER, RENEWER_NAMESPACE, RENEWER_PRINCIPAL, Testbed)
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.node import NODE_IP
from spark_secrets.testbed.operator import SparkOperator
from spark_secrets.testbed.metastore import HiveMetastore
from spark_secrets.testbed.openbao import OpenBao
from spark_secrets.testbed.paths import hadoop_lib, hive_client_jars, hive_client_lib
from spark_secrets.testbed.postgres import Postgres
from spark_secrets.testbed.spark import (IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, JOBS_DIR, node_job_conf,
                                         node_pod_template, spark_env, spark_home)
from submit_steps.settings import SPARK_CREDENTIALS_DIR

from conftest import LEASE_MAX_TTL_S, ZONE, Zone
from podjobs import (POD_LIFETIMES, SCRIPTS, Spark35Job, admin_api, driver_ports, job_pods, log_story,
                     submit_as_alice)
from renewers import RenewerProcess, assert_cancelled, wait_until

pytestmark = pytest.mark.testbed

@pytest.fixture(scope="module")
def pod_template(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job scripts as a ConfigMap in alice's namespace, and the pod template that mounts them."""
    assert testbed.kube is not None
    assert testbed.node is not None, "these tests need the test bed's kubelet node"
    data = {p.name: p.read_text() for p in sorted(SCRIPTS.glob("*.py"))}
    api = admin_api(testbed)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": JOBS_CONFIG_MAP}, "data": data}
    try:
        api.create_namespaced_config_map("alice", body)
    except k8s.exceptions.ApiException as exc:
        assert exc.status == 409
        api.replace_namespaced_config_map(JOBS_CONFIG_MAP, "alice", body)
    return node_pod_template(tmp_path_factory.mktemp("pods") / "template.json", KRB5_CONFIG_MAP)


#: A user of the container who is not the job's (uid and gid).
STRANGER = 4242
_READ_AS = ("import os, sys\n"
            "os.setgroups([int(g) for g in sys.argv[2].split(',') if g]); os.setgid(4242); os.setuid(4242)\n"
            "try:\n    open(sys.argv[1], 'rb').read(); print('READ')\nexcept PermissionError:\n    print('DENIED')\n")


def _read_in_pod(pod: k8s.V1Pod, path: str, groups: tuple[int, ...] = ()) -> str:
    """Reads ``path`` in the pod's Spark container (its mount namespace, entered from the node) as another
    user of that container, uid and gid 4242 with ``groups``: ``READ`` or ``DENIED``."""
    uid = pod.metadata.uid
    pids = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and f"/pod{uid}/" in (entry / "cgroup").read_text() \
                    and b"java" in (entry / "cmdline").read_bytes():
                pids.append(entry.name)
    assert pids, f"no process of pod {pod.metadata.name} on this node"
    done = subprocess.run(["nsenter", "--target", pids[0], "--mount", "--", "python3", "-c", _READ_AS, path,
                           ",".join(map(str, groups))], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _lines(log: str, tag: str) -> list[dict[str, object]]:
    return [json.loads(line.split(" ", 1)[1]) for line in log.splitlines() if line.startswith(f"{tag} ")]


def test_job_with_two_executor_pods_reads_and_writes_hdfs_with_only_the_mounted_token(
        testbed: Testbed, pod_template: Path, renewer_rbac: None, tmp_path: Path) -> None:
    assert testbed.hdfs is not None and testbed.kube is not None
    api = admin_api(testbed)
    app = f"pods-{time.time_ns() % 10**8}"
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer")
    try:
        renewer.wait_ready()
        conf = {"spark.secrets.hadoop.filesystems": testbed.hdfs.uri, "spark.secrets.renewer": RENEWER,
                "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
                "spark.kubernetes.executor.deleteOnTermination": "false"}  # kept to read their specs
        proc = submit_as_alice(testbed, app, pod_template, conf, "pod_job.py", f"/user/alice/{app}", "2")
        (driver,) = job_pods(api, app, "driver")
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
        assert api.read_namespaced_pod(driver.metadata.name, "alice").status.phase == "Succeeded"
        assert "WROTE AND READ 10000 rows" in log, log[-3000:]

        # Two executor pods ran the tasks; no container had a ticket cache or keytab, each read the token file.
        executors = job_pods(api, app, "executor")
        assert len(executors) == 2, [p.metadata.name for p in executors]
        probes = _lines(log, "PROBE")
        assert {p["pod"] for p in probes} == {p.metadata.name for p in executors}, probes
        token_file = f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"
        for probe in [*probes, *_lines(log, "DRIVER")]:
            assert probe["klist_rc"] != 0 and "No credentials cache found" in str(probe["klist"]), probe
            assert probe["token_file"] == token_file, probe
        assert all(p["token_file_exists"] for p in probes)

        # The pod specs: the token Secret is the only Secret volume; nothing Kerberos but krb5.conf.
        (secret,) = [s for s in api.list_namespaced_secret("alice").items
                     if (s.metadata.labels or {}).get("spark-secrets.io/app-name") == app]
        for pod in [driver, *executors]:
            secrets = {v.secret.secret_name for v in pod.spec.volumes if v.secret is not None}
            assert secrets == {secret.metadata.name}, (pod.metadata.name, secrets)
            text = json.dumps(api.api_client.sanitize_for_serialization(pod.spec)).lower()
            assert "keytab" not in text and "krb5cc" not in text and "krb5ccname" not in text
        owners = [(o.kind, o.name) for o in secret.metadata.owner_references or []]
        assert owners == [("Pod", driver.metadata.name)]
        token = Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"])).tokens[
            testbed.hdfs.rpc_token_service]

        # End of the job: deleting the driver pod takes the Secret (garbage collector), the renew
        # service cancels its tokens.
        api.delete_namespaced_pod(driver.metadata.name, "alice")
        wait_until("the Secret outlived its driver pod", lambda: not any(
            s.metadata.name == secret.metadata.name for s in api.list_namespaced_secret("alice").items), 90, renewer)
        assert_cancelled(testbed, testbed.hdfs, token, renewer, tmp_path)
    finally:
        renewer.stop()
        for pod in api.list_namespaced_pod("alice", label_selector=f"spark-app-name={app}").items:
            api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)


def test_pandas_udf_on_executor_pods_reads_and_writes_hdfs_through_the_runtime(
        testbed: Testbed, pod_template: Path) -> None:
    """Python code on executor pods (a pandas UDF) reads a dataset Spark wrote, with pyarrow.dataset and
    pandas through spark_secrets.runtime, lists it with HdfsCLI and writes files a token-only Spark JVM
    reads back: only the mounted token file, no ticket cache, in the job's own image."""
    assert testbed.hdfs is not None and testbed.kube is not None
    api = admin_api(testbed)
    app = f"runtime-{time.time_ns() % 10**8}"
    base = f"/user/alice/{app}"
    conf = {"spark.secrets.hadoop.filesystems": testbed.hdfs.uri, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
            "spark.kubernetes.executor.deleteOnTermination": "false"}  # kept to name them
    try:
        proc = submit_as_alice(testbed, app, pod_template, conf, "runtime_pods.py", testbed.hdfs.uri, base, "2")
        (driver,) = job_pods(api, app, "driver")
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
        assert api.read_namespaced_pod(driver.metadata.name, "alice").status.phase == "Succeeded"
        results = _lines(log, "UDF")
        assert sorted(r["part"] for r in results) == list(range(8)), log[-3000:]
        executors = {p.metadata.name for p in job_pods(api, app, "executor")}
        assert {r["pod"] for r in results} == executors and len(executors) == 2, (results, executors)
        for r in results:
            assert (r["rows_arrow"], r["rows_pandas"], r["twice"]) == (20_000, 20_000, 2 * sum(range(20_000))), r
            assert r["files"] == 4 and r["token_file"] == f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens", r
            assert r["klist_rc"] != 0 and "No credentials cache found" in str(r["klist"]), r
        assert "JVM READ BACK [0, 1, 2, 3, 4, 5, 6, 7]" in log, log[-3000:]
    finally:
        for pod in api.list_namespaced_pod("alice", label_selector=f"spark-app-name={app}").items:
            api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)


def test_notebook_on_the_host_in_client_mode_with_executor_pods_reads_hdfs(
        testbed: Testbed, pod_template: Path, tmp_path: Path) -> None:
    """The notebook process is the driver (client mode, token file private to it, no ticket cache);
    its two executors run in pods and mount the token Secret that configure() made."""
    assert testbed.hdfs is not None and testbed.kube is not None and testbed.node is not None
    api = admin_api(testbed)
    conf_dir = testbed.hdfs.client_conf_dir()
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "testbed-hadoop-conf"},
            "data": {f: (conf_dir / f).read_text() for f in ("core-site.xml", "hdfs-site.xml")}}
    with contextlib.suppress(k8s.exceptions.ApiException):
        api.delete_namespaced_config_map("testbed-hadoop-conf", "alice")
    api.create_namespaced_config_map("alice", body)
    template = node_pod_template(tmp_path / "executor.json", KRB5_CONFIG_MAP, jobs_config_map=None,
                                 hadoop_config_map="testbed-hadoop-conf")
    jobs = node_job_conf(testbed.node.images_imported["spark"], testbed.kube.server, template)
    conf = {k: v for k, v in jobs.items() if not k.startswith(("spark.kubernetes.driver", "spark.driver",
                                                                "spark.kubernetes.submission"))}
    conf.update({"spark.master": f"k8s://{testbed.kube.server}", "spark.kubernetes.namespace": "alice",
                 # executors (host network) reach this driver at the node's bridge address
                 "spark.driver.host": NODE_IP, "spark.driver.bindAddress": NODE_IP,
                 "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR})
    env = spark_env(testbed.env("alice", testbed.ticket_cache("alice")))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    nb_secret = "nb-4c1d9e07a2"
    env["NB_SECRET"] = nb_secret
    target = f"{testbed.hdfs.uri}/user/alice/notebook-pods"
    proc = subprocess.run([sys.executable, str(SCRIPTS / "notebook_pods.py"), testbed.hdfs.uri, target,
                           json.dumps(conf)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "COUNT 5000" in proc.stdout
    pods = json.loads(re.search(r"EXECUTOR PODS (.*)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert len(pods) == 2 and all(p.startswith("notebook-pods-") for p in pods), pods
    assert "TOKEN-FILE-REMOVED: True" in proc.stdout
    # The job secret: the driver here reads its private copy, the executors their Secret volume, mounted
    # from the executor pod template configure() wrote (0440, the pods' fsGroup), removed by close().
    lines = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("NB-SECRET ")]
    digest = hashlib.sha256(nb_secret.encode()).hexdigest()
    assert {line["role"] for line in lines} == {"driver", "executor"} and all(
        line["digest"] == digest for line in lines), lines
    assert all((line["mode"], line["gid"]) == ("0o440", 185) for line in lines if line["role"] == "executor"), lines
    assert "TEMPLATES-REMOVED: True" in proc.stdout
    assert nb_secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("fmt", ["properties", "pod-template"])
def test_jobs_from_rendered_templates_run_to_success(testbed: Testbed, pod_template: Path, tmp_path: Path,
                                                     fmt: str) -> None:
    """`render` as a job template system uses it (alice renders with her TGT), then spark-submit runs
    where no ticket exists, as an operator or scheduler would: the job still succeeds in pods."""
    assert testbed.hdfs is not None and testbed.kube is not None and testbed.node is not None
    app = f"render-{fmt}-{time.time_ns() % 10**6}"
    options = ["--name", app, "--conf", "spark.kubernetes.namespace=alice",
               "--conf", f"spark.secrets.hadoop.filesystems={testbed.hdfs.uri}",
               "--conf", f"spark.secrets.renewer={RENEWER}", "--conf", f"spark.secrets.plugin.jar={IMAGE_PLUGIN_JAR}"]
    alice = spark_env(testbed.env("alice", testbed.ticket_cache("alice")))
    conf = node_job_conf(testbed.node.images_imported["spark"], testbed.kube.server, pod_template)
    flags: list[str] = []
    if fmt == "properties":
        props = tmp_path / "job.properties"
        rendered = subprocess.run([sys.executable, "-m", "spark_secrets", "render", "--format", fmt, "-o", str(props),
                                   "--", "--deploy-mode", "cluster", *options],
                                  env=alice, capture_output=True, text=True, timeout=300)
        flags += ["--properties-file", str(props)]
    else:
        template = tmp_path / "template.yaml"
        rendered = subprocess.run([sys.executable, "-m", "spark_secrets", "render", "--format", fmt, "--into",
                                   str(pod_template), "-o", str(template), "--", *options], env=alice,
                                  capture_output=True, text=True, timeout=300)
        extra = re.search(r"with: (.*)$", rendered.stderr, re.M)
        assert extra, rendered.stderr
        flags += shlex.split(extra.group(1))
        conf = {**conf, "spark.kubernetes.driver.podTemplateFile": str(template),
                "spark.kubernetes.executor.podTemplateFile": str(template)}
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    for key, value in {**conf, "spark.kubernetes.namespace": "alice", "spark.executor.instances": "1",
                       "spark.kubernetes.executor.deleteOnTermination": "false"}.items():
        flags += ["--conf", f"{key}={value}"]
    operator = spark_env(testbed.env("alice", tmp_path / "no-ticket-here"))  # no TGT where the job is submitted
    submit = subprocess.run([str(spark_home() / "bin" / "spark-submit"), "--master", f"k8s://{testbed.kube.server}",
                             "--deploy-mode", "cluster", "--name", app, *flags, f"local://{JOBS_DIR}/pod_job.py",
                             f"/user/alice/{app}", "1"], env=operator, capture_output=True, text=True, timeout=900)
    api = admin_api(testbed)
    (driver,) = job_pods(api, app, "driver")
    log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
    assert submit.returncode == 0, submit.stderr[-2000:] + log[-3000:]
    assert api.read_namespaced_pod(driver.metadata.name, "alice").status.phase == "Succeeded"
    assert "WROTE AND READ 10000 rows" in log
    assert len(job_pods(api, app, "executor")) == 1
    secrets = {v.secret.secret_name for v in driver.spec.volumes if v.secret is not None}
    assert len(secrets) == 1 and all(s.startswith(f"{app}-") for s in secrets), secrets  # ours, no Spark-made one
    api.delete_namespaced_pod(driver.metadata.name, "alice", grace_period_seconds=0)


# -- Spark SQL on the metastore and an encryption zone, in pods ------------------------------------
#: Where the SQL job's pods find Hive's 4.0 client jars and Hadoop's (a user's image would carry them).
POD_HIVE_LIB, POD_HADOOP_LIB = Path("/opt/hive-client/lib"), Path("/opt/hadoop/lib")


def _sql_conf(zone: Zone, metastore: HiveMetastore, read: str) -> dict[str, str]:
    """The SQL job's settings: host paths mounted into its pods (the client jars in the driver, the
    metastore's warehouse, a directory the pods share, in driver and executors) and the file to read."""
    conf = {"spark.secrets.hadoop.filesystems": zone.cluster.uri, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
            "spark.kubernetes.executor.deleteOnTermination": "false",  # kept to count them
            "spark.sql.warehouse.dir": f"file://{metastore.warehouse}",
            "spark.kubernetes.driverEnv.READ_ALSO": read}
    volumes = [("driver", "hive-client", hive_client_lib(), POD_HIVE_LIB),
               ("driver", "hadoop-jars", hadoop_lib(), POD_HADOOP_LIB),
               *((role, "warehouse", metastore.warehouse, metastore.warehouse) for role in ("driver", "executor"))]
    for role, name, host, path in volumes:
        prefix = f"spark.kubernetes.{role}.volumes.hostPath.{name}"
        conf.update({f"{prefix}.mount.path": str(path), f"{prefix}.options.path": str(host),
                     f"{prefix}.mount.readOnly": str(name != "warehouse").lower()})
    return conf


def test_a_spark_sql_job_in_pods_uses_the_metastore_and_reads_an_encryption_zone_with_the_mounted_tokens(
        testbed: Testbed, pod_template: Path, lasting_zone: Zone, lasting_metastore: HiveMetastore) -> None:
    """Spark SQL in a driver pod (Spark's Hive 4.0 client) creates, fills and queries a table on the
    Kerberized metastore, and executor pods read a file in an encryption zone (NameNode and KMS), with
    the job Secret's HDFS, KMS and Hive tokens alone. The control: the same job submitted without the
    metastore settings has no Hive token, and its driver cannot log in to the metastore."""
    assert testbed.kube is not None
    zone, hms, api = lasting_zone, lasting_metastore, admin_api(testbed)
    principal = hms.client_conf()["hive.metastore.kerberos.principal"]
    put = zone.cluster.fs("-put", "-f", "-", f"{ZONE}/sql-pods.txt", ccache=testbed.ticket_cache("alice"),
                          input=b"read in executor pods\n")
    assert put.returncode == 0, put.stderr.decode()[-2000:]
    conf = _sql_conf(zone, hms, f"{zone.cluster.uri}{ZONE}/sql-pods.txt")
    hive = {"spark.secrets.hive.metastoreUris": hms.uri, "spark.secrets.hive.principal": principal}
    args = (hms.uri, principal, "4.0.1", hive_client_jars(POD_HIVE_LIB, POD_HADOOP_LIB))
    apps = {"sql": f"sql-pods-{time.time_ns() % 10**8}", "control": f"sql-nohive-{time.time_ns() % 10**8}"}
    try:
        proc = submit_as_alice(testbed, apps["sql"], pod_template, {**conf, **hive}, "hive_sql_job.py", args[0], args[1],
                       "sql_pods", *args[2:], hadoop_conf=zone.cluster.client_conf_dir())
        (driver,) = job_pods(api, apps["sql"], "driver")
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:]
        assert api.read_namespaced_pod(driver.metadata.name, "alice").status.phase == "Succeeded"
        assert "HIVE count=3 sum=6 tables=['events']" in log, log[-3000:]
        assert "READ 'read in executor pods\\n'" in log, log[-3000:]
        assert len(job_pods(api, apps["sql"], "executor")) == 2
        (secret,) = [s for s in api.list_namespaced_secret("alice").items
                     if (s.metadata.labels or {}).get("spark-secrets.io/app-name") == apps["sql"]]
        kinds = {t.kind for t in Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"]))}
        assert {"HDFS_DELEGATION_TOKEN", KMS_DELEGATION_KIND, HIVE_DELEGATION_KIND} <= kinds, kinds

        control = submit_as_alice(testbed, apps["control"], pod_template, conf, "hive_sql_job.py", args[0], args[1],
                          "sql_control", *args[2:], hadoop_conf=zone.cluster.client_conf_dir())
        (driver,) = job_pods(api, apps["control"], "driver")
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        assert api.read_namespaced_pod(driver.metadata.name, "alice").status.phase == "Failed", control.stderr[-2000:]
        assert "HIVE count" not in log
        assert "GSS initiate failed" in log or "No valid credentials provided" in log, log[-3000:]
    finally:
        for app in apps.values():
            for pod in api.list_namespaced_pod("alice", label_selector=f"spark-app-name={app}").items:
                api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)


# -- a long job in pods, kept alive by the renew service running as a pod ---------------------------
#: The Lease's duration in the long test: a SIGKILLed leader is replaced after at most this plus one check
#: (a third of it), about 8 s, so the renewal margin at --ratio 0.5 ((1 - 0.5) x 45 s = 22.5 s) is more than
#: twice a takeover (asserted with the takeovers measured in the run).
LEASE_S = 6
RATIO = 0.5


@pytest.fixture
def renewer_pods(testbed: Testbed, pod_hdfs: SecureHdfs, long_namespace: str,
                 tmp_path: Path) -> Iterator[Callable[[], dict[str, Any]]]:
    """The renew service as an admin installs it: ``helm install`` of charts/spark-secrets-renewer (its
    Deployment, Lease, RBAC and admission policies) with one replica, then ``helm upgrade`` to the chart's two
    with the long test's settings; ``helm uninstall`` at the end leaves nothing (tests/charts.py). Host
    network, as every pod that talks to the bed's loopback services: on one node two replicas cannot share a
    port, so each listens on a free one (``--listen :0``, without the probes that would need to know it; the
    holder writes its address into the Lease). Yields a reader of the Lease."""
    from charts import chart_values, installed_renewer

    assert testbed.kube is not None and testbed.node is not None
    kube, system = testbed.kube, RENEWER_NAMESPACE
    # The bed's admission policies stay as its admin applied them at its start (every later test relies on them);
    # the chart's own are checked by test_chart.py.
    first = chart_values(testbed, pod_hdfs, [long_namespace], replicaCount=1, admission={"enabled": False})
    values = {**first, "replicaCount": 2, "lease": {"duration": f"{LEASE_S}s"},
              "extraArgs": ["--ratio", str(RATIO), "--reissue-before", "40s"]}
    api = admin_api(testbed)
    apps = k8s.AppsV1Api(api.api_client)

    def lease() -> dict[str, Any]:
        return kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{system}/leases/spark-secrets-renewer")

    def only_the_upgraded_pods() -> bool:
        """The first release's pod (the service's default --reissue-before of 1h re-issues 120 s tokens at
        first sight) is gone, not only replaced: helm's --wait does not wait for it to end."""
        pods = api.list_namespaced_pod(system, label_selector="app.kubernetes.io/name=spark-secrets-renewer").items
        return len(pods) == 2 and all(p.metadata.deletion_timestamp is None and p.status.phase == "Running"
                                      for p in pods)
    with installed_renewer(testbed, tmp_path / "helm", first, upgrade_to=values):
        assert (apps.read_namespaced_deployment("spark-secrets-renewer", system).status.ready_replicas or 0) >= 2
        wait_until("the first release's pod outlived the upgrade", only_the_upgraded_pods, 60)
        wait_until("no replica took the Lease", lambda: bool(_holder(lease)), 60)
        yield lease


def _holder(lease: Callable[[], dict[str, Any]]) -> str:
    with contextlib.suppress(Exception):
        return str(lease()["spec"].get("holderIdentity") or "")
    return ""


def _created_and_cancelled(namenode_log: Path, owner: str) -> tuple[set[int], set[int]]:
    """Sequence numbers of ``owner``'s tokens the NameNode created and cancelled, from its log (Hadoop's
    AbstractDelegationTokenSecretManager lines)."""
    created, cancelled = set(), set()
    for line in namenode_log.read_text(errors="replace").splitlines():
        if f"token for {owner}:" not in line:
            continue
        seq = re.search(r"sequenceNumber=(\d+)", line)
        if seq and "Creating password for identifier" in line:
            created.add(int(seq.group(1)))
        elif seq and "Token cancellation requested for identifier" in line:
            cancelled.add(int(seq.group(1)))
    return created, cancelled


def _assert_outlived(name: str, log: str, phase: str, seconds: float) -> None:
    """The plugin's job ran its whole time, every round read and wrote, and the plugin was there."""
    assert phase == "Succeeded", (name, log[-4000:])
    assert "FAILED" not in log and "Lost task" not in log, (name, log[-4000:])
    done = re.search(r"DONE (\d+) rounds in ([\d.]+)s", log)
    assert done and float(done.group(2)) > seconds, (name, log[-2000:])
    assert "token refresher" in log, name


def _assert_failed_at_first_expiry(name: str, log: str, phase: str, first: bytes, seconds: float) -> None:
    """A job without the plugin fails at the first expiry of its tokens, with the NameNode's words."""
    assert phase == "Failed", (name, log[-3000:])
    failed = re.search(r"FAILED at ([\d.]+)s \(epoch ([\d.]+)\) after (\d+) rounds: (.*)", log)
    assert failed, (name, log[-3000:])
    # It failed before the job's end, and later than one renew interval after its token was issued (the
    # service renewed it until the re-issue, which this job never took), by the wall clock: the job's
    # own clock starts when its executor has come, which on a busy node is long after the submission.
    idents = [t.decode_identifier() for t in Credentials.from_bytes(first) if t.is_delegation_token]
    issued = min(i.issue_date for i in idents if i is not None) / 1000
    assert float(failed.group(1)) < seconds - 30, (name, failed.group(0))
    assert float(failed.group(2)) - issued > POD_LIFETIMES.renew_interval_ms / 1000, (name, issued, failed.group(0))
    # The job prints Py4J's first line; the NameNode's refusal is in the driver's log above it.
    assert re.search(r"InvalidToken\)?: Token .*(has expired|is expired|can't be found in cache)", log), \
        (name, log[-3000:])


#: The latest the faults of the long test begin, from the jobs' start (their first rounds take about a minute).
FIRST_ROUND_WAIT_S = 150


def _first_round_done(api: k8s.CoreV1Api, name: str, namespace: str, begun: set[str]) -> bool:
    """Whether ``name``'s driver has printed its first round (remembered in ``begun``); False while the API server
    does not answer."""
    if name not in begun:
        with contextlib.suppress(Exception):
            for driver in job_pods(api, name, "driver", namespace):
                if "ROUND 1 ok" in api.read_namespaced_pod_log(driver.metadata.name, namespace):
                    begun.add(name)
    return name in begun


def test_long_job_in_pods_outlives_three_max_lifetimes_under_faults_with_two_replicas(
        testbed: Testbed, pod_hdfs: SecureHdfs, long_namespace: str, renewer_pods: Callable[[], dict[str, Any]],
        spark_operator: SparkOperator, tmp_path: Path) -> None:
    """Executors read secure HDFS every 2.5 s for 3x the max lifetime; kubelet projects the re-issued tokens,
    the plugin adds them. Two such jobs: one submitted by `spark-secrets submit`, one a SparkApplication
    rendered with `render --into` from the spark-operator's own example and run by the real operator. The
    renew service was installed by its Helm chart. Meanwhile, one at a time from a printed seed: the Lease
    holder's pod deleted, a replica SIGKILLed, the API server (12 s), the KDC (20 s) and the NameNode (8 s)
    frozen. No read fails (a task may not be retried), the jobs Succeed, no token is re-issued twice, none is
    cancelled while its job runs. The same two jobs without the plugin fail at the first expiry (the controls)."""
    from chaos import Faults, RenewerLogs
    from operatorapps import ENDED, create_as_alice, delete_application, example_for_the_bed, render_into

    assert testbed.node is not None and testbed.kube is not None
    api = admin_api(testbed)
    template = node_pod_template(tmp_path / "template.json", KRB5_CONFIG_MAP)
    seconds = 3 * POD_LIFETIMES.max_lifetime_ms / 1000 + 10
    base = {"spark.kubernetes.namespace": long_namespace, "spark.secrets.hadoop.filesystems": pod_hdfs.uri,
            "spark.secrets.renewer": RENEWER,
            # An open RPC connection stays authenticated after its token expires; closing idle ones
            # after 1 s makes every round present the token the JVM holds now.
            "spark.hadoop.ipc.client.connection.maxidletime": "1000"}
    runs: dict[str, subprocess.CompletedProcess[str]] = {}

    def submit(name: str, conf: dict[str, str], executors: int) -> None:
        runs[name] = submit_as_alice(testbed, f"long-{name}", template, {**base, **conf,
                                     "spark.executor.instances": str(executors)}, "refresh_job.py",
                                     f"{pod_hdfs.uri}/user/alice/long-{name}", str(seconds), "2.5",
                                     hadoop_conf=pod_hdfs.client_conf_dir(), namespace=long_namespace)

    (namenode,) = pod_hdfs.namenodes.values()
    # Tokens of alice's earlier jobs on this HDFS (the Spark 3.5 job's) are not this test's.
    earlier = set().union(*_created_and_cancelled(namenode.log, "alice"))
    # The operator's pair: alice's own SparkApplications, rendered with her TGT before the faults begin.
    applications = {}
    for name, jar, own in (("op-plugin", IMAGE_PLUGIN_JAR, {**driver_ports(7158), "spark.task.maxFailures": "1"}),
                           ("op-control", "none", driver_ports(7168))):
        app = f"long-{name}"
        source = example_for_the_bed(testbed, app, tmp_path, "refresh_job.py",
                                     [f"{pod_hdfs.uri}/user/alice/{app}", str(seconds), "2.5"],
                                     namespace=long_namespace, conf={
                                         "spark.hadoop.ipc.client.connection.maxidletime": "1000", **own})
        applications[app] = render_into(testbed, source, app, tmp_path, f"spark.secrets.plugin.jar={jar}",
                                        namespace=long_namespace, filesystem=pod_hdfs.uri,
                                        hadoop_conf=pod_hdfs.client_conf_dir())

    seed = int(os.environ.get("SPARK_SECRETS_FAULT_SEED") or time.time_ns() % 1_000_000)
    print(f"\nfault seed {seed} (SPARK_SECRETS_FAULT_SEED={seed} repeats this run's choices)")
    logs = RenewerLogs(api, RENEWER_NAMESPACE).start()
    faults = Faults(api, renewer_pods, {"kube-apiserver": testbed.kube.apiserver,
                                        "krb5kdc": testbed.kdc_required().daemon, "namenode": namenode},
                    RENEWER_NAMESPACE, seed)
    jobs = [threading.Thread(target=submit, args=("plugin", {"spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
                                                             "spark.task.maxFailures": "1"}, 2)),
            threading.Thread(target=submit, args=("control", {"spark.secrets.plugin.jar": "none",
                                                              **driver_ports(7178)}, 1))]
    names = ["long-plugin", "long-control", *applications]
    history: dict[str, list[bytes]] = {name: [] for name in names}  # each Secret's token files
    seen = history["long-plugin"]
    states: dict[str, str] = {}
    begun: set[str] = set()  # the jobs whose driver has run a first round

    def running() -> bool:
        with contextlib.suppress(Exception):  # the API server may be frozen
            states.update({app: spark_operator.state(long_namespace, app) for app in applications})
        return jobs[0].is_alive() or any(states.get(app) not in ENDED for app in applications)

    began = time.time()
    try:
        for job in jobs:
            job.start()
        for app in applications.values():
            create_as_alice(testbed, app, long_namespace)
        while running():  # the token files the Secrets hold, as they change
            assert time.time() - began < seconds + 600, states
            with contextlib.suppress(Exception):  # the API server may be frozen
                for s in api.list_namespaced_secret(long_namespace, label_selector="spark-secrets.io/app-name").items:
                    # Only this test's jobs' Secrets: an earlier job's in this namespace may hold anything.
                    files = history.get(s.metadata.labels["spark-secrets.io/app-name"])
                    if files is None or "hadoop-tokens" not in (s.data or {}):
                        continue
                    data = base64.b64decode(s.data["hadoop-tokens"])
                    if not files or files[-1] != data:
                        files.append(data)
            # From the moment every job's driver has run its first round to the end: the operator's spark-submit,
            # and a driver's SparkContext as it starts (it makes its executors' ConfigMap and pods), give up after
            # 10 s without the API server, and restartPolicy Never retries neither.
            # A driver whose first round is never seen (its log unreadable) must not keep the faults off for good:
            # they begin FIRST_ROUND_WAIT_S after the jobs at the latest (a rehearsal ran 472 s without any).
            if seen and not faults.started and all(states.get(app) not in (None, "", "NEW") for app in applications) \
                    and (all(_first_round_done(api, name, long_namespace, begun) for name in names)
                         or time.time() - began > FIRST_ROUND_WAIT_S):
                print(f"faults begin at {time.time() - began:.0f} s; first rounds seen: {sorted(begun)}")
                faults.start()
            time.sleep(1)
        ran = time.time() - began
        # Every token the NameNode made for alice reached one of her jobs' Secrets (no replica re-issued a token
        # another had already replaced: the loser's would be made and cancelled), and none that did was
        # cancelled while its job ran (read before the end of the jobs, which cancels them).
        created, cancelled = (found - earlier for found in _created_and_cancelled(namenode.log, "alice"))
    finally:
        faults.stop()
        logs.stop()
    written = {t.decode_identifier().sequence_number for files in history.values() for data in files
               for t in Credentials.from_bytes(data) if t.is_delegation_token}
    jobs[1].join()
    print(f"faults ({len(faults.done)} in {ran:.0f} s):\n{faults.summary()}")
    assert not faults.errors, faults.errors
    # About 12 in the window (from the drivers' first rounds to the jobs' end, one every 15-28 s plus its length).
    assert len(faults.done) >= 10, (faults.summary(), states, {name: len(files) for name, files in history.items()})
    takeovers = [f.seconds for f in faults.done if f.kind in ("delete-leader", "kill-replica") and f.seconds]
    print(f"takeovers: delete {[round(f.seconds, 1) for f in faults.done if f.kind == 'delete-leader']} s, "
          f"SIGKILL of the leader {[round(f.seconds, 1) for f in faults.done if f.kind == 'kill-replica' and f.seconds]} s")
    margin = (1 - RATIO) * POD_LIFETIMES.renew_interval_ms / 1000
    assert not takeovers or margin >= 2 * max(takeovers), (margin, takeovers)

    outcome = {}
    for name in names:
        (driver,) = job_pods(api, name, "driver", long_namespace)
        # The operator calls an application COMPLETED once its driver container has terminated, which can be
        # before the kubelet has reported the pod's phase (stop 42's run read Running after the exit).
        wait_until(f"{name}'s driver pod did not end", lambda pod=driver.metadata.name: api.read_namespaced_pod(
            pod, long_namespace).status.phase in ("Succeeded", "Failed"), 60)
        outcome[name] = api.read_namespaced_pod_log(driver.metadata.name, long_namespace)
        outcome[name + "-phase"] = api.read_namespaced_pod(driver.metadata.name, long_namespace).status.phase
    print(f"operator applications: {states}")
    assert runs["plugin"].returncode == 0, outcome["long-plugin"][-4000:]
    assert states["long-op-plugin"] == "COMPLETED", (states, spark_operator.logs()[-3000:])
    for name in ("long-plugin", "long-op-plugin"):
        _assert_outlived(name, outcome[name], outcome[name + "-phase"], 3 * POD_LIFETIMES.max_lifetime_ms / 1000)
        sequences = {t.decode_identifier().sequence_number for data in history[name]
                     for t in Credentials.from_bytes(data) if t.is_delegation_token}
        assert len(sequences) >= 4, (name, sequences)  # the first token and at least three re-issued ones
    owners = {t.decode_identifier().owner for files in history.values() for data in files
              for t in Credentials.from_bytes(data) if t.is_delegation_token}
    assert owners == {"alice"}, owners  # re-issued for alice, as a proxy user, never for the service itself
    assert len(created) >= 10 and created == written, (sorted(created), sorted(written))
    assert not cancelled, sorted(cancelled)
    # The operator's pods mount only the token Secret: no keytab or ticket cache.
    for pod in [*job_pods(api, "long-op-plugin", "driver", long_namespace),
                *job_pods(api, "long-op-plugin", "executor", long_namespace)]:
        text = json.dumps(api.api_client.sanitize_for_serialization(pod.spec)).lower()
        assert "keytab" not in text and "krb5cc" not in text and "krb5ccname" not in text, pod.metadata.name

    # Controls: no plugin, same tokens and renew service: the first expiry ends them, with the NameNode's words.
    assert states["long-op-control"] == "FAILED", states
    for name in ("long-control", "long-op-control"):
        _assert_failed_at_first_expiry(name, outcome[name], outcome[name + "-phase"], history[name][0], seconds)
    # spark-submit exits 0 for it (Spark's way in cluster mode); `spark-secrets submit` with the driver's outcome.
    assert runs["control"].returncode == 1, runs["control"].stderr[-2000:]
    assert re.search(r"driver pod alice-long/long-control-\S+ ended Failed \(container exit code 1\)",
                     runs["control"].stderr), runs["control"].stderr[-2000:]
    assert "lines of the driver pod's log:" in runs["control"].stderr, runs["control"].stderr[-2000:]

    # End of the jobs: the driver pod goes (the application with it), the garbage collector takes its Secret,
    # the service cancels.
    lasts = {name: next(t for t in Credentials.from_bytes(history[name][-1]) if t.is_delegation_token)
             for name in ("long-plugin", "long-op-plugin")}
    (driver,) = job_pods(api, "long-plugin", "driver", long_namespace)
    api.delete_namespaced_pod(driver.metadata.name, long_namespace)
    for app in applications:
        delete_application(api, app, long_namespace)
    login = keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab, tmp_path / "cc")
    for name, last in lasts.items():
        last_seq = last.decode_identifier().sequence_number
        wait_until(f"the renew service did not cancel {name}'s last token",
                   lambda seq=last_seq: seq in _created_and_cancelled(namenode.log, "alice")[1], 120)
        with pytest.raises((InvalidTokenError, TokenExpiredError)):
            renew_token(last, SpnegoAuth(login.credentials), conf=HadoopConf.load(pod_hdfs.client_conf_dir()))
    service_log = logs.text()
    assert "re-issued alice-long/" in service_log, service_log[-3000:]
    for files in history.values():  # no token password, in any encoding, in the service's output
        for data in files:
            for token in Credentials.from_bytes(data):
                for form in (token.password.hex(), base64.b64encode(token.password).decode(), token.encode_url()):
                    assert form not in service_log


def _stamped(log: str) -> list[tuple[float, str]]:
    """(epoch seconds, text) of each line of a pod log read with ``timestamps=True``."""
    lines = []
    for line in log.splitlines():
        stamp, _, text = line.partition(" ")  # RFC 3339 with up to 9 fractional digits, e.g. ...:01.5Z
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        seconds = datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{fraction or 0}")
        lines.append((seconds, text))
    return lines


def test_spark_35_job_in_pods_keeps_its_tokens_through_a_corrupt_then_missing_token_file(
        testbed: Testbed, spark35_job: Spark35Job) -> None:
    """Spark 3.5 in cluster mode (podjobs.Spark35Job, which ran beside the Kafka streaming job when the whole
    suite runs). The plugin keeps the tokens it has through a corrupt and then a missing token file, takes
    the new one, and the job reads HDFS after its first token is dead."""
    job = spark35_job
    job.join(900)
    api, ns = job.api, job.namespace
    log = job.driver_log()
    (driver,) = job_pods(api, job.app, "driver", ns)
    assert job.runs and job.runs[0].returncode == 0 and driver.status.phase == "Succeeded", (
        f"the test's failed renewals: {job.renew_errors[-5:]}\n{log_story(log)}")
    assert re.search(r"Running Spark version 3\.5\.\d+", log), log[:3000]
    assert "keeps its current tokens and retries" in log
    lines = _stamped(log)
    missing_at = next(t for t, text in lines if "is missing" in text)
    assert any("driver now uses" in text for t, text in lines if t > missing_at), log[-4000:]
    # The job read and wrote HDFS well after the first token stopped being valid.
    rounds = [t for t, text in lines if text.startswith("ROUND ")]
    assert rounds and rounds[-1] > job.expiry["first"] + 10, (rounds[-1:], job.expiry)
    assert "STOP marker found" in log, log[-3000:]  # it ended when told, not at its time limit
    # The first token was dead to the NameNode when the job ended, reading with the fresh one: used then, it was
    # refused as expired; the fresh token, the control, still renewed, was taken. (Not a renewal: Hadoop renews
    # a token past its renew date until its max date or the remover's hourly scan, which brings it back to life.)
    dead, alive = job.probes["first"], job.probes["fresh"]
    assert alive[0] == 200, alive
    assert dead[0] in (401, 403) and re.search(r"has expired|is expired|can't be found in cache", dead[1]), dead
    for token in [*job.first, *job.fresh]:
        assert token.password.hex() not in log and token.encode_url() not in log
    api.delete_namespaced_pod(driver.metadata.name, ns, grace_period_seconds=0)


def test_job_secrets_from_openbao_and_a_k8s_secret_reach_driver_and_executor_python_and_nowhere_else(
        testbed: Testbed, pod_template: Path, openbao: OpenBao, rotation: str, database: Postgres,
        tmp_path: Path) -> None:
    """A job's secrets by reference: an OpenBao KV field as a file and as an env var, a Secret of the
    namespace as a file and an env var. The driver's and both executors' Python code read them; the
    values are in no pod spec, ConfigMap (Spark's driver conf included), Event, event log (the UI's
    environment page), driver log or submission output. While the job runs, the KV value is rotated: the
    renew service (default interval) updates the job's Secret, kubelet projects it, the driver's ``fresh()``
    view and the executors' next reads see it. Leased PostgreSQL credentials are renewed and replaced by
    the service: the job logs in with them, driver and executors, after the first lease's max TTL."""
    assert testbed.kube is not None and testbed.hdfs is not None
    api = admin_api(testbed)
    app = f"secrets-{time.time_ns() % 10**8}"
    password, api_key, ca, tls_key = "pw-3e1f9a0c7d", "key-8b2d4c6e0f", "ca-51f0e2d9", "tls-key-a07c3e"
    rotated = "pw-rotated-94b1c2"
    openbao.admin().secrets.kv.v2.create_or_update_secret(f"team/{app}/db", {"password": password})
    openbao.admin().secrets.kv.v2.create_or_update_secret(f"team/{app}/api", {"value": api_key})
    api.create_namespaced_secret("alice", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{app}-tls"},
                                           "stringData": {"ca.pem": ca, "tls.key": tls_key}})
    conf = {"spark.secrets.file.db-password": f"vault:secret/team/{app}/db#password",
            "spark.secrets.env.API_KEY": f"vault:secret/team/{app}/api",
            "spark.secrets.file.ca.pem": f"k8s:{app}-tls#ca.pem",
            "spark.secrets.env.TLS_KEY": f"k8s:{app}-tls#tls.key",
            "spark.secrets.file.db-user": "vault:database/creds/etl#username",
            "spark.secrets.file.db-pass": "vault:database/creds/etl#password",
            "spark.eventLog.enabled": "true", "spark.eventLog.dir": "file:///tmp/spark-events",
            # plain text, one file, to be searched (Spark 4 compresses and rolls event logs by default)
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false",
            "spark.kubernetes.executor.deleteOnTermination": "false"}  # kept to read their specs
    env = {"VAULT_ADDR": openbao.address, "VAULT_TOKEN": openbao.token(), "HOME": str(tmp_path)}
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer",
                             extra=("--vault-role", rotation, "--vault-address", openbao.address))
    written: list[float] = []
    strangers: dict[str, str] = {}

    def try_as_a_stranger(driver: k8s.V1Pod) -> None:
        """While the pods run: the files are 0440 with the pods' fsGroup, so another user of the container
        cannot read them; the same user given that group can (the control: the read itself works)."""
        try:
            (executor, *_) = job_pods(api, app, "executor")
            for pod in (driver, executor):
                for name, path in (("job", "/mnt/secrets/spark-secrets/db-password"),
                                   ("k8s", f"/mnt/secrets/spark-secrets-k8s/{app}-tls/ca.pem")):
                    role = pod.metadata.labels["spark-role"]
                    strangers[f"{role} {name}"] = _read_in_pod(pod, path)
                    strangers[f"{role} {name} with the group"] = _read_in_pod(pod, path, (185,))
        except (AssertionError, OSError, ValueError, k8s.exceptions.ApiException) as exc:
            strangers["error"] = repr(exc)

    def rotate_when_the_job_waits() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not written:
            drivers = api.list_namespaced_pod("alice", label_selector=f"spark-role=driver,spark-app-name={app}").items
            with contextlib.suppress(k8s.exceptions.ApiException):
                if drivers and "WAITING-FOR-ROTATION" in api.read_namespaced_pod_log(drivers[0].metadata.name, "alice"):
                    try_as_a_stranger(drivers[0])
                    openbao.admin().secrets.kv.v2.create_or_update_secret(f"team/{app}/db", {"password": rotated})
                    written.append(time.monotonic())
            time.sleep(1)
    rotator = threading.Thread(target=rotate_when_the_job_waits, daemon=True)
    rotator.start()

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()
    try:
        proc = submit_as_alice(testbed, app, pod_template, conf, "secrets_job.py", "2", "/tmp/spark-events", digest(rotated),
                       str(database.port), str(LEASE_MAX_TTL_S), env_extra=env)
        (driver,) = job_pods(api, app, "driver")
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        assert proc.returncode == 0, proc.stderr[-3000:] + log[-3000:] + renewer.log.read_text()[-2000:]
        assert written, "the job never waited for the rotation"
        assert re.search(r"ROTATION-SEEN driver after [\d.]+ s", log), log[-3000:]
        after = _lines(log, "ROTATED")
        assert after and all(p["file"] == digest(rotated) and p["role"] == "executor" for p in after), after
        assert all(p["env"] == digest(api_key) for p in after)  # env: fixed at the container's start
        assert renewer.metrics()["secret_rotations_total"] >= 1
        logins = _lines(log, "DBLOGIN")
        assert logins and all(entry["ok"] for entry in logins), logins
        assert len({entry["user"] for entry in logins}) >= 2, logins  # replaced while the job ran
        assert any(e["role"] == "driver" and float(str(e["t"])) > LEASE_MAX_TTL_S for e in logins), logins
        assert [e["role"] for e in logins].count("executor") == 4, logins
        probes = _lines(log, "SECRETS")
        executors = {p.metadata.name for p in job_pods(api, app, "executor")}
        assert {p["pod"] for p in probes} == {"driver", *executors} and len(executors) == 2, probes
        for probe in probes:
            assert (probe["file"], probe["env"], probe["k8s_file"], probe["k8s_env"]) == (
                digest(password), digest(api_key), digest(ca), digest(tls_key)), probe
            assert probe["dir"] == "/mnt/secrets/spark-secrets"
            assert probe["path"] == "/mnt/secrets/spark-secrets/db-password", probe
            # 0440, group the pods' fsGroup (185 by default), which the job's processes hold.
            assert (probe["mode"], probe["k8s_mode"], probe["gid"]) == ("0o440", "0o440", 185), probe
            assert probe["uid"] == 185 and 185 in probe["groups"], probe  # type: ignore[operator]
        assert strangers == {f"{role} {name}{extra}": "READ" if extra else "DENIED" for role in ("driver", "executor")
                             for name in ("job", "k8s") for extra in ("", " with the group")}, strangers

        # Where the values must not be: pod specs, ConfigMaps, Events, the event log, logs and output.
        (job_secret,) = [s for s in api.list_namespaced_secret("alice").items
                         if (s.metadata.labels or {}).get("spark-secrets.io/kind") == "job-secrets"
                         and (s.metadata.labels or {}).get("spark-secrets.io/app-name") == app]
        assert [(o.kind, o.name) for o in job_secret.metadata.owner_references] == [("Pod", driver.metadata.name)]
        events = [line for line in log.splitlines() if line.startswith("EVENTLOG ")]
        environment = next(line for line in events if "SparkListenerEnvironmentUpdate" in line)
        # The setting is there with the reference, or with Spark's redaction of it ("secret" in its name).
        shown = re.search(r'"spark\.secrets\.file\.db-password":"([^"]*)"', environment)
        assert shown and shown.group(1) in (f"vault:secret/team/{app}/db#password", "*********(redacted)"), shown
        client = api.api_client
        blob = "\n".join([json.dumps(client.sanitize_for_serialization(x)) for x in (
            api.list_namespaced_pod("alice"), api.list_namespaced_config_map("alice"),
            api.list_namespaced_event("alice"))] + [log, proc.stdout, proc.stderr])
        blob += renewer.log.read_text()
        db_password = base64.b64decode(job_secret.data["db-pass"]).decode()  # the latest leased one
        for value in (password, api_key, ca, tls_key, rotated, db_password):
            for form in (value, base64.b64encode(value.encode()).decode()):
                assert form not in blob, form

        # The job's end: the driver pod goes, the garbage collector takes the Secret, the lease is revoked.
        last = api.read_namespaced_secret(job_secret.metadata.name, "alice").data
        db_user, db_password = (base64.b64decode(last[k]).decode() for k in ("db-user", "db-pass"))
        api.delete_namespaced_pod(driver.metadata.name, "alice")
        wait_until("the lease was not revoked at the job's end", lambda: renewer.metrics().get(
            'token_operations_total{kind="vault-lease",operation="revoke"}', 0) >= 1, 90, renewer)
        with pytest.raises(TestbedError, match="password authentication failed"):
            database.login(db_user, db_password)
    finally:
        renewer.stop()
        written.append(0.0)  # ends the thread
        for pod in api.list_namespaced_pod("alice", label_selector=f"spark-app-name={app}").items:
            api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)
        api.delete_namespaced_secret(f"{app}-tls", "alice")
