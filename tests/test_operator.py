"""The real kubeflow spark-operator (v2.5.2, installed with its own chart by a real helm) runs alice's
SparkApplications rendered by ``spark-secrets render --format spark-operator --into`` from the operator's own
PySpark example: its controller submits them with Spark 4.3, its webhook mutates their pods, and they read
and write secure HDFS with only the mounted token Secret."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND
from spark_secrets.testbed.bed import Testbed
from spark_secrets.testbed.operator import SparkOperator
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, JOBS_DIR

from operatorapps import ENDED, create_as_alice, delete_application, example_for_the_bed, render_into, wait_for_state
from podjobs import admin_api, prepare_job_files
from renewers import RenewerProcess, assert_cancelled, wait_until

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def operator(testbed: Testbed, spark_operator: SparkOperator) -> SparkOperator:
    """The session's operator; alice's namespace holds the job scripts and the bed's Hadoop configuration."""
    assert testbed.hdfs is not None
    prepare_job_files(testbed, "alice", testbed.hdfs.client_conf_dir())
    return spark_operator


def _driver_log(api: k8s.CoreV1Api, driver: str) -> str:
    try:
        return str(api.read_namespaced_pod_log(driver, "alice"))
    except k8s.exceptions.ApiException as exc:
        return f"(no driver log: {exc.reason})"


def test_the_operators_pyspark_example_rendered_with_into_runs_to_completed_with_only_the_mounted_token(
        testbed: Testbed, operator: SparkOperator, renewer_rbac: None, tmp_path: Path) -> None:
    """Alice renders the operator's example with her TGT and creates it; the operator's controller (no ticket,
    no keytab) submits it; driver and executor read and write HDFS with the token Secret. The renew service
    gives the Secret to the driver pod; deleting the application takes the pod, the Secret and the tokens."""
    assert testbed.hdfs is not None
    api = admin_api(testbed)
    name = f"op-pi-{time.time_ns() % 10**6}"
    source = example_for_the_bed(testbed, name, tmp_path, "pod_job.py", [f"/user/alice/{name}", "1"])
    app = render_into(testbed, source, name, tmp_path, f"spark.secrets.plugin.jar={IMAGE_PLUGIN_JAR}",
                      "spark.secrets.file.db-password=env:DB_PASSWORD", env={"DB_PASSWORD": "pw-5e1f0c9a"})
    assert app["spec"]["mainApplicationFile"] == f"local://{JOBS_DIR}/pod_job.py"  # the user's own fields kept
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer", extra=("--sweep-interval", "2s"))
    try:
        renewer.wait_ready()
        create_as_alice(testbed, app)
        state = wait_for_state(operator, name, ENDED, 420)
        driver = f"{name}-driver"
        assert state == "COMPLETED", (operator.application("alice", name).get("status"), operator.logs()[-4000:],
                                      _driver_log(api, driver)[-3000:])
        log = api.read_namespaced_pod_log(driver, "alice")
        assert "WROTE AND READ 10000 rows" in log, log[-3000:]
        assert "token refresher" in log, log[-3000:]  # the plugin, from the rendered sparkConf

        (secret,) = [s for s in api.list_namespaced_secret("alice").items
                     if (s.metadata.labels or {}).get("spark-secrets.io/app-name") == name
                     and s.metadata.labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS]
        pod = api.read_namespaced_pod(driver, "alice")
        assert {v.secret.secret_name for v in pod.spec.volumes if v.secret is not None} >= {secret.metadata.name}
        # The job's secret file: from spec.{driver,executor}.template, 0440 with the pods' fsGroup, in both pods.
        selector = f"spark-app-selector={pod.metadata.labels['spark-app-selector']},spark-role=executor"
        (executor,) = api.list_namespaced_pod("alice", label_selector=selector).items
        for each in (pod, executor):
            (files,) = [v.secret for v in each.spec.volumes if v.secret is not None
                        and v.secret.secret_name.endswith("-job-secrets")]
            assert files.default_mode == 0o440 and each.spec.security_context.fs_group == 185, each.metadata.name
        assert "pw-5e1f0c9a" not in yaml.safe_dump(app) and "pw-5e1f0c9a" not in log
        wait_until("the renew service did not give the Secret to the driver pod", lambda: [
            (o.kind, o.name) for o in api.read_namespaced_secret(secret.metadata.name, "alice").metadata.owner_references
            or []] == [("Pod", driver)], 60, renewer)
        token = Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"])).tokens[
            testbed.hdfs.rpc_token_service]

        delete_application(api, name)
        wait_until("the Secret outlived its application", lambda: not [
            s for s in api.list_namespaced_secret("alice").items if s.metadata.name == secret.metadata.name], 120, renewer)
        assert_cancelled(testbed, testbed.hdfs, token, renewer, tmp_path)
    finally:
        renewer.stop()
