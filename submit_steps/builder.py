"""Runs the default steps in order, then the user's steps named by dotted path."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from spark_secrets.errors import ConfigError
from spark_secrets.kube.client import KubeClient
from submit_steps.context import JobContext
from submit_steps.jobsecrets import EnvSecretsStep, FileSecretsStep
from submit_steps.layout import LayoutStep
from submit_steps.plugin import RefresherPluginStep
from submit_steps.pods import PodWiringStep
from submit_steps.secret import TokenSecretStep
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep
from submit_steps.tokens import DelegationTokenStep

DEFAULT_STEPS: tuple[type[SubmitStep], ...] = (DelegationTokenStep, LayoutStep, TokenSecretStep, PodWiringStep,
                                                FileSecretsStep, EnvSecretsStep, RefresherPluginStep)


def load_step(path: str) -> type[SubmitStep]:
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name) if module_name else None
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, SubmitStep)):
        raise ConfigError(f"spark.secrets.steps: {path!r} is not an importable SubmitStep class",
                          "name a subclass of submit_steps.step.SubmitStep by module.Class")
    return cls


class StepBuilder:
    """Makes the job's context once and builds every step from it up front (so every setting is
    validated before anything happens); runs the enabled ones in order."""

    def __init__(self, conf: Mapping[str, str], steps: Sequence[SubmitStep] | None = None, *,
                 context: JobContext | None = None, deploy_mode: str | None = None,
                 kube: KubeClient | None = None) -> None:
        """``deploy_mode``: the entry point's own (a pod template is always cluster mode), else the conf's;
        ``kube``: the client steps read the cluster with (``k8s:`` references)."""
        self.context = context or JobContext.of(Settings(dict(conf)), deploy_mode=deploy_mode, kube=kube)
        self.settings = self.context.settings
        if steps is None:
            classes = [*DEFAULT_STEPS, *(load_step(p) for p in self.settings.user_steps)]
            steps = [cls(self.context) for cls in classes]
        self.steps = list(steps)

    def step(self, cls: type[SubmitStep]) -> SubmitStep | None:
        return next((s for s in self.steps if isinstance(s, cls)), None)

    def run(self, only: Sequence[type[SubmitStep]] | None = None) -> SubmissionSpec:
        """The spec after every enabled step (``only``: just the steps of those classes)."""
        spec = SubmissionSpec(conf=dict(self.settings.conf))
        if not self.settings.enabled:
            return spec.add_note("spark.secrets.enabled=false: nothing done")
        for step in self.steps:
            if only is not None and not isinstance(step, tuple(only)):
                continue
            if not step.enabled:
                note = step.disabled_note
                spec = spec.add_note(note) if note else spec
                continue
            spec = step.apply(spec)
        return spec
