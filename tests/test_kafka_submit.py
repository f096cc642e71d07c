"""Submissions with Kafka tokens on the real Kafka 4.4 broker, KDC, NameNode and API server (issue 30): bad
settings stop them in one line and leave nothing behind. (The renew service keeping Kafka tokens alive, and
refusing another user's planted in a Secret, is proven with a streaming job in pods: tests/test_kafka_pods.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.daemon import free_port
from spark_secrets.testbed.kafka import KafkaBroker
from spark_secrets.testbed.spark import spark_env

from test_pods import _created_and_cancelled
from test_kafka import spark_conf, tool_tokens

pytestmark = pytest.mark.testbed


@pytest.mark.parametrize("case", ["unreachable brokers", "wrong service name", "no ticket"])
def test_a_submission_with_bad_kafka_settings_fails_in_one_line_and_leaves_nothing(
        testbed: Testbed, kafka: KafkaBroker, tmp_path: Path, case: str) -> None:
    """``spark-secrets conf`` for a job reading HDFS and Kafka: exit 2, one line naming the setting, no Secret,
    no Kafka token, and the HDFS token obtained before Kafka's failed is cancelled again (the NameNode's log)."""
    assert testbed.hdfs is not None and testbed.kube is not None
    alice_cc = testbed.ticket_cache("alice")
    ccache = alice_cc
    if case == "unreachable brokers":
        port = free_port()
        conf, words = spark_conf(kafka, servers=f"localhost:{port}"), [f"localhost:{port}", "Connection refused"]
    elif case == "wrong service name":
        conf = spark_conf(kafka, **{"sasl.kerberos.service.name": "wrong"})
        words = ["the KDC knows no principal for wrong/localhost", "spark.kafka.clusters.c1.sasl.kerberos.service.name"]
    else:
        conf, ccache, words = spark_conf(kafka), tmp_path / "no-such-ccache", ["kinit"]
    app = f"bad-kafka-{len(case)}"
    settings = {**conf, "spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": testbed.hdfs.uri,
                "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": "none"}
    (namenode,) = testbed.hdfs.namenodes.values()
    kafka_before = set(tool_tokens(kafka, alice_cc))
    created_before, _ = _created_and_cancelled(namenode.log, "alice")
    args = [arg for k, v in settings.items() for arg in ("--conf", f"{k}={v}")]
    run = subprocess.run([sys.executable, "-m", "spark_secrets", "conf", "--", "--deploy-mode", "cluster", "--name",
                          app, *args], env=spark_env(testbed.env("alice", ccache)), capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr
    admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(testbed.kube.kubeconfig("admin"))))
    assert not admin.list_namespaced_secret("alice", label_selector=f"spark-secrets.io/app-name={app}").items
    assert set(tool_tokens(kafka, alice_cc)) <= kafka_before  # no Kafka token (older ones may expire meanwhile)
    created, cancelled = _created_and_cancelled(namenode.log, "alice")
    assert created - created_before <= cancelled, (sorted(created - created_before), sorted(cancelled))
    if case == "wrong service name":  # the control: an HDFS token was made (before Kafka failed), and cancelled
        assert created - created_before, "no HDFS token was obtained before Kafka's failed"
