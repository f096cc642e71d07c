"""alice's own Spark Connect server in real pods on the node (issue 32), started by `connect()` in a notebook
process on the host that has pyspark's Connect client, no Java and, once `connect()` returns, no ticket cache:
queries on secure HDFS run in the server's pods with its token Secret; a second `connect()` reuses the server; a
wrong token is refused by Spark's own check; once idle for the timeout the server deletes its pod, and the renew
service cancels its tokens with its Secret."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, node_job_conf

from podjobs import admin_api, driver_ports
from renewers import RenewerProcess, assert_cancelled, wait_until
from test_pods import pod_template  # noqa: F401 - a fixture

pytestmark = pytest.mark.testbed
pytest.importorskip("grpc", reason="the Connect client's packages (the connect extra)")

IDLE_S = 45
NOTEBOOK = """
import json, os, sys
from pyspark import SparkContext
from submit_steps.notebook import connect
conf, target, kill_ticket = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
spark = connect(conf)
if kill_ticket:  # the notebook keeps no Kerberos credentials once connect() returned
    os.remove(os.environ["KRB5CCNAME"].removeprefix("FILE:"))
spark.range(0, 5000, numPartitions=4).selectExpr("id", "id * 3 AS x").write.mode("overwrite").parquet(target)
back = spark.read.parquet(target)
print("RESULT", json.dumps({"rows": back.count(), "sum": back.selectExpr("sum(x)").first()[0],
                            "jvm": SparkContext._gateway is not None}), flush=True)
"""
WRONG = """
import sys
from pyspark.sql.connect.session import SparkSession
from spark_secrets.connect.channel import BearerChannelBuilder
try:
    SparkSession.builder.channelBuilder(BearerChannelBuilder(sys.argv[1], sys.argv[2])).getOrCreate().range(3).count()
    print("ACCEPTED")
except Exception as exc:
    print("REFUSED", str(exc).replace(chr(10), " ")[:400])
"""


def _notebook_env(testbed: Testbed, tmp_path: Path, name: str) -> dict[str, str]:
    """alice's notebook: her kubeconfig and a copy of her ticket cache; no Java, no Spark distribution."""
    ccache = tmp_path / f"{name}.cc"
    shutil.copyfile(testbed.ticket_cache("alice"), ccache)
    env = {k: v for k, v in testbed.env("alice", ccache).items()
           if k not in ("JAVA_HOME", "SPARK_HOME", "SPARK_SUBMIT_OPTS", "PYSPARK_SUBMIT_ARGS")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not (Path(p) / "java").exists())
    return env


def _run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600)


def _result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-2000:] + proc.stderr[-4000:]
    return dict(json.loads(line.split(" ", 1)[1]))


def test_alice_s_connect_server_runs_her_queries_is_reused_refuses_a_wrong_token_and_ends_when_idle(
        testbed: Testbed, pod_template: Path, renewer_rbac: None, tmp_path: Path) -> None:  # noqa: F811
    assert testbed.kube is not None and testbed.hdfs is not None and testbed.node is not None
    api = admin_api(testbed)
    service = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer")
    conf = {**node_job_conf(testbed.image("spark"), testbed.kube.server, pod_template, executors=1),
            **driver_ports(7198), "spark.master": f"k8s://{testbed.kube.server}", "spark.kubernetes.namespace": "alice",
            "spark.app.name": "alice-connect", "spark.secrets.hadoop.filesystems": testbed.hdfs.uri,
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
            "spark.secrets.connect.idleTimeout": f"{IDLE_S}s"}
    for key in ("spark.kubernetes.submission.waitAppCompletion", "spark.kubernetes.report.interval"):
        conf.pop(key)
    target = f"{testbed.hdfs.uri}/user/alice/connect-{time.time_ns() % 10**6}"
    try:
        service.wait_ready()
        first = _run(NOTEBOOK, _notebook_env(testbed, tmp_path, "first"), json.dumps(conf), target, "1")
        result = _result(first)
        assert result == {"rows": 5000, "sum": 3 * sum(range(5000)), "jvm": False}, result
        assert "started your Connect server at sc://" in first.stderr, first.stderr[-2000:]
        (driver,) = api.list_namespaced_pod("alice", label_selector="spark-secrets.io/connect-user=alice").items
        bearer = api.read_namespaced_secret(driver.metadata.annotations["spark-secrets.io/connect-token-secret"], "alice")
        token = base64.b64decode(bearer.data["token"]).decode()
        url = first.stderr.split("Connect server at ", 1)[1].split()[0]

        # The files alice's queries wrote are hers: the NameNode took the token as alice's.
        listing = testbed.hdfs.fs("-ls", target, ccache=testbed.ticket_cache("alice"))
        assert listing.returncode == 0 and " alice " in listing.stdout.decode(), listing

        again = _run(NOTEBOOK, _notebook_env(testbed, tmp_path, "again"), json.dumps(conf), target + "-2", "0")
        assert _result(again)["rows"] == 5000
        assert "reusing your Connect server at " + url in again.stderr, again.stderr[-2000:]
        assert len(api.list_namespaced_pod("alice", label_selector="spark-secrets.io/connect-user=alice").items) == 1

        refused = _run(WRONG, _notebook_env(testbed, tmp_path, "wrong"), url, "not-" + token)
        assert "REFUSED" in refused.stdout and "Invalid authentication token" in refused.stdout, refused.stdout
        accepted = _run(WRONG, _notebook_env(testbed, tmp_path, "right"), url, token)  # the control
        assert "ACCEPTED" in accepted.stdout, accepted.stdout + accepted.stderr[-2000:]

        # The token is in no pod spec, ConfigMap, log or output.
        pod_json = json.dumps(api.api_client.sanitize_for_serialization(driver))
        config_maps = json.dumps([c.data for c in api.list_namespaced_config_map("alice").items])
        log = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        for text in (pod_json, config_maps, log, first.stdout + first.stderr, again.stdout + again.stderr):
            assert token not in text

        # Idle: the server deletes its own pod; the token Secret goes with it and the service cancels its tokens.
        (secret_name,) = [v.secret.secret_name for v in driver.spec.volumes
                          if v.secret is not None and v.secret.secret_name.endswith("-hadoop-tokens")]
        tokens = Credentials.from_bytes(base64.b64decode(api.read_namespaced_secret(secret_name, "alice").data["hadoop-tokens"]))
        began = time.monotonic()
        wait_until("the idle server's pod was not deleted", lambda: not api.list_namespaced_pod(
            "alice", label_selector="spark-secrets.io/connect-user=alice").items, IDLE_S + 120, service)
        assert time.monotonic() - began > IDLE_S - 25, "it ended before its idle timeout"
        hdfs_token = next(t for t in tokens if t.kind == "HDFS_DELEGATION_TOKEN")
        assert_cancelled(testbed, testbed.hdfs, hdfs_token, service, tmp_path)
    finally:
        service.stop()
        for pod in api.list_namespaced_pod("alice", label_selector="spark-secrets.io/connect-user=alice").items:
            api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)
