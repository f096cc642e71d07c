"""The objects of a user's Connect server (submit_steps.connectpod), built from the real submission steps with a
fake ticket: what Spark's own client would create for a cluster-mode Python driver, the token Secret and job
secrets mounted as `submit` mounts them, and the bearer token nowhere but its Secret."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from spark_secrets.errors import ConfigError
from spark_secrets.jobsecrets.resolver import Resolver
from spark_secrets.plugin.jar import PLUGIN_CLASS
from spark_secrets.connect.names import ANNOTATION_TOKEN_SECRET
from submit_steps.connectpod import (CONF_DIR, CONNECT_PLUGIN, EXECUTOR_TEMPLATE, PROGRAM,
                                     PROPERTIES, build, label_value)
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.spec import SubmissionSpec

from steps_support import BASE, builder

TOKEN = "bearer-5f0c2a9e71d4"
CONF = {**BASE, "spark.master": "k8s://https://api:6443", "spark.submit.deployMode": "cluster",
        "spark.kubernetes.container.image": "my-spark:4.3", "spark.secrets.plugin.jar": "/opt/p/plugin.jar",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark", "spark.driver.memory": "768m"}


def _spec(conf: dict[str, str], job_secrets: bool = False) -> SubmissionSpec:
    steps = builder(conf)
    if job_secrets:
        steps.steps.insert(-1, JobSecretsStep(steps.settings, resolver=Resolver(None, {"LOCAL_PW": "pw-7d1c0b"})))
    return steps.run()


def _properties(objects: object) -> dict[str, str]:
    text = objects.config_map["data"][PROPERTIES]  # type: ignore[attr-defined]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_the_driver_pod_is_spark_s_cluster_mode_driver_with_the_token_secret_and_connect() -> None:
    spec = _spec(CONF)
    (tokens,) = spec.secrets
    objects = build(spec, "alice", TOKEN, 900, 15002)
    pod, props = objects.pod, _properties(objects)
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["driver", "--properties-file", f"{CONF_DIR}/{PROPERTIES}", "--class",
                                 "org.apache.spark.deploy.PythonRunner", f"local://{CONF_DIR}/{PROGRAM}", "900"]
    assert container["image"] == "my-spark:4.3" and pod["spec"]["serviceAccountName"] == "spark"
    assert pod["spec"]["restartPolicy"] == "Never"
    env = {e["name"]: e for e in container["env"]}
    assert env["HADOOP_TOKEN_FILE_LOCATION"]["value"] == "/mnt/secrets/hadoop-credentials/hadoop-tokens"
    assert env["SPARK_DRIVER_BIND_ADDRESS"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["SPARK_CONNECT_AUTHENTICATE_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": objects.bearer["metadata"]["name"], "key": "token"}}
    assert container["resources"]["requests"]["memory"] == "1152Mi"  # 768 MiB + Spark's 384 MiB minimum overhead
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["spark-secrets-hadoop-tokens"]["secret"]["secretName"] == tokens.name
    assert volumes["spark-conf-volume-driver"]["configMap"]["name"] == objects.config_map["metadata"]["name"]
    labels = pod["metadata"]["labels"]
    assert labels["spark-role"] == "driver" and labels["spark-secrets.io/connect-user"] == "alice"
    assert labels["spark-secrets.io/token-secret"] == tokens.name  # how the submission adopts its Secret
    assert labels["spark-app-selector"] == props["spark.app.id"] == objects.service["spec"]["selector"]["spark-app-selector"]
    assert pod["metadata"]["annotations"][ANNOTATION_TOKEN_SECRET] == objects.bearer["metadata"]["name"]
    # What Spark's driver needs in the pod: the refresher plugin, Connect's port, the Service. Connect itself is
    # started by the server's program once the SparkContext is up, never as a plugin (not even the user's own).
    assert props["spark.plugins"].split(",") == [PLUGIN_CLASS]
    assert props["spark.connect.grpc.binding.port"] == "15002"
    assert props["spark.driver.host"] == f"{objects.service['metadata']['name']}.alice.svc"
    assert props["spark.kubernetes.driver.pod.name"] == objects.pod_name
    assert props["spark.kubernetes.submitInDriver"] == "true"
    assert props[f"spark.kubernetes.executor.secrets.{tokens.name}"] == "/mnt/secrets/hadoop-credentials"
    assert not any(k.startswith("spark.kubernetes.kerberos.tokenSecret") for k in props)  # the pod mounts it itself
    assert objects.service["spec"]["clusterIP"] == "None"
    assert {p["name"] for p in objects.service["spec"]["ports"]} == {"driver-rpc-port", "blockmanager", "spark-connect",
                                                                     "spark-ui"}
    assert props["spark.kubernetes.memoryOverheadFactor"] == "0.4"  # Spark's for Python, handed to the executors
    assert "spark_secrets.connect.server" in objects.config_map["data"][PROGRAM]


def test_connect_is_never_a_plugin_even_when_the_user_names_it() -> None:
    """As a plugin, Connect would serve queries before the SparkContext is active (they fail with None.get)."""
    named = _properties(build(_spec({**CONF, "spark.plugins": f"com.example.Mine,{CONNECT_PLUGIN}"}), "alice", TOKEN,
                              900, 15002))
    assert named["spark.plugins"].split(",") == ["com.example.Mine", PLUGIN_CLASS]
    alone = _properties(build(_spec({**CONF, "spark.secrets.plugin.jar": "none", "spark.plugins": CONNECT_PLUGIN}),
                              "alice", TOKEN, 900, 15002))
    assert "spark.plugins" not in alone
    control = _properties(build(_spec({**CONF, "spark.plugins": "com.example.Mine"}), "alice", TOKEN, 900, 15002))
    assert control["spark.plugins"].split(",") == ["com.example.Mine", PLUGIN_CLASS]


def test_the_bearer_token_is_only_in_its_secret() -> None:
    objects = build(_spec(CONF), "alice", TOKEN, 60, 15002)
    assert base64.b64decode(objects.bearer["data"]["token"]).decode() == TOKEN
    for part in (objects.pod, objects.config_map, objects.service):
        assert TOKEN not in json.dumps(part)
    assert TOKEN not in repr(objects)
    assert base64.b64encode(TOKEN.encode()).decode() not in repr(objects)
    # Named as its owner's job secrets, which the shared layouts' pod policy lets only her pods use.
    name = objects.bearer["metadata"]["name"]
    assert name.startswith("alice--connect-alice-") and name.endswith("-job-secrets"), name


def test_the_pod_policy_guards_the_bearer_secret_by_its_name() -> None:
    """The shared layouts' pod policy takes a Secret as a job's by its name and its owner from the prefix: the bearer
    Secret's name is one of them, owned by its user (a control: a name of another form is not guarded)."""
    import re

    from spark_secrets.kube.policies import _OURS, _OWNER_OF

    name = build(_spec(CONF), "alice", TOKEN, 60, 15002).bearer["metadata"]["name"]
    ours, owner_of = _OURS.format(n="n"), _OWNER_OF.format(n="n")
    assert "n.endsWith('-job-secrets')" in ours and name.endswith("-job-secrets")
    assert "n.indexOf('--')" in owner_of and name[:name.index("--")] == "alice"
    assert not re.search(r"-(job-secrets|hadoop-tokens)$", "connect-alice-1a2b3c-token")  # the old name was not guarded


