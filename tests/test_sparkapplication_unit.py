"""``render --format spark-operator``: where each reference goes in a SparkApplication, what the operator's
webhook would refuse moved to spec fields, job secrets 0440 in ``spec.{driver,executor}.template``, and
applications tokens cannot be added to refused in one line before anything is contacted. The operator
running the result: tests/test_operator.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from spark_secrets.errors import ConfigError
from spark_secrets.jobsecrets.resolver import Resolver
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.sparkapplication import API_VERSION, render_application

from steps_support import BASE, builder

SECRETS = {"spark.secrets.file.db-password": "env:LOCAL_PW", "spark.secrets.env.TOKEN": "env:LOCAL_PW"}


def _app(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "SparkApplication", "metadata": {"name": "pi", "namespace": "alice"},
            "spec": {"type": "Python", "mode": "cluster", "sparkVersion": "4.0.4",
                     "mainApplicationFile": "local:///opt/pi.py", "driver": {"cores": 1}, "executor": {"instances": 1},
                     **spec}}


def _spec(conf: dict[str, str] | None = None, job_secrets: bool = False) -> Any:
    steps = builder({**BASE, **(conf or {}), **(SECRETS if job_secrets else {}), "spark.submit.deployMode": "cluster"})
    if job_secrets:
        steps.steps.insert(-1, JobSecretsStep(steps.settings, resolver=Resolver(None, {"LOCAL_PW": "pw-7d1c0b"})))
    return steps.run()


def test_the_users_application_keeps_its_fields_and_gains_references_only() -> None:
    spec = _spec()
    own = _app(sparkConf={"spark.ui.enabled": "false"})
    app = render_application(spec, spec.secrets[0].name, own)
    assert app["spec"]["mainApplicationFile"] == "local:///opt/pi.py" and app["spec"]["driver"]["cores"] == 1
    assert app["spec"]["sparkConf"] == {"spark.ui.enabled": "false", **spec.added_conf}
    assert app["spec"]["sparkConf"]["spark.kubernetes.kerberos.tokenSecret.name"] == spec.secrets[0].name
    for role in ("driver", "executor"):
        assert app["spec"][role]["labels"] == {"spark-secrets.io/token-secret": spec.secrets[0].name}
    assert "labels" not in own["spec"]["driver"]  # the input is untouched
    assert "pppp" not in yaml.safe_dump(app)


def test_job_secret_files_go_in_the_pod_templates_0440_with_an_fsgroup_not_in_sparks_0644_mounts() -> None:
    spec = _spec(job_secrets=True)
    own = _app(driver={"template": {"spec": {"hostNetwork": True, "containers": [
        {"name": "spark-kubernetes-driver", "volumeMounts": [{"name": "krb5", "mountPath": "/etc/krb5.conf"}]},
        {"name": "sidecar"}]}}})
    app = render_application(spec, spec.secrets[0].name, own)
    conf = app["spec"]["sparkConf"]
    assert not any(k.startswith(("spark.kubernetes.driver.secrets.", "spark.kubernetes.executor.secrets."))
                   for k in conf if k.endswith("-job-secrets")), conf
    for role in ("driver", "executor"):
        pod = app["spec"][role]["template"]
        assert "kind" not in pod and pod["spec"]["securityContext"] == {"fsGroup": 185}
        volume = next(v for v in pod["spec"]["volumes"] if v["secret"]["secretName"].endswith("-job-secrets"))
        assert volume["secret"]["defaultMode"] == 0o440
        container = next(c for c in pod["spec"]["containers"] if c["name"] == f"spark-kubernetes-{role}")
        assert [m["name"] for m in container["volumeMounts"]][-1] == volume["name"]
    driver = app["spec"]["driver"]["template"]["spec"]
    assert driver["hostNetwork"] is True and driver["containers"][1] == {"name": "sidecar"}


def test_keys_the_operators_webhook_refuses_become_spec_fields() -> None:
    spec = _spec({"spark.kubernetes.authenticate.driver.serviceAccountName": "spark-alice",
                  "spark.kubernetes.container.image": "spark:4"})
    app = render_application(spec, spec.secrets[0].name, _app())
    assert app["spec"]["driver"]["serviceAccount"] == "spark-alice" and app["spec"]["image"] == "spark:4"
    assert not {"spark.kubernetes.authenticate.driver.serviceAccountName",
                "spark.kubernetes.container.image"} & set(app["spec"]["sparkConf"])
    with pytest.raises(ConfigError, match="differs from spec.driver.serviceAccount 'spark'"):
        render_application(spec, spec.secrets[0].name, _app(driver={"serviceAccount": "spark"}))


@pytest.mark.parametrize(("change", "message"), [
    ({"apiVersion": "sparkoperator.k8s.io/v1beta1"}, "SparkApplication of sparkoperator.k8s.io/v1beta1, which "
                                                      "spark-secrets does not know"),
    ({"spec": {"driver": {"secrets": [{"name": "old-tokens", "path": "/mnt/t", "secretType": "HadoopDelegationToken"}]}}},
     "mounts Secret 'old-tokens' as the driver's delegation tokens"),
    ({"spec": {"executor": {"envVars": {"HADOOP_TOKEN_FILE_LOCATION": "/tmp/t"}}}},
     "sets HADOOP_TOKEN_FILE_LOCATION for the executor"),
    ({"spec": {"hadoopConfigMap": "etl-hadoop", "sparkConf": {"spark.kubernetes.hadoop.configMapName": "other"}}},
     "names two Hadoop configurations"),
    ({"spec": {"sparkConf": {"spark.kubernetes.driver.podTemplateFile": "/t.yaml"}}},
     "move that template into spec.driver.template"),
    ({"spec": {"sparkConf": {"spark.kubernetes.kerberos.tokenSecret.name": "mine"}}}, "already names a token Secret"),
    ({"metadata": {"name": "pi", "namespace": "bob"}}, "is in namespace 'bob' but the job's is 'alice'"),
    ({"spec": {"sparkConf": ["spark.ui.enabled=false"]}}, "spec.sparkConf that is not a mapping"),
], ids=["crd-version", "delegation-token-secret", "token-file-env", "hadoop-conf", "template-file", "token-conf",
        "namespace", "conf-not-a-map"])
def test_applications_the_tokens_cannot_join_are_refused(change: dict[str, Any], message: str) -> None:
    from submit_steps.sparkapplication import check_application

    app = _app()
    for key, value in change.items():
        app[key] = {**app[key], **value} if isinstance(value, dict) and key == "spec" else value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_application(app, "alice", "app.yaml")
    check_application(_app(), "alice", "app.yaml")  # the control: the example as it is
    # Odd shapes elsewhere are the operator's to refuse, not a traceback here.
    check_application(_app(driver="x", executor={"secrets": ["s"], "env": ["E"], "envVars": ["E"]}), "alice", "app.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Pod\nspec: {}\n", "is not a SparkApplication"),
    ("- a\n- list\n", "is not a SparkApplication"),
    ("apiVersion: sparkoperator.k8s.io/v2\nkind: SparkApplication\nspec: {}\n", "which spark-secrets does not know"),
    ("apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nspec:\n  driver:\n    secrets:\n"
     "    - {name: t, path: /t, secretType: HadoopDelegationToken}\n", "as the driver's delegation tokens"),
])
def test_the_cli_refuses_them_in_one_line_with_status_2_before_contacting_anything(
        tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "app.yaml").write_text(text)
    (tmp_path / "kubeconfig").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    argv = [sys.executable, "-m", "spark_secrets", "render", "--format", "spark-operator", "--kubeconfig",
            str(tmp_path / "kubeconfig"), "--into", str(tmp_path / "app.yaml"), "--", "--name", "etl",
            "--conf", "spark.kubernetes.namespace=alice", "--conf", "spark.secrets.hadoop.filesystems=hdfs://nn:8020"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # The control: a good application gets as far as contacting something (which is not there).
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(_app()))
    control = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert message not in control.stderr and "SparkApplication" not in control.stderr, control.stderr
