"""The step contract, after Spark's ``KubernetesFeatureConfigStep``: one small class per concern."""

from __future__ import annotations

from abc import ABC, abstractmethod

from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec


class SubmitStep(ABC):
    """Takes a spec, returns a new one. Validates its settings in ``__init__``; does nothing when
    its feature is not configured (``enabled`` is false)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def enabled(self) -> bool:
        return True

    @abstractmethod
    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        """The spec with this step's additions."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(enabled={self.enabled})"
