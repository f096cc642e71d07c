"""alice's own Spark Connect server in the shared ``controller`` layout's namespace (issue 32), under the layouts'
RBAC and pod policy: she may create Secrets there but read none, so `connect()` finds her server again by the record
of the pod it made (not by reading Secrets), and reaches it at the pod's IP (a Service there is anyone's to replace).
Her notebook (the pyspark-client venv) writes and reads HDFS through a first `connect()`, which starts the server, and
a second one, which reuses it. That bob's pods may not use the server's bearer Secret: test_pod_admission.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, Testbed
from spark_secrets.testbed.paths import notebook_python
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, node_job_conf, node_pod_template

from podjobs import driver_ports
from test_rbac import NAMESPACES, layouts  # noqa: F401 - layouts is a fixture

pytestmark = pytest.mark.testbed
pytest.importorskip("grpc", reason="the Connect client's packages (the connect extra)")

NOTEBOOK = """
import json, sys
from submit_steps.notebook import connect
conf, target = json.loads(sys.argv[1]), sys.argv[2]
for i in range(2):  # the second connect() finds the server the first one started
    spark = connect(conf)
    spark.range(0, 100).write.mode("overwrite").parquet(f"{target}/r{i}")
    print("ROUND", json.dumps({"i": i, "n": spark.read.parquet(f"{target}/r{i}").count()}), flush=True)
"""


def test_alice_s_connect_server_in_the_controller_layout_is_started_reused_and_reached_at_its_pod_ip(
        layouts: Testbed, tmp_path: Path) -> None:  # noqa: F811
    kube, hdfs = layouts.kube, layouts.hdfs
    assert kube is not None and hdfs is not None
    if layouts.node is None:
        pytest.skip("needs the kubelet node")
    ns = NAMESPACES["controller"]
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": KRB5_CONFIG_MAP, "namespace": ns},
                "data": {"krb5.conf": layouts.kdc_required().krb5_conf.read_text()}})
    template = node_pod_template(tmp_path / "template.json", KRB5_CONFIG_MAP, jobs_config_map=None)
    conf = {**node_job_conf(layouts.image("spark"), kube.server, template, executors=1), **driver_ports(7228),
            "spark.master": f"k8s://{kube.server}", "spark.kubernetes.namespace": ns, "spark.app.name": "alice-shared",
            "spark.secrets.layout": "controller", "spark.secrets.hadoop.filesystems": hdfs.uri,
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
            "spark.secrets.connect.idleTimeout": "300s"}
    del conf["spark.kubernetes.authenticate.driver.serviceAccountName"]  # the layout's: spark-alice
    env = {k: v for k, v in layouts.env("alice", layouts.ticket_cache("alice")).items()
           if k not in ("JAVA_HOME", "SPARK_HOME", "SPARK_SUBMIT_OPTS")}
    env.update(KUBECONFIG=str(kube.kubeconfig("alice")), HADOOP_CONF_DIR=str(hdfs.client_conf_dir()),
               XDG_STATE_HOME=str(tmp_path / "state"),
               PATH=os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not (Path(p) / "java").exists()))
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("admin"))))
    alice = k8s.CoreV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("alice"))))
    target = f"{hdfs.uri}/user/alice/connect-shared-{time.time_ns() % 10**6}"
    try:
        done = subprocess.run([str(notebook_python()), str(script), json.dumps(conf), target], env=env,
                              capture_output=True, text=True, timeout=600)
        pods = admin.list_namespaced_pod(ns, label_selector="spark-secrets.io/connect-user=alice,spark-role=driver").items
        if done.returncode != 0:  # the client's error without the JVM's stack, and what the server logged
            why = "\n".join(line for line in done.stderr.splitlines() if not line.lstrip().startswith("at "))
            full = [admin.read_namespaced_pod_log(p.metadata.name, ns) for p in pods]
            (tmp_path / "driver.log").write_text("\n".join(full))
            logs = [text[max(0, text.find("Exception") - 2000):][:6000] for text in full]
            raise AssertionError(f"{done.stdout[-2000:]}\n{why[-4000:]}\nthe driver's log:\n{logs}")
        rounds = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if line.startswith("ROUND ")]
        assert rounds == [{"i": 0, "n": 100}, {"i": 1, "n": 100}], done.stdout + done.stderr[-2000:]
        # Started once, then reused, both times at the pod's IP (no Service name in the shared layout).
        (pod,) = pods
        ip = re.escape(pod.status.pod_ip)
        assert re.search(rf"started your Connect server at sc://{ip}:\d+ ", done.stderr), done.stderr[-2000:]
        assert re.search(rf"reusing your Connect server at sc://{ip}:\d+ ", done.stderr), done.stderr[-2000:]
        # Found without reading a Secret: alice may read none here, not even her server's bearer Secret, which is
        # named as her job secrets (guarded by the pod policy).
        bearer = pod.metadata.annotations["spark-secrets.io/connect-token-secret"]
        assert bearer.startswith("alice--connect-alice-") and bearer.endswith("-job-secrets"), bearer
        with pytest.raises(ApiException) as refused:
            alice.read_namespaced_secret(bearer, ns)
        assert refused.value.status == 403
        assert pod.spec.service_account_name == "spark-alice"
        # Her record of the server is hers alone.
        (record,) = (tmp_path / "state" / "spark-secrets" / "connect").iterdir()
        assert record.name == f"{ns}_{pod.metadata.uid}" and record.stat().st_mode & 0o077 == 0
    finally:
        for pod in admin.list_namespaced_pod(ns, label_selector="spark-secrets.io/connect-user").items:
            admin.delete_namespaced_pod(pod.metadata.name, ns, grace_period_seconds=0)