def test_job_secrets_are_mounted_0440_in_the_driver_and_through_the_executors_template(tmp_path: Path) -> None:
    own = tmp_path / "executor.yaml"
    own.write_text(yaml.safe_dump({"kind": "Pod", "spec": {"nodeSelector": {"pool": "spark"}}}))
    conf = {**CONF, "spark.secrets.file.db-password": "env:LOCAL_PW", "spark.kubernetes.executor.podTemplateFile": str(own)}
    spec = _spec(conf, job_secrets=True)
    objects = build(spec, "alice", TOKEN, 60, 15002)
    props = _properties(objects)
    template = json.loads(objects.config_map["data"][EXECUTOR_TEMPLATE])
    assert props["spark.kubernetes.executor.podTemplateFile"] == f"{CONF_DIR}/{EXECUTOR_TEMPLATE}"
    assert template["spec"]["nodeSelector"] == {"pool": "spark"}  # the user's own template kept
    job = next(p.name for p in spec.secrets if p.name.endswith("-job-secrets"))
    assert [v["secret"] for v in template["spec"]["volumes"]] == [{"secretName": job, "defaultMode": 0o440}]
    assert {"secretName": job, "defaultMode": 0o440} in [v.get("secret") for v in objects.pod["spec"]["volumes"]]
    assert not any(k.endswith(f".secrets.{job}") for k in props)  # not Spark's 0644 mounts as well
    assert "pw-7d1c0b" not in json.dumps([objects.pod, objects.config_map, objects.service])
    assert str(tmp_path) not in objects.config_map["data"][PROPERTIES]  # no path of this machine in the pod


