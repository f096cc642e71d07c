"""alice's SparkApplications for the real spark-operator: the operator's own PySpark example as she adapts it
to the test bed, rendered with ``spark-secrets render --format spark-operator --into`` and created as her.
Shared by test_operator.py and the long job of test_pods.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, Testbed
from spark_secrets.testbed.operator import SparkOperator, operator_example
from spark_secrets.testbed.spark import JOBS_DIR, node_pod_template, spark_env

from podjobs import HADOOP_CONF_MAP

GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


def example_for_the_bed(bed: Testbed, name: str, tmp: Path, script: str, script_args: list[str], *,
                        namespace: str = "alice", executors: int = 1,
                        conf: dict[str, str] | None = None) -> Path:
    """The operator's spark-pi-python example, as alice adapts it to run ``script`` on this cluster: the image,
    host-network pod templates with the realm's krb5.conf (``spec.{driver,executor}.template``), small
    requests for a 2-core node, her namespace's Hadoop configuration and her own ``conf``."""
    app = yaml.safe_load(operator_example().read_text())
    app["metadata"] = {"name": name, "namespace": namespace}
    spec = app["spec"]
    spec.update(image=bed.image("spark"), imagePullPolicy="Never", mainApplicationFile=f"local://{JOBS_DIR}/{script}",
                arguments=script_args, hadoopConfigMap=HADOOP_CONF_MAP, restartPolicy={"type": "Never"},
                sparkConf={"spark.ui.enabled": "false", "spark.blockManager.port": "0",
                           "spark.driver.blockManager.port": "7079", "spark.shuffle.readHostLocalDisk": "false",
                           "spark.kubernetes.executor.deleteOnTermination": "false", **(conf or {})})
    template = yaml.safe_load(node_pod_template(tmp / "pod.json", KRB5_CONFIG_MAP).read_text())
    for role in ("driver", "executor"):
        part = spec[role]
        pod = {"spec": {**template["spec"], "containers": [
            {**template["spec"]["containers"][0], "name": f"spark-kubernetes-{role}"}]}}
        part.update(coreRequest="100m", memory="768m", template=pod)
    spec["driver"]["serviceAccount"] = "spark"  # alice's job account in her namespace
    spec["executor"]["instances"] = executors
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(app, sort_keys=False))
    return path


def render_into(bed: Testbed, source: Path, name: str, tmp: Path, *conf: str, namespace: str = "alice",
                filesystem: str = "", hadoop_conf: Path | None = None,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """``spark-secrets render --format spark-operator --into`` as alice, with her TGT, for ``filesystem``
    (the bed's HDFS unless given) whose client configuration is ``hadoop_conf``."""
    assert bed.hdfs is not None
    out = tmp / f"{name}-rendered.yaml"
    argv = [sys.executable, "-m", "spark_secrets", "render", "--format", "spark-operator", "--into", str(source),
            "-o", str(out), "--", "--name", name, "--conf", f"spark.kubernetes.namespace={namespace}",
            "--conf", f"spark.secrets.hadoop.filesystems={filesystem or bed.hdfs.uri}",
            "--conf", f"spark.secrets.renewer={RENEWER}"]
    for item in conf:
        argv += ["--conf", item]
    environment = spark_env(bed.env("alice", bed.ticket_cache("alice")))
    if hadoop_conf is not None:
        environment["HADOOP_CONF_DIR"] = str(hadoop_conf)
    done = subprocess.run(argv, env={**environment, **(env or {})}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return yaml.safe_load(out.read_text())


def create_as_alice(bed: Testbed, app: dict[str, Any], namespace: str = "alice") -> None:
    assert bed.kube is not None
    api = k8s.CustomObjectsApi(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("alice", namespace=namespace))))
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, app)


def delete_application(api: k8s.CoreV1Api, name: str, namespace: str = "alice") -> None:
    k8s.CustomObjectsApi(api.api_client).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def wait_for_state(operator: SparkOperator, name: str, states: set[str], seconds: float,
                   namespace: str = "alice") -> str:
    deadline = time.monotonic() + seconds
    while (state := operator.state(namespace, name)) not in states:
        assert time.monotonic() < deadline, (state, operator.application(namespace, name).get("status"))
        time.sleep(2)
    return state


#: An application's states once it has ended.
ENDED = {"COMPLETED", "FAILED", "SUBMISSION_FAILED"}
