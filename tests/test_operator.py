"""The real kubeflow spark-operator (v2.5.2, installed with its own chart by a real helm) runs alice's
SparkApplications rendered by ``spark-secrets render --format spark-operator --into`` from the operator's own
PySpark example: its controller submits them with Spark 4.3, its webhook mutates their pods, and they read
and write secure HDFS with only the mounted token Secret."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND
from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, Testbed
from spark_secrets.testbed.operator import SparkOperator, operator_example
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, JOBS_DIR, node_pod_template, spark_env

from renewers import RenewerProcess, assert_cancelled, wait_until

pytestmark = pytest.mark.testbed

SCRIPTS = Path(__file__).parent / "scripts"
HADOOP_CONF_MAP = "alice-hadoop-conf"
GROUP, VERSION, PLURAL = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


def _admin(bed: Testbed) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))


@pytest.fixture(scope="module")
def operator(testbed: Testbed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkOperator]:
    """The operator for alice's namespace; alice may manage SparkApplications there (as a platform team grants),
    and her namespace holds the job scripts and the Hadoop client configuration (``spec.hadoopConfigMap``)."""
    assert testbed.kube is not None and testbed.node is not None and testbed.hdfs is not None
    kube = testbed.kube
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "spark-applications", "namespace": "alice"},
                "rules": [{"apiGroups": [GROUP], "resources": [PLURAL, f"{PLURAL}/status"],
                           "verbs": ["create", "get", "list", "watch", "delete", "patch", "update"]}]})
    kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "alice-spark-applications", "namespace": "alice"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "spark-applications"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]})
    conf_dir = testbed.hdfs.client_conf_dir()
    for name, data in ((HADOOP_CONF_MAP, {f: (conf_dir / f).read_text() for f in ("core-site.xml", "hdfs-site.xml")}),
                       (JOBS_CONFIG_MAP, {p.name: p.read_text() for p in sorted(SCRIPTS.glob("*.py"))})):
        kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "alice"},
                    "data": data})
    started = time.monotonic()
    server = SparkOperator(testbed, tmp_path_factory.mktemp("operator"), ["alice"])
    server.install()
    print(f"\nspark-operator installed by helm in {time.monotonic() - started:.0f} s")
    yield server
    server.uninstall()


def example_for_the_bed(bed: Testbed, name: str, tmp: Path, script_args: list[str]) -> Path:
    """The operator's spark-pi-python example, as alice adapts it to run pod_job.py on this cluster: the image,
    host-network pod templates with the realm's krb5.conf (``spec.{driver,executor}.template``), small
    requests for a 2-core node and her namespace's Hadoop configuration."""
    app = yaml.safe_load(operator_example().read_text())
    app["metadata"] = {"name": name, "namespace": "alice"}
    spec = app["spec"]
    spec.update(image=bed.image("spark"), imagePullPolicy="Never", mainApplicationFile=f"local://{JOBS_DIR}/pod_job.py",
                arguments=script_args, hadoopConfigMap=HADOOP_CONF_MAP, restartPolicy={"type": "Never"},
                sparkConf={"spark.ui.enabled": "false", "spark.blockManager.port": "0",
                           "spark.driver.blockManager.port": "7079", "spark.shuffle.readHostLocalDisk": "false",
                           "spark.kubernetes.executor.deleteOnTermination": "false"})
    template = yaml.safe_load(node_pod_template(tmp / "pod.json", KRB5_CONFIG_MAP).read_text())
    for role in ("driver", "executor"):
        part = spec[role]
        pod = {"spec": {**template["spec"], "containers": [
            {**template["spec"]["containers"][0], "name": f"spark-kubernetes-{role}"}]}}
        part.update(coreRequest="100m", memory="768m", template=pod)
    spec["driver"]["serviceAccount"] = "spark"  # alice's job account in her namespace
    spec["executor"]["instances"] = 1
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(app, sort_keys=False))
    return path


def render_into(bed: Testbed, source: Path, name: str, tmp: Path, *conf: str,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    """``spark-secrets render --format spark-operator --into`` as alice, with her TGT."""
    assert bed.hdfs is not None
    out = tmp / f"{name}-rendered.yaml"
    argv = [sys.executable, "-m", "spark_secrets", "render", "--format", "spark-operator", "--into", str(source),
            "-o", str(out), "--", "--name", name, "--conf", "spark.kubernetes.namespace=alice",
            "--conf", f"spark.secrets.hadoop.filesystems={bed.hdfs.uri}", "--conf", f"spark.secrets.renewer={RENEWER}"]
    for item in conf:
        argv += ["--conf", item]
    done = subprocess.run(argv, env={**spark_env(bed.env("alice", bed.ticket_cache("alice"))), **(env or {})},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return yaml.safe_load(out.read_text())


def create_as_alice(bed: Testbed, app: dict[str, Any]) -> None:
    assert bed.kube is not None
    api = k8s.CustomObjectsApi(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("alice", namespace="alice"))))
    api.create_namespaced_custom_object(GROUP, VERSION, "alice", PLURAL, app)


def _driver_log(api: k8s.CoreV1Api, driver: str) -> str:
    try:
        return str(api.read_namespaced_pod_log(driver, "alice"))
    except k8s.exceptions.ApiException as exc:
        return f"(no driver log: {exc.reason})"


def wait_for_state(operator: SparkOperator, name: str, states: set[str], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while (state := operator.state("alice", name)) not in states:
        assert time.monotonic() < deadline, (state, operator.application("alice", name).get("status"))
        time.sleep(2)
    return state


def test_the_operators_pyspark_example_rendered_with_into_runs_to_completed_with_only_the_mounted_token(
        testbed: Testbed, operator: SparkOperator, renewer_rbac: None, tmp_path: Path) -> None:
    """Alice renders the operator's example with her TGT and creates it; the operator's controller (no ticket,
    no keytab) submits it; driver and executor read and write HDFS with the token Secret. The renew service
    gives the Secret to the driver pod; deleting the application takes the pod, the Secret and the tokens."""
    assert testbed.hdfs is not None
    api = _admin(testbed)
    name = f"op-pi-{time.time_ns() % 10**6}"
    source = example_for_the_bed(testbed, name, tmp_path, [f"/user/alice/{name}", "1"])
    app = render_into(testbed, source, name, tmp_path, f"spark.secrets.plugin.jar={IMAGE_PLUGIN_JAR}",
                      "spark.secrets.file.db-password=env:DB_PASSWORD", env={"DB_PASSWORD": "pw-5e1f0c9a"})
    assert app["spec"]["mainApplicationFile"] == f"local://{JOBS_DIR}/pod_job.py"  # the user's own fields kept
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer", extra=("--sweep-interval", "2s"))
    try:
        renewer.wait_ready()
        create_as_alice(testbed, app)
        state = wait_for_state(operator, name, {"COMPLETED", "FAILED", "SUBMISSION_FAILED"}, 420)
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

        k8s.CustomObjectsApi(api.api_client).delete_namespaced_custom_object(GROUP, VERSION, "alice", PLURAL, name)
        wait_until("the Secret outlived its application", lambda: not [
            s for s in api.list_namespaced_secret("alice").items if s.metadata.name == secret.metadata.name], 120, renewer)
        assert_cancelled(testbed, testbed.hdfs, token, renewer, tmp_path)
    finally:
        renewer.stop()
