"""The job context: what every step needs to agree on, decided once before the steps run.

After Spark's ``KubernetesConf``: the steps read the deploy mode, the namespace and the name stem of the
job's Secrets from here rather than each from the raw conf, so that they cannot disagree (one step
assuming a driver pod while another assumes a driver here). Clients that do I/O (the Kubernetes API)
are made before the steps and handed in here; no step is changed after it is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from spark_secrets.errors import ConfigError
from spark_secrets.kube.client import KubeClient
from submit_steps.settings import DEFAULT_DEPLOY_MODE as DEFAULT_DEPLOY_MODE
from submit_steps.settings import Settings
from submit_steps.settings import deploy_mode_of as deploy_mode_of

DEPLOY_MODES = ("client", "cluster")


@dataclass(frozen=True)
class JobContext:
    """Everything the steps share about one job. ``deploy_mode`` is the conf's (Spark's default, client,
    when unset) unless the entry point fixes it: a SparkApplication or a pod template always runs its
    driver in a pod, a notebook always here."""

    settings: Settings
    deploy_mode: str
    #: The job's namespace as the user gave it (a layout may choose another: see the spec's target).
    namespace: str
    #: What the names of all of the job's Secrets start with (see :attr:`Settings.secret_stem`).
    secret_stem: str
    token_secret_name: str
    job_secrets_name: str
    #: Reads ``k8s:`` job-secret references before anything is created; None where there is no cluster.
    kube: KubeClient | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, settings: Settings, *, deploy_mode: str | None = None, kube: KubeClient | None = None) -> JobContext:
        """The context of ``settings``; ``deploy_mode`` overrides the conf's (an entry point's own)."""
        if deploy_mode is not None and deploy_mode not in DEPLOY_MODES:
            raise ConfigError(f"deploy mode {deploy_mode!r}", f"use one of {', '.join(DEPLOY_MODES)}")
        return cls(settings=settings, deploy_mode=deploy_mode or deploy_mode_of(settings.conf),
                   namespace=settings.namespace, secret_stem=settings.secret_stem,
                   token_secret_name=settings.token_secret_name, job_secrets_name=settings.job_secrets_name,
                   kube=kube)

    @property
    def cluster_mode(self) -> bool:
        """Whether the driver runs in a pod."""
        return self.deploy_mode == "cluster"

    @property
    def conf(self) -> Mapping[str, str]:
        return self.settings.conf

    @property
    def master(self) -> str:
        return self.settings.conf.get("spark.master", "")
