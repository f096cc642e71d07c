"""Issue 29, the step contract: one job context for every step (the deploy mode unset is Spark's default,
client, everywhere; an entry point that is always cluster mode says so itself), the builder skips a
disabled step, and no step is changed after it is built."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.kube.client import ObjectRef
from submit_steps.builder import DEFAULT_STEPS, StepBuilder
from submit_steps.context import DEFAULT_DEPLOY_MODE, JobContext, deploy_mode_of
from submit_steps.jobsecrets import EnvSecretsStep, FileSecretsStep
from submit_steps.notebook import configure
from submit_steps.plugin import RefresherPluginStep
from submit_steps.settings import Settings
from submit_steps.sparkconf import conf_from_submit_args
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep
from submit_steps.submission import Submission

from steps_support import BASE
from test_deploy_mode_unit import JOB, Kube, _answers, _builder

JOB_SECRETS_ONLY = {"spark.app.name": "etl", "spark.kubernetes.namespace": "alice",
                    "spark.secrets.env.DB_PASSWORD": "env:LOCAL_PW", "spark.secrets.file.ca.pem": "env:LOCAL_PW"}


class FakeKube(Kube):
    """May do everything; records the Secrets it is asked to create."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def can_i(self, *args: object, **kwargs: object) -> bool:
        return True

    def create_secret(self, manifest: dict[str, Any]) -> ObjectRef:
        self.created.append(manifest)
        meta = manifest["metadata"]
        return ObjectRef("Secret", meta["name"], meta["namespace"], f"uid-{len(self.created)}")

    def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        pass


# -- one deploy mode -----------------------------------------------------------------------------
@pytest.mark.parametrize("conf", [
    dict(JOB),
    conf_from_submit_args(["--name", "etl", *(f for k, v in JOB.items() for f in ("--conf", f"{k}={v}")), "app.py"], {}),
], ids=["conf without a deploy mode", "spark-submit line without --deploy-mode"])
def test_unset_every_step_and_the_submission_take_sparks_default_client(conf: dict[str, str]) -> None:
    assert "spark.submit.deployMode" not in conf
    answers = _answers(conf)
    assert answers == dict.fromkeys(answers, "client"), answers
    assert deploy_mode_of(conf) == DEFAULT_DEPLOY_MODE == "client" == Settings(conf).deploy_mode


def test_an_entry_point_that_is_always_cluster_mode_says_so_in_the_context() -> None:
    """`render --format spark-operator|pod-template`: the driver runs in a pod whatever the conf says."""
    kube = Kube()
    steps = _builder(dict(JOB), kube=kube, deploy_mode="cluster")
    spec = steps.run()
    assert steps.context.cluster_mode and all(s.context is steps.context for s in steps.steps)
    assert spec.added_conf["spark.driver.extraClassPath"] == "/opt/spark-secrets/plugin.jar"  # the images'
    assert spec.local_secrets is not None and "tls.crt" not in spec.local_secrets.files  # mounted, not read
    submission = Submission(dict(JOB), kube, builder=steps, progress=lambda _: None)  # type: ignore[arg-type]
    assert submission._is_cluster_mode()
    assert Submission(dict(JOB), kube, deploy_mode="cluster").context.deploy_mode == "cluster"  # type: ignore[arg-type]


def test_the_notebook_is_client_mode_and_honours_the_token_file_format(monkeypatch: pytest.MonkeyPatch) -> None:
    import submit_steps.notebook as notebook

    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setenv("LOCAL_PW", "pw-0b1e")
    for var in ("HADOOP_TOKEN_FILE_LOCATION", "SPARK_SECRETS_DIR", "DB_PASSWORD"):  # configure sets them: restored after
        monkeypatch.setenv(var, "")
    formats: list[int] = []
    monkeypatch.setattr(notebook, "private_token_file", lambda creds, version=0: formats.append(version) or Path("/x"))

    class Builder:
        _options = {"spark.master": "k8s://https://api:6443"}

        def config(self, key: str, value: str) -> None:
            pass

    kube = FakeKube()
    setup = configure(Builder(), dict(JOB_SECRETS_ONLY), kube=kube, progress=lambda _: None)  # type: ignore[arg-type]
    try:
        assert setup.submission is not None and setup.submission.context.deploy_mode == "client"
        assert setup.spec.local_secrets is not None and setup.spec.local_secrets.env == {"DB_PASSWORD": b"pw-0b1e"}
    finally:
        setup.close()
    with pytest.raises(Exception, match="in a notebook session"):
        configure(Builder(), {**JOB_SECRETS_ONLY, "spark.submit.deployMode": "cluster"}, kube=kube)  # type: ignore[arg-type]

    from spark_secrets.hadoop.credentials import Credentials

    class Local(Builder):
        _options = {"spark.master": "local[2]"}

    monkeypatch.setattr(StepBuilder, "run", lambda self, only=None: SubmissionSpec(conf={}, credentials=Credentials()))
    local = configure(Local(), {**BASE, "spark.secrets.tokenFile.format": "1"}, progress=lambda _: None)
    local.close()
    assert formats == [1]  # the token file in the format the settings ask for (was always 0)


# -- the builder honours `enabled` -----------------------------------------------------------------
class NeverStep(SubmitStep):
    @property
    def enabled(self) -> bool:
        return False

    @property
    def disabled_note(self) -> str | None:
        return "never: skipped"

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        raise AssertionError("a disabled step was run")


def test_the_builder_skips_a_disabled_step_and_says_why() -> None:
    context = JobContext.of(Settings(dict(JOB_SECRETS_ONLY)))
    steps = StepBuilder(JOB_SECRETS_ONLY, [NeverStep(context), RefresherPluginStep(context)], context=context)
    assert steps.run().notes == ("never: skipped",)


def test_file_and_env_secrets_are_two_steps_each_enabled_by_its_own_kind() -> None:
    assert DEFAULT_STEPS.index(FileSecretsStep) + 1 == DEFAULT_STEPS.index(EnvSecretsStep)
    only_env = Settings({"spark.secrets.env.A": "env:LOCAL_PW"})
    assert (FileSecretsStep(only_env).enabled, EnvSecretsStep(only_env).enabled) == (False, True)
    only_file = Settings({"spark.secrets.file.a": "env:LOCAL_PW"})
    assert (FileSecretsStep(only_file).enabled, EnvSecretsStep(only_file).enabled) == (True, False)


# -- steps are never patched ---------------------------------------------------------------------
def test_a_submission_changes_no_step_after_it_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_PW", "pw-51a2")
    kube = FakeKube()
    submission = Submission(dict(JOB_SECRETS_ONLY), kube, progress=lambda _: None)  # type: ignore[arg-type]
    steps = submission.builder.steps
    assert all(step.context is submission.context and step.context.kube is kube for step in steps)
    before = [copy.copy(vars(step)) for step in steps]
    submission.prepare()
    assert [vars(step) for step in steps] == before
    assert [m["metadata"]["name"] for m in kube.created] == [submission.context.job_secrets_name]