@pytest.mark.parametrize("conf, message", [
    ({"spark.master": "local[2]"}, "spark.master is not k8s://"),
    ({"spark.kubernetes.container.image": ""}, "no image for the Connect server's pods"),
    ({"spark.driver.memory": "lots"}, "spark.driver.memory='lots' is not a size"),
])
def test_unusable_settings_fail_in_one_line(conf: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(_spec({**CONF, **conf}), "alice", TOKEN, 60, 15002)


def test_names_and_labels_are_made_kubernetes_safe() -> None:
    assert label_value("Alice.Smith@EXAMPLE") == "alice-smith-example"
    assert label_value("x" * 80) == "x" * 30
    assert build(_spec(CONF), "Alice_Q", TOKEN, 60, 15002).name.startswith("connect-alice-q-")


def test_the_notebook_s_hadoop_files_reach_driver_and_executors_as_spark_ships_them() -> None:
    files = {"core-site.xml": "<configuration/>", "hdfs-site.xml": "<configuration/>"}
    objects = build(_spec(CONF), "alice", TOKEN, 60, 15002, files)
    assert objects.hadoop_conf is not None and objects.hadoop_conf["data"] == files
    name = objects.hadoop_conf["metadata"]["name"]
    assert _properties(objects)["spark.kubernetes.executor.hadoopConfigMapName"] == name  # the executors' step
    (container,) = objects.pod["spec"]["containers"]
    assert {"name": "HADOOP_CONF_DIR", "value": "/opt/hadoop/conf"} in container["env"]
    assert {"name": "hadoop-properties", "mountPath": "/opt/hadoop/conf"} in container["volumeMounts"]
    assert objects.hadoop_conf in objects.owned()
    named = build(_spec({**CONF, "spark.kubernetes.hadoop.configMapName": "team-hadoop"}), "alice", TOKEN, 60, 15002,
                  files)
    assert named.hadoop_conf is None and _properties(named)["spark.kubernetes.executor.hadoopConfigMapName"] == "team-hadoop"
    plain = build(_spec(CONF), "alice", TOKEN, 60, 15002)  # no Hadoop files here, none named: nothing shipped
    assert plain.hadoop_conf is None and "spark.kubernetes.executor.hadoopConfigMapName" not in _properties(plain)


def test_driver_volumes_are_mounted_as_spark_mounts_them() -> None:
    conf = {**CONF, "spark.kubernetes.driver.volumes.hostPath.hive.mount.path": "/opt/hive",
            "spark.kubernetes.driver.volumes.hostPath.hive.mount.readOnly": "true",
            "spark.kubernetes.driver.volumes.hostPath.hive.options.path": "/srv/hive",
            "spark.kubernetes.driver.volumes.emptyDir.scratch.mount.path": "/scratch",
            "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.mount.path": "/data",
            "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.options.claimName": "team-data"}
    pod = build(_spec(conf), "alice", TOKEN, 60, 15002).pod
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["hive"]["hostPath"] == {"path": "/srv/hive"} and volumes["scratch"]["emptyDir"] == {}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "team-data"}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["hive"] == {"name": "hive", "mountPath": "/opt/hive", "readOnly": True}
    with pytest.raises(ConfigError, match="hostPath.x.mount.path is not set"):
        build(_spec({**CONF, "spark.kubernetes.driver.volumes.hostPath.x.options.path": "/srv"}), "alice", TOKEN, 60, 1)


def test_the_submitter_s_credentials_never_reach_the_properties_and_host_files_are_refused() -> None:
    secret = "k8s-oauth-3b1f09"
    objects = build(_spec({**CONF, "spark.kubernetes.authenticate.submission.oauthToken": secret,
                           "spark.kubernetes.authenticate.oauthToken": secret,
                           "spark.kubernetes.container.image.pullSecrets": "registry-a, registry-b"}),
                    "alice", TOKEN, 60, 15002)
    assert secret not in json.dumps([objects.config_map, objects.pod, objects.service])
    assert objects.pod["spec"]["imagePullSecrets"] == [{"name": "registry-a"}, {"name": "registry-b"}]
    for conf, message in (({"spark.kubernetes.authenticate.driver.oauthTokenFile": "/home/alice/t"},
                           "driver uses its service account only"),
                          ({"spark.files": "local:///opt/a.txt,/home/alice/b.txt"}, "spark.files names /home/alice/b.txt"),
                          ({"spark.submit.pyFiles": "file:///home/alice/lib.zip"}, "a file of this machine")):
        with pytest.raises(ConfigError, match=message):
            build(_spec({**CONF, **conf}), "alice", TOKEN, 60, 15002)
    build(_spec({**CONF, "spark.files": "local:///opt/a.txt,hdfs://nn/b.txt"}), "alice", TOKEN, 60, 15002)  # fine


def test_a_template_with_a_sidecar_gets_the_mounts_in_the_container_spark_uses(tmp_path: Path) -> None:
    own = tmp_path / "driver.yaml"
    own.write_text(yaml.safe_dump({"kind": "Pod", "spec": {"containers": [{"name": "sidecar", "image": "proxy"},
                                                                           {"name": "spark"}]}}))
    conf = {**CONF, "spark.kubernetes.driver.podTemplateFile": str(own),
            "spark.kubernetes.driver.podTemplateContainerName": "spark"}
    sidecar, spark = build(_spec(conf), "alice", TOKEN, 60, 15002).pod["spec"]["containers"]
    assert (sidecar["name"], sidecar["image"]) == ("sidecar", "proxy") and "env" not in sidecar
    assert spark["name"] == "spark" and spark["args"][0] == "driver"
    assert {"HADOOP_TOKEN_FILE_LOCATION", "SPARK_CONNECT_AUTHENTICATE_TOKEN"} <= {e["name"] for e in spark["env"]}
