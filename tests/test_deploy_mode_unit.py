"""Issue 29: a deploy mode that is given (``spark.submit.deployMode``, or ``--deploy-mode``, which spark-submit
prefers wherever each stands) is read once and every step and the submission act on that one answer; the two
Secrets of a job share one name stem, ``spark.secrets.secret.name``'s when it is set. Unset, every step takes
Spark's default, client (see test_step_contract_unit)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.jobsecrets.resolver import Resolver
from spark_secrets.secrets.jobsecret import KIND_JOB_SECRETS
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND
from submit_steps.builder import StepBuilder
from submit_steps.context import JobContext
from submit_steps.jobsecrets import EnvSecretsStep, FileSecretsStep
from submit_steps.layout import LayoutStep
from submit_steps.plugin import RefresherPluginStep
from submit_steps.pods import PodWiringStep
from submit_steps.secret import TokenSecretStep
from submit_steps.settings import Settings
from submit_steps.sparkconf import conf_from_submit_args
from submit_steps.spec import SecretPlan, SubmissionSpec
from submit_steps.submission import Submission
from submit_steps.tokens import DelegationTokenStep

from steps_support import BASE, Ticket, creds

MASTER = "k8s://https://api:6443"
IMAGE_JAR = "/opt/spark-secrets/plugin.jar"
LOCAL_JAR = "/site/plugin.jar"
#: A job with a token Secret, the plugin's jar in the images, a job secret of its own and one from a k8s Secret.
JOB = {**BASE, "spark.master": MASTER, "spark.secrets.plugin.jar": IMAGE_JAR,
       "spark.secrets.file.db-password": "env:LOCAL_PW", "spark.secrets.file.tls.crt": "k8s:tls-certs#tls.crt"}


class Kube:
    """Answers the job-secrets step's read of the ``k8s:`` Secret."""

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        assert (namespace, name) == ("alice", "tls-certs")
        return {"data": {"tls.crt": base64.b64encode(b"CERT").decode()}}


def _fetch(namenodes, renewer, ticket, verify, problems):  # type: ignore[no-untyped-def]
    return creds()


def _builder(conf: dict[str, str], user: Callable[[], str] | None = None, *, kube: Kube | None = None,
             deploy_mode: str | None = None) -> StepBuilder:
    """The default steps with fakes, sharing one context (``kube`` answers the ``k8s:`` reads)."""
    context = JobContext.of(Settings(conf), deploy_mode=deploy_mode, kube=kube)  # type: ignore[arg-type]
    resolver = Resolver(None, {"LOCAL_PW": "pw-5e0a"})
    steps = [DelegationTokenStep(context, ticket=Ticket, fetch=_fetch), LayoutStep(context, user=user),
             TokenSecretStep(context), PodWiringStep(context), FileSecretsStep(context, resolver=resolver),
             EnvSecretsStep(context, resolver=resolver), RefresherPluginStep(context, local_jar=lambda: Path(LOCAL_JAR))]
    return StepBuilder(conf, steps, context=context)


# -- one deploy mode for every step --------------------------------------------------------------
def _answers(conf: dict[str, str]) -> dict[str, str]:
    """Where each part of a submission of ``conf`` acts as if the driver ran, read from what it does."""
    kube = Kube()
    submission = Submission(conf, kube, builder=_builder(conf, kube=kube), progress=lambda _: None)  # type: ignore[arg-type]
    spec = submission.builder.run()
    driver_jar = spec.added_conf["spark.driver.extraClassPath"]
    assert driver_jar in (IMAGE_JAR, LOCAL_JAR)
    assert spec.local_secrets is not None
    return {
        # the driver's plugin jar: the images' for a driver pod, the installed one for a driver here
        "plugin step": "cluster" if driver_jar == IMAGE_JAR else "client",
        # a driver here gets the k8s: Secret's value, which it cannot mount
        "job-secrets step": "client" if "tls.crt" in spec.local_secrets.files else "cluster",
        # the local token file and job secrets, adopting the Secrets, the driver pod's outcome
        "submission": "cluster" if submission._is_cluster_mode() else "client",
        "submission (driver outcome)": "cluster" if submission._reports_driver_outcome() else "client",
    }


def _submit_args(*deploy: str) -> dict[str, str]:
    """The conf of a spark-submit command line that names the job's settings by flags and ``--conf``."""
    confs = [f for k, v in JOB.items() if k not in ("spark.master", "spark.app.name") for f in ("--conf", f"{k}={v}")]
    return conf_from_submit_args(["--master", MASTER, *deploy, "--name", JOB["spark.app.name"], *confs,
                                  "local:///opt/app/etl.py", "--deploy-mode", "ignored"], {})


