"""The step contract, after Spark's ``KubernetesFeatureConfigStep``: one small class per concern.

A step is built once from the job's context (:class:`~submit_steps.context.JobContext`), validates its
settings then, and is never changed afterwards; the builder runs it only when ``enabled``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from submit_steps.context import JobContext
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec


class SubmitStep(ABC):
    """Takes a spec, returns a new one. Built from a :class:`JobContext` (a bare :class:`Settings` gets its
    context, the conf's deploy mode); skipped by the builder when its feature is not configured
    (``enabled`` false), with ``disabled_note`` said instead when there is one."""

    def __init__(self, context: JobContext | Settings) -> None:
        self.context = context if isinstance(context, JobContext) else JobContext.of(context)
        self.settings = self.context.settings

    @property
    def enabled(self) -> bool:
        return True

    @property
    def disabled_note(self) -> str | None:
        """What the user is told when the step is skipped (None: nothing)."""
        return None

    @abstractmethod
    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        """The spec with this step's additions."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(enabled={self.enabled})"
