"""Notebooks: configure a ``SparkSession.builder`` before the session starts.

The notebook process is the driver (client mode): it gets a private local token file (0600, removed
at exit) through ``HADOOP_TOKEN_FILE_LOCATION``, which the driver JVM reads when it starts. Executors on
Kubernetes get the per-job Secret, as with ``spark-submit``. Call this before ``getOrCreate()``::

    from pyspark.sql import SparkSession
    from submit_steps.notebook import configure

    builder = SparkSession.builder.master("k8s://https://api:6443").appName("explore")
    setup = configure(builder, {"spark.secrets.hadoop.filesystems": "http://nn:9870",
                                "spark.kubernetes.namespace": "alice"})
    spark = builder.getOrCreate()
"""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spark_secrets.errors import ConfigError
from spark_secrets.kube.client import KubeClient
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND
from submit_steps.builder import StepBuilder
from submit_steps.jobsecrets import EnvSecretsStep, FileSecretsStep
from submit_steps.local import private_token_file
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep
from submit_steps.submission import Progress, Submission, stderr_progress
from submit_steps.tokens import DelegationTokenStep

#: The steps a notebook without a cluster runs: tokens and the job's secrets for the driver here.
LOCAL_STEPS: tuple[type[SubmitStep], ...] = (DelegationTokenStep, FileSecretsStep, EnvSecretsStep)


@dataclass
class NotebookSetup:
    """What ``configure`` did; ``close()`` deletes the job's Secret (also run at interpreter exit)."""

    spec: SubmissionSpec = field(repr=False)
    token_file: Path | None
    submission: Submission | None = field(repr=False)

    @property
    def secret_name(self) -> str | None:
        """The token Secret's name (None without tokens)."""
        return next((p.name for p in self.spec.secrets if p.labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS), None)

    def close(self) -> None:
        if self.submission is not None:
            self.submission.cleanup()
            if self.submission.template_dir is not None:
                shutil.rmtree(self.submission.template_dir, ignore_errors=True)
        if self.token_file is not None:
            self.token_file.unlink(missing_ok=True)


def _builder_options(builder: Any) -> dict[str, str]:
    options = getattr(builder, "_options", None)
    return {str(k): str(v) for k, v in (options or {}).items()}


def configure(builder: Any, conf: Mapping[str, str] | None = None, *, kube: KubeClient | None = None,
              progress: Progress = stderr_progress) -> NotebookSetup:
    """Run the submission steps for ``builder`` (plus ``conf``) and apply their settings to it.

    With a ``k8s://`` master the token Secret is created for the executors (``kube`` defaults to your
    kubeconfig); with any master the driver here gets a private token file.
    """
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        raise ConfigError("a Spark JVM is already running in this process",
                          "call configure() before the first SparkSession or SparkContext is created")
    merged = {**_builder_options(builder), **(conf or {})}
    # This process is the driver: client mode, the steps' context says so (the plugin jar path in the
    # images serves executors, the installed jar this driver).
    if merged.get("spark.submit.deployMode", "client") != "client":
        raise ConfigError(f"spark.submit.deployMode={merged['spark.submit.deployMode']} in a notebook session",
                          "a session's own process is the driver: use client mode, or spark-secrets submit")
    on_kubernetes = merged.get("spark.master", "").startswith("k8s://")
    submission: Submission | None = None
    if on_kubernetes:
        # Executors' secret volumes through a pod template (0440, the pods' fsGroup), read by this
        # driver whenever it makes an executor: kept until close().
        submission = Submission(merged, kube or KubeClient.from_config(), progress=progress,
                                template_roles=("executor",), deploy_mode="client")
        settings = submission.settings
        spec = submission.prepare()
    else:
        # No cluster: only the tokens and the job's secrets are needed, for the driver in this process.
        steps = StepBuilder(merged, deploy_mode="client")
        settings = steps.settings
        spec = steps.run(only=LOCAL_STEPS)
        # Nothing to create or mount without a cluster: executors run here and inherit the driver's env.
        local_conf = {k: v for k, v in spec.added_conf.items()
                      if not k.startswith(("spark.kubernetes.", "spark.executorEnv.SPARK_SECRETS_"))}
        spec = replace(spec, secrets=(), added_conf=local_conf)
        for note in spec.notes:
            progress(note)
    for key, value in {**spec.added_conf, **(conf or {})}.items():
        builder.config(key, value)
    if spec.local_secrets is not None:
        os.environ.update(spec.local_secrets.materialize())
        progress(f"the job's secrets for this driver in {os.environ['SPARK_SECRETS_DIR']} (0600, removed at exit)")
    token_file = None
    if spec.credentials is not None:
        token_file = private_token_file(spec.credentials, settings.token_file_format)
        os.environ["HADOOP_TOKEN_FILE_LOCATION"] = str(token_file)
        progress(f"driver token file {token_file} (0600, removed at exit)")
    setup = NotebookSetup(spec=spec, token_file=token_file, submission=submission)
    atexit.register(setup.close)
    return setup


def connect(conf: Mapping[str, str] | None = None, *, kube: KubeClient | None = None,
            progress: Progress = stderr_progress) -> Any:
    """Your own Spark Connect server in ``spark.kubernetes.namespace``, as a ``SparkSession`` of pyspark's
    Connect client: a live one of yours is reused, else one is started (a cluster-mode application with the
    job's token Secret, the refresher plugin and the job's secrets; see :mod:`submit_steps.connectserver`). No
    JVM starts here, and the ticket cache is needed only to start a server. The server requires a bearer token
    that only reaches this process (never a URL); it stops after ``spark.secrets.connect.idleTimeout``::

        from submit_steps.notebook import connect

        spark = connect({"spark.master": "k8s://https://api:6443", "spark.kubernetes.namespace": "alice",
                         "spark.kubernetes.container.image": "my-spark:4.3",
                         "spark.secrets.hadoop.filesystems": "hdfs://prod", "spark.secrets.renewer": "renewer"})
        spark.sql("SELECT 1").show()
    """
    from submit_steps.connectserver import connect_server

    return connect_server(dict(conf or {}), kube, progress).session()