CASES = {
    "--deploy-mode cluster": (lambda: _submit_args("--deploy-mode", "cluster"), "cluster"),
    "--deploy-mode=cluster": (lambda: _submit_args("--deploy-mode=cluster"), "cluster"),
    "spark.submit.deployMode=cluster": (lambda: {**JOB, "spark.submit.deployMode": "cluster"}, "cluster"),
    "spark.submit.deployMode=client": (lambda: {**JOB, "spark.submit.deployMode": "client"}, "client"),
    # spark-submit prefers --deploy-mode to a --conf of spark.submit.deployMode, wherever each stands
    "--deploy-mode before --conf": (lambda: _submit_args("--deploy-mode", "cluster", "--conf",
                                                         "spark.submit.deployMode=client"), "cluster"),
    "--deploy-mode after --conf": (lambda: _submit_args("--conf", "spark.submit.deployMode=cluster",
                                                        "--deploy-mode", "client"), "client"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_step_and_the_submission_agree_on_the_deploy_mode(case: str) -> None:
    make, expected = CASES[case]
    conf = make()
    answers = _answers(conf)
    assert answers == dict.fromkeys(answers, expected), answers
    assert Settings(conf).deploy_mode == expected


# -- one name stem for both Secrets ----------------------------------------------------------------
def _plans(conf: dict[str, str], user: Callable[[], str] | None = None) -> tuple[SecretPlan, SecretPlan, SubmissionSpec]:
    spec = _builder(conf, user).run()
    by_kind = {p.labels[LABEL_KIND]: p for p in spec.secrets}
    assert set(by_kind) == {KIND_HADOOP_TOKENS, KIND_JOB_SECRETS}
    return by_kind[KIND_HADOOP_TOKENS], by_kind[KIND_JOB_SECRETS], spec


@pytest.mark.parametrize("name, tokens, job", [
    ("etl-3d18998f-hadoop-tokens", "etl-3d18998f-hadoop-tokens", "etl-3d18998f-job-secrets"),
    ("etl", "etl", "etl-job-secrets"),
    ("team.etl-tokens", "team.etl-tokens", "team.etl-tokens-job-secrets"),
])
def test_both_secrets_follow_the_secret_name_setting(name: str, tokens: str, job: str) -> None:
    token_plan, job_plan, spec = _plans({**JOB, "spark.secrets.secret.name": name})
    assert (token_plan.name, job_plan.name) == (tokens, job)
    assert spec.added_conf["spark.kubernetes.kerberos.tokenSecret.name"] == tokens
    assert spec.added_conf[f"spark.kubernetes.driver.secrets.{job}"] == "/mnt/secrets/spark-secrets"


def test_unset_both_secrets_share_one_generated_stem() -> None:
    token_plan, job_plan, _ = _plans(dict(JOB))
    match = re.fullmatch(r"(nightly-etl-[0-9a-f]{8})-hadoop-tokens", token_plan.name)
    assert match is not None, token_plan.name
    assert job_plan.name == f"{match.group(1)}-job-secrets"
    other, _, _ = _plans(dict(JOB))
    assert other.name != token_plan.name  # each job its own stem


def test_the_controller_layouts_owner_prefix_goes_before_both() -> None:
    conf = {**JOB, "spark.secrets.layout": "controller", "spark.kubernetes.namespace": "spark-jobs",
            "spark.secrets.layout.user": "al"}
    token_plan, job_plan, _ = _plans(conf)
    match = re.fullmatch(r"al--(nightly-etl-[0-9a-f]{8})-hadoop-tokens", token_plan.name)
    assert match is not None, token_plan.name
    assert job_plan.name == f"al--{match.group(1)}-job-secrets"
    token_plan, job_plan, _ = _plans({**conf, "spark.secrets.secret.name": "etl-nightly"})
    assert (token_plan.name, job_plan.name) == ("al--etl-nightly", "al--etl-nightly-job-secrets")


def test_a_job_secrets_name_from_a_long_secret_name_stays_a_kubernetes_name() -> None:
    long = "a" * 240 + "-hadoop-tokens"
    settings = Settings({**JOB, "spark.secrets.secret.name": long[:253]})
    assert settings.token_secret_name == long[:253]
    assert len(settings.job_secrets_name) <= 253 and settings.job_secrets_name.endswith("-job-secrets")
    assert settings.job_secrets_name.startswith("a" * 200)
