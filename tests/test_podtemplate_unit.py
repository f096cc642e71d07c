"""The pod templates the submission writes for job-secret volumes: merged into the job's own, 0440 with
the pod's fsGroup, in place of Spark's 0644 mounts; bad templates fail before anything is contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spark_secrets.errors import ConfigError
from spark_secrets.jobsecrets.resolver import Resolver
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.podtemplate import check_templates, merge_volumes, with_pod_templates
from submit_steps.settings import Settings
from submit_steps.spec import SecretVolume, SubmissionSpec

SECRETS = {"spark.secrets.file.db-password": "env:LOCAL_PW", "spark.secrets.file.ca.pem": "k8s:tls-certs#ca.pem",
           "spark.secrets.env.TOKEN": "env:LOCAL_PW"}


def _spec(**conf: str) -> tuple[Settings, SubmissionSpec]:
    settings = Settings({"spark.app.name": "etl", "spark.kubernetes.namespace": "alice",
                         "spark.submit.deployMode": "cluster", **SECRETS, **conf})
    step = JobSecretsStep(settings, resolver=Resolver(None, {"LOCAL_PW": "pw-7d1c0b"}))
    return settings, step.apply(SubmissionSpec(conf=settings.conf))


def test_the_step_names_each_mounted_secret_once_with_spark_s_mount_keys_as_fallback() -> None:
    _, spec = _spec()
    (own, tls) = spec.volumes
    assert own.secret.endswith("-job-secrets") and own.mount_path == "/mnt/secrets/spark-secrets"
    assert tls == SecretVolume("tls-certs", "/mnt/secrets/spark-secrets-k8s/tls-certs",
                               ("spark.kubernetes.driver.secrets.tls-certs", "spark.kubernetes.executor.secrets.tls-certs"))
    for volume in spec.volumes:
        assert all(spec.added_conf[key] == volume.mount_path for key in volume.replaces)


def test_templates_replace_spark_s_mounts_and_merge_into_the_job_s_own(tmp_path: Path) -> None:
    own = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "etl"}},
           "spec": {"volumes": [{"name": "krb5", "configMap": {"name": "krb5"}}],
                    "containers": [{"name": "sidecar"}, {"name": "main", "volumeMounts": [
                        {"name": "krb5", "mountPath": "/etc/krb5.conf"}]}]}}
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(own))
    settings, spec = _spec(**{"spark.kubernetes.driver.podTemplateFile": str(tmp_path / "own.yaml"),
                              "spark.kubernetes.driver.podTemplateContainerName": "main"})
    out = tmp_path / "out"
    out.mkdir()
    done = with_pod_templates(spec, out)
    driver = json.loads(Path(done.added_conf["spark.kubernetes.driver.podTemplateFile"]).read_text())
    executor = json.loads(Path(done.added_conf["spark.kubernetes.executor.podTemplateFile"]).read_text())
    assert driver["metadata"]["labels"] == {"team": "etl"} and driver["spec"]["securityContext"] == {"fsGroup": 185}
    assert [(v["name"], v.get("secret")) for v in driver["spec"]["volumes"]] == [
        ("krb5", None), ("spark-secrets-job-0", {"secretName": spec.volumes[0].secret, "defaultMode": 0o440}),
        ("spark-secrets-job-1", {"secretName": "tls-certs", "defaultMode": 0o440})]
    sidecar, main = driver["spec"]["containers"]
    assert sidecar == {"name": "sidecar"}  # Spark's container is the one named by podTemplateContainerName
    assert [m["mountPath"] for m in main["volumeMounts"]] == [
        "/etc/krb5.conf", "/mnt/secrets/spark-secrets", "/mnt/secrets/spark-secrets-k8s/tls-certs"]
    assert all(m.get("readOnly") for m in main["volumeMounts"][1:])
    # The executor had no template of its own: one container, left for Spark to name.
    assert executor["spec"]["containers"] == [{"volumeMounts": main["volumeMounts"][1:]}]
    assert not any(".secrets." in k and k.startswith("spark.kubernetes.") for k in done.added_conf)
    assert done.added_conf["spark.kubernetes.driver.secretKeyRef.TOKEN"]  # env vars stay secretKeyRef
    assert "mode 0440, group 185" in done.notes[-1]
    assert "pw-7d1c0b" not in (out / "driver-pod-template.json").read_text() + json.dumps(dict(done.added_conf))
    # Merging again (a template that already has our volumes) does not duplicate them.
    again = merge_volumes(driver, spec.volumes, 185, container="main")
    assert again["spec"]["volumes"] == driver["spec"]["volumes"]


def test_a_template_s_own_fs_group_wins_unless_the_setting_disagrees(tmp_path: Path) -> None:
    (tmp_path / "own.json").write_text(json.dumps({"kind": "Pod", "spec": {"securityContext": {"fsGroup": 2000,
                                                                                                "runAsUser": 1000}}}))
    conf = {"spark.kubernetes.executor.podTemplateFile": f"file://{tmp_path}/own.json"}
    settings, spec = _spec(**conf)
    done = with_pod_templates(spec, tmp_path, roles=("executor",))
    executor = json.loads((tmp_path / "executor-pod-template.json").read_text())
    assert executor["spec"]["securityContext"] == {"fsGroup": 2000, "runAsUser": 1000}
    assert "group 2000" in done.notes[-1]
    # Only the executor's mounts moved: a notebook's driver is this process.
    assert "spark.kubernetes.driver.podTemplateFile" not in done.added_conf
    assert f"spark.kubernetes.driver.secrets.{spec.volumes[0].secret}" in done.added_conf
    given, _ = _spec(**conf, **{"spark.secrets.dir.fsGroup": "185"})
    with pytest.raises(ConfigError, match=r"fsGroup=185 differs from fsGroup 2000 in the pod template file://"):
        check_templates(given, roles=("executor",))


def test_without_a_group_or_with_a_remote_template_spark_s_mounts_stay(tmp_path: Path) -> None:
    settings, spec = _spec(**{"spark.secrets.dir.fsGroup": "none"})
    assert with_pod_templates(spec, tmp_path) == spec
    settings, spec = _spec(**{"spark.kubernetes.driver.podTemplateFile": "s3a://bucket/driver.yaml"})
    check_templates(settings)  # not read here: Spark reads it
    done = with_pod_templates(spec, tmp_path)
    assert done.added_conf == spec.added_conf and "s3a://bucket/driver.yaml is not a local file" in done.notes[-1]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("text, message", [
    (None, "cannot read the pod template"), ("a: [", "cannot read the pod template"),
    ("kind: Deployment", "is not a Pod")])
def test_an_unusable_template_fails_before_anything_is_contacted(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "t.yaml"
    if text is not None:
        path.write_text(text)
    settings = Settings({"spark.kubernetes.driver.podTemplateFile": str(path), **SECRETS})
    with pytest.raises(ConfigError, match=message):
        check_templates(settings)
    check_templates(Settings({"spark.kubernetes.driver.podTemplateFile": str(path)}))  # no job secrets: not read


@pytest.mark.parametrize("value", ["root", "-1", "2147483648", "1.5"])
def test_the_group_setting_is_a_group_id_or_none(value: str) -> None:
    with pytest.raises(ConfigError, match=r"spark.secrets.dir.fsGroup=.* is not a group ID"):
        Settings({"spark.secrets.dir.fsGroup": value})
    assert Settings({"spark.secrets.dir.fsGroup": "None"}).secrets_fs_group is None
    assert Settings({}).secrets_fs_group == 185


def test_render_pod_template_mounts_job_secrets_and_finds_the_token_secret_by_kind() -> None:
    from submit_steps.render import render, template_conf

    _, spec = _spec()
    pod = yaml.safe_load(render(spec, "pod-template"))
    assert [v["secret"]["secretName"] for v in pod["spec"]["volumes"]] == [v.secret for v in spec.volumes]
    assert pod["spec"]["securityContext"] == {"fsGroup": 185}
    assert not any(".secrets." in k and k.startswith("spark.kubernetes.") for k in template_conf(spec))


def test_render_with_tokens_and_job_secrets_mounts_each_secret_where_it_belongs() -> None:
    from steps_support import BASE, builder
    from submit_steps.render import render

    conf = {**BASE, **SECRETS, "spark.submit.deployMode": "cluster"}
    steps = builder(conf)
    steps.steps.insert(-1, JobSecretsStep(steps.settings, resolver=Resolver(None, {"LOCAL_PW": "pw-7d1c0b"})))
    spec = steps.run()
    tokens, job = spec.secrets
    pod = yaml.safe_load(render(spec, "pod-template"))
    volumes = {v["name"]: v["secret"]["secretName"] for v in pod["spec"]["volumes"]}
    # The token volume is the token Secret, not the last Secret made (the job's own secrets).
    assert volumes == {"spark-secrets-job-0": job.name, "spark-secrets-job-1": "tls-certs",
                       "spark-secrets-hadoop-tokens": tokens.name}
    assert pod["metadata"]["labels"] == {"spark-secrets.io/token-secret": tokens.name}


@pytest.mark.parametrize("extra, message", [
    (["--conf", "spark.kubernetes.driver.podTemplateFile=/nonexistent/driver.yaml"],
     "cannot read the pod template /nonexistent/driver.yaml: FileNotFoundError"),
    (["--conf", "spark.secrets.dir.fsGroup=wheel"], "spark.secrets.dir.fsGroup='wheel' is not a group ID"),
    (["--conf", "spark.secrets.dir.fsGroup=185", "--conf", "spark.kubernetes.executor.podTemplateFile={own}"],
     "fsGroup=185 differs from fsGroup 2000 in the pod template"),
])
def test_the_cli_refuses_bad_templates_in_one_line_before_contacting_the_api_server(
        tmp_path: Path, extra: list[str], message: str) -> None:
    import subprocess
    import sys

    (tmp_path / "own.yaml").write_text("kind: Pod\nspec:\n  securityContext:\n    fsGroup: 2000\n")
    # An API server that cannot be reached: a command that contacted it would fail differently.
    (tmp_path / "kubeconfig").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    args = [a.format(own=tmp_path / "own.yaml") for a in extra]
    argv = [sys.executable, "-m", "spark_secrets", "submit", "--kubeconfig", str(tmp_path / "kubeconfig"), "--",
            "--name", "etl", "--conf", "spark.secrets.file.db=env:LOCAL_PW", *args, "app.py"]
    done = subprocess.run(argv, capture_output=True, text=True, env={"LOCAL_PW": "pw-7d1c0b", "PATH": "/usr/bin:/bin",
                                                                     "HOME": str(tmp_path)}, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    # The control: valid settings get as far as the API server (which is not there).
    control = subprocess.run(argv[:-len(args) - 1] + ["app.py"], capture_output=True, text=True, timeout=60,
                             env={"LOCAL_PW": "pw-7d1c0b", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert "unreachable" in control.stderr, control.stderr
