"""Runs the default steps in order, then the user's steps named by dotted path."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

from spark_secrets.errors import ConfigError
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.layout import LayoutStep
from submit_steps.plugin import RefresherPluginStep
from submit_steps.pods import PodWiringStep
from submit_steps.secret import TokenSecretStep
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep
from submit_steps.tokens import DelegationTokenStep

DEFAULT_STEPS: tuple[type[SubmitStep], ...] = (DelegationTokenStep, LayoutStep, TokenSecretStep, PodWiringStep,
                                                JobSecretsStep, RefresherPluginStep)


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
    """Builds every step up front (so every setting is validated before anything happens)."""

    def __init__(self, conf: Mapping[str, str], steps: Sequence[SubmitStep] | None = None) -> None:
        self.settings = Settings(dict(conf))
        if steps is None:
            classes = [*DEFAULT_STEPS, *(load_step(p) for p in self.settings.user_steps)]
            steps = [cls(self.settings) for cls in classes]
        self.steps = list(steps)

    def step(self, cls: type[SubmitStep]) -> SubmitStep | None:
        return next((s for s in self.steps if isinstance(s, cls)), None)

    def run(self) -> SubmissionSpec:
        spec = SubmissionSpec(conf=dict(self.settings.conf))
        if not self.settings.enabled:
            return spec.add_note("spark.secrets.enabled=false: nothing done")
        for step in self.steps:
            spec = step.apply(spec)
        return spec
