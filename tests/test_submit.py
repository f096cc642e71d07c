"""Submission steps on the real test bed: alice's TGT → token Secret → spark-submit in cluster mode
against the real API server (Spark 4.x and 3.5), through both entry points, and the failure cases."""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.spark import SPARK_LINES, cluster_submit_argv, run_spark_submit, spark_env
from spark_secrets.plugin.jar import PLUGIN_CLASS
from submit_steps.settings import SPARK_CREDENTIALS_DIR
from spark_secrets.secrets.tokensecret import LABEL_APP, LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER

pytestmark = pytest.mark.testbed

#: Where the (pretend) job image carries the refresher plugin jar.
IMAGE_PLUGIN_JAR = "/opt/spark-secrets/spark-secrets-plugin.jar"


def _admin(bed: Testbed) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))


def _alice_env(bed: Testbed, ccache: Path | None = None) -> dict[str, str]:
    return spark_env(bed.env("alice", ccache if ccache is not None else bed.ticket_cache("alice")))


def _secret_conf(bed: Testbed, namespace: str = "alice") -> dict[str, str]:
    assert bed.hdfs is not None
    return {"spark.kubernetes.namespace": namespace, "spark.secrets.hadoop.filesystems": bed.hdfs.webhdfs_url,
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spark_secrets", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _managed_secrets(bed: Testbed, namespace: str = "alice") -> list[k8s.V1Secret]:
    return _admin(bed).list_namespaced_secret(namespace, label_selector=f"{LABEL_MANAGED_BY}=spark-secrets").items


def _driver(bed: Testbed, app: str) -> k8s.V1Pod:
    pods = _admin(bed).list_namespaced_pod("alice", label_selector=f"spark-role=driver,spark-app-name={app}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def _spark_properties(bed: Testbed, pod: k8s.V1Pod) -> dict[str, str]:
    """The conf Spark ships to the driver (its spark-conf ConfigMap), which executors are built from."""
    maps = [v.config_map.name for v in pod.spec.volumes if v.config_map is not None]
    props: dict[str, str] = {}
    for name in maps:
        cm = _admin(bed).read_namespaced_config_map(name, "alice")
        for key, text in (cm.data or {}).items():
            if key.endswith(".properties"):
                for line in text.splitlines():
                    if "=" in line and not line.startswith("#"):
                        k, _, v = line.partition("=")
                        props[k.strip()] = v.strip().replace("\\:", ":").replace("\\=", "=")
    return props


def _no_secret_bytes(bed: Testbed, creds: Credentials, *texts: str) -> None:
    """The token passwords appear in no pod, ConfigMap, event or output text."""
    api = _admin(bed)
    client = api.api_client
    blobs = [json.dumps(client.sanitize_for_serialization(x)) for x in (
        api.list_namespaced_pod("alice"), api.list_namespaced_config_map("alice"), api.list_namespaced_event("alice"))]
    blob = "\n".join([*blobs, *texts])
    for token in creds:
        for form in (token.password.hex(), base64.b64encode(token.password).decode(), token.encode_url(),
                     token.password.decode("latin-1")):
            assert form not in blob


def _check_wired(bed: Testbed, app: str) -> tuple[k8s.V1Secret, Credentials, k8s.V1Pod]:
    pod = _driver(bed, app)
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    secret_name = next(v.secret.secret_name for v in pod.spec.volumes
                       if v.secret is not None and v.secret.secret_name.endswith("-hadoop-tokens"))
    mounts = {m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert SPARK_CREDENTIALS_DIR in mounts
    assert env["HADOOP_TOKEN_FILE_LOCATION"] == f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"

    secret = _admin(bed).read_namespaced_secret(secret_name, "alice")
    labels = secret.metadata.labels
    assert labels[LABEL_MANAGED_BY] == "spark-secrets"
    assert labels[LABEL_KIND] == "hadoop-delegation-tokens"
    assert labels[LABEL_OWNER] == "alice"
    assert labels[LABEL_APP] == app
    assert not secret.immutable
    assert "spark-secrets.io/expiry" in secret.metadata.annotations
    creds = Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"]))
    owners = {t.decode_identifier().owner for t in creds if t.is_delegation_token}  # type: ignore[union-attr]
    assert owners == {"alice"}

    props = _spark_properties(bed, pod)
    assert props[f"spark.kubernetes.executor.secrets.{secret_name}"] == SPARK_CREDENTIALS_DIR
    assert props["spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION"] == f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"
    _check_plugin(props)

    # Spark did not make a token Secret of its own.
    names = [s.metadata.name for s in _admin(bed).list_namespaced_secret("alice").items]
    assert not [n for n in names if n.endswith("-delegation-tokens") and n.startswith(f"{app}-")], names
    return secret, creds, pod


def _check_plugin(props: dict[str, str]) -> None:
    """The refresher plugin is enabled in driver and executors, from the image's jar."""
    assert props["spark.plugins"] == PLUGIN_CLASS
    assert props["spark.driver.extraClassPath"] == props["spark.executor.extraClassPath"] == IMAGE_PLUGIN_JAR


@pytest.mark.parametrize("line", SPARK_LINES)
def test_conf_entry_point_with_unchanged_spark_submit(testbed: Testbed, line: str) -> None:
    assert testbed.kube is not None
    app = f"conf-entry-{line.replace('.', '')}"
    env = _alice_env(testbed)
    conf_args = ["--name", app]
    for key, value in _secret_conf(testbed).items():
        conf_args += ["--conf", f"{key}={value}"]
    printed = _cli(["conf", "--", "--deploy-mode", "cluster", *conf_args], env)  # as spark-submit gets
    assert printed.returncode == 0, printed.stderr
    flags = shlex.split(printed.stdout)
    assert flags and flags[0] == "--conf"

    argv = cluster_submit_argv(testbed.kube.server, "alice", app, line=line)
    argv = [argv[0], *flags, *argv[1:]]
    proc = run_spark_submit(argv, env, line=line)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, creds, _ = _check_wired(testbed, app)
    _no_secret_bytes(testbed, creds, printed.stdout, printed.stderr, proc.stdout, proc.stderr, " ".join(argv))


def _conf_args(bed: Testbed, app: str) -> list[str]:
    args = ["--name", app]
    for key, value in _secret_conf(bed).items():
        args += ["--conf", f"{key}={value}"]
    return args


def test_render_properties_file_for_an_unchanged_spark_submit(testbed: Testbed, tmp_path: Path) -> None:
    assert testbed.kube is not None
    app = "rendered-properties"
    env = _alice_env(testbed)
    props_file = tmp_path / "spark-secrets.properties"
    rendered = _cli(["render", "--format", "properties", "-o", str(props_file), "--", "--deploy-mode", "cluster",
                     *_conf_args(testbed, app)], env)
    assert rendered.returncode == 0, rendered.stderr
    argv = cluster_submit_argv(testbed.kube.server, "alice", app)
    proc = run_spark_submit([argv[0], "--properties-file", str(props_file), *argv[1:]], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, creds, _ = _check_wired(testbed, app)
    _no_secret_bytes(testbed, creds, props_file.read_text(), rendered.stderr, proc.stderr)


def test_render_pod_template_mounts_the_secret_and_spark_makes_none(testbed: Testbed, tmp_path: Path) -> None:
    """Spark 4 with alice's TGT in the environment: the template mounts our Secret, and the excluded
    built-in Kerberos step makes no Secret of its own."""
    assert testbed.kube is not None
    app = "rendered-template"
    env = _alice_env(testbed)
    template = tmp_path / "pod-template.yaml"
    rendered = _cli(["render", "--format", "pod-template", "-o", str(template), "--", *_conf_args(testbed, app)], env)
    assert rendered.returncode == 0, rendered.stderr
    extra = shlex.split(rendered.stderr.strip().splitlines()[-1].split("with: ", 1)[1])
    conf = {"spark.kubernetes.driver.podTemplateFile": str(template),
            "spark.kubernetes.executor.podTemplateFile": str(template)}
    argv = cluster_submit_argv(testbed.kube.server, "alice", app, conf=conf)
    proc = run_spark_submit([argv[0], *extra, *argv[1:]], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pod = _driver(testbed, app)
    container = pod.spec.containers[0]
    secret_name = next(v.secret.secret_name for v in pod.spec.volumes if v.secret is not None
                       and v.secret.secret_name.endswith("-hadoop-tokens"))
    assert secret_name.startswith(f"{app}-")
    assert SPARK_CREDENTIALS_DIR in {m.mount_path for m in container.volume_mounts}
    assert {e.name: e.value for e in container.env}["HADOOP_TOKEN_FILE_LOCATION"] == \
        f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"
    _check_plugin(_spark_properties(testbed, pod))
    names = [s.metadata.name for s in _admin(testbed).list_namespaced_secret("alice").items]
    assert not [n for n in names if n.startswith(f"{app}-") and n.endswith("-delegation-tokens")], names
    secret = _admin(testbed).read_namespaced_secret(secret_name, "alice")
    _no_secret_bytes(testbed, Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"])),
                     template.read_text(), rendered.stderr, proc.stderr)


def test_render_spark_operator_merges_into_the_users_application(testbed: Testbed, tmp_path: Path) -> None:
    import yaml

    app = "rendered-operator"
    mine = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": app, "namespace": "alice"},
            "spec": {"type": "Python", "mainApplicationFile": "local:///opt/app/etl.py",
                     "sparkConf": {"spark.eventLog.enabled": "false"}, "driver": {"cores": 1}}}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(mine))
    rendered = _cli(["render", "--format", "spark-operator", "--into", str(tmp_path / "app.yaml"), "--",
                     *_conf_args(testbed, app)], _alice_env(testbed))
    assert rendered.returncode == 0, rendered.stderr
    out = yaml.safe_load(rendered.stdout)
    assert out["spec"]["mainApplicationFile"] == "local:///opt/app/etl.py" and out["spec"]["driver"]["cores"] == 1
    spark_conf = out["spec"]["sparkConf"]
    secret_name = spark_conf["spark.kubernetes.kerberos.tokenSecret.name"]
    assert spark_conf["spark.eventLog.enabled"] == "false"
    assert spark_conf[f"spark.kubernetes.executor.secrets.{secret_name}"] == SPARK_CREDENTIALS_DIR
    assert out["spec"]["executor"]["labels"]["spark-secrets.io/token-secret"] == secret_name
    secret = _admin(testbed).read_namespaced_secret(secret_name, "alice")
    _no_secret_bytes(testbed, Credentials.from_bytes(base64.b64decode(secret.data["hadoop-tokens"])),
                     rendered.stdout, rendered.stderr)


def test_spark_builtin_step_makes_its_own_secret_without_ours(testbed: Testbed) -> None:
    """Control case: the same submission without spark-secrets makes Spark create an immutable token
    Secret from alice's TGT, so the assertion that it does not with ours can fail."""
    assert testbed.kube is not None
    app = "builtin-control"
    proc = run_spark_submit(cluster_submit_argv(testbed.kube.server, "alice", app), _alice_env(testbed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    spark_made = [s for s in _admin(testbed).list_namespaced_secret("alice").items
                  if s.metadata.name.endswith("-delegation-tokens") and s.metadata.name.startswith(app)]
    assert len(spark_made) == 1 and spark_made[0].immutable


def test_submit_wrapper_attaches_the_secret_to_the_driver_pod(testbed: Testbed) -> None:
    assert testbed.kube is not None
    app = "wrapped"
    env = _alice_env(testbed)
    argv = cluster_submit_argv(testbed.kube.server, "alice", app, conf=_secret_conf(testbed))
    proc = _cli(["submit", "--spark-submit", argv[0], "--", *argv[1:]], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    secret, creds, pod = _check_wired(testbed, app)
    owners = secret.metadata.owner_references or []
    assert [(o.kind, o.name, o.uid) for o in owners] == [("Pod", pod.metadata.name, pod.metadata.uid)]
    assert "now owned by driver pod" in proc.stderr
    _no_secret_bytes(testbed, creds, proc.stdout, proc.stderr)


def test_secret_is_deleted_when_spark_submit_fails(testbed: Testbed) -> None:
    assert testbed.hdfs is not None
    before = {s.metadata.name for s in _managed_secrets(testbed)}
    conf = _secret_conf(testbed)
    # An API server nobody listens on: the steps succeed, spark-submit then fails.
    argv = cluster_submit_argv("https://127.0.0.1:9", "alice", "fails-later", conf=conf)
    proc = _cli(["submit", "--spark-submit", argv[0], "--", *argv[1:]], _alice_env(testbed))
    assert proc.returncode != 0
    assert "created Secret" in proc.stderr and "deleted Secret" in proc.stderr
    assert {s.metadata.name for s in _managed_secrets(testbed)} == before


@pytest.mark.parametrize("case", ["no-ticket", "expired-ticket", "forbidden-namespace", "namenode-down"])
def test_bad_submissions_fail_before_anything_is_created(testbed: Testbed, tmp_path: Path, case: str) -> None:
    assert testbed.kube is not None
    from spark_secrets.testbed.daemon import free_port

    conf = _secret_conf(testbed)
    ccache: Path = testbed.ticket_cache("alice")
    if case == "no-ticket":
        ccache = tmp_path / "missing"
    elif case == "expired-ticket":
        ccache = testbed.ticket_cache("alice", lifetime="2s", renewable=None)
        import time

        time.sleep(3)
    elif case == "forbidden-namespace":
        conf["spark.kubernetes.namespace"] = "bob"
    else:
        conf["spark.secrets.hadoop.filesystems"] = f"http://localhost:{free_port()}"
    before = {ns: {s.metadata.name for s in _admin(testbed).list_namespaced_secret(ns).items} for ns in ("alice", "bob")}
    pods_before = len(_admin(testbed).list_namespaced_pod("alice").items)
    argv = cluster_submit_argv(testbed.kube.server, conf["spark.kubernetes.namespace"], f"bad-{case}", conf=conf)
    proc = _cli(["submit", "--spark-submit", argv[0], "--", *argv[1:]], _alice_env(testbed, ccache))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spark-secrets: error:"), proc.stderr
    expected = {"no-ticket": "kinit", "expired-ticket": "expired", "forbidden-namespace": "may not create Secrets",
                "namenode-down": "cannot connect to NameNode"}[case]
    assert expected in lines[0]
    after = {ns: {s.metadata.name for s in _admin(testbed).list_namespaced_secret(ns).items} for ns in ("alice", "bob")}
    assert after == before
    assert len(_admin(testbed).list_namespaced_pod("alice").items) == pods_before



# -- notebooks -----------------------------------------------------------------------------------
def test_notebook_session_in_client_mode_reads_hdfs_with_the_token_only(testbed: Testbed, tmp_path: Path) -> None:
    assert testbed.hdfs is not None
    script = Path(__file__).parent / "scripts" / "notebook_session.py"
    env = _alice_env(testbed)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    target = f"{testbed.hdfs.uri}/user/alice/notebook-out"
    proc = subprocess.run([sys.executable, str(script), testbed.hdfs.webhdfs_url, target], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "READ: written by a notebook with a token only" in proc.stdout
    assert "TOKEN-FILE-REMOVED: True" in proc.stdout
    assert "driver token file" in proc.stderr
    # The file really is in HDFS, owned by alice.
    ls = testbed.hdfs.fs("-ls", "/user/alice/notebook-out", ccache=testbed.ticket_cache("alice"))
    assert b" alice " in ls.stdout, ls.stderr.decode()[-500:]


def test_notebook_configure_for_kubernetes_creates_the_secret_for_executors(testbed: Testbed,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert testbed.kube is not None
    from pyspark.sql import SparkSession

    from spark_secrets.kube.client import KubeClient
    from submit_steps.notebook import configure

    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION", raising=False)
    builder = SparkSession.builder.master(f"k8s://{testbed.kube.server}").appName("notebook-k8s")
    alice = KubeClient.from_config(str(testbed.kube.kubeconfig("alice", namespace="alice")))
    setup = configure(builder, _secret_conf(testbed), kube=alice, progress=lambda _: None)
    try:
        assert setup.secret_name is not None
        options = builder._options  # the conf the session will start with
        assert options[f"spark.kubernetes.executor.secrets.{setup.secret_name}"] == SPARK_CREDENTIALS_DIR
        assert setup.token_file is not None and oct(setup.token_file.stat().st_mode & 0o777) == "0o600"
        assert os.environ["HADOOP_TOKEN_FILE_LOCATION"] == str(setup.token_file)
        names = {s.metadata.name for s in _managed_secrets(testbed)}
        assert setup.secret_name in names
    finally:
        setup.close()
        monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION", raising=False)
    assert setup.secret_name not in {s.metadata.name for s in _managed_secrets(testbed)}
    assert not setup.token_file.exists()
