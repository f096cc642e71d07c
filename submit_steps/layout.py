"""Step 1b: the conventions of the cluster's RBAC layout (``spark.secrets.layout``, see
``spark-secrets rbac``): which namespace the job runs in, which service account its driver uses,
and whether its token Secret is created or an admin's pre-created one is filled.

Only settings the user left unset are filled in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from spark_secrets.errors import ConfigError
from spark_secrets.login.kerberos import current_ticket_cache, short_name
from spark_secrets.secrets.tokensecret import OWNER_SEPARATOR
from submit_steps.context import JobContext
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec, Target
from submit_steps.step import SubmitStep

NAMESPACE = "spark.kubernetes.namespace"
DRIVER_ACCOUNT = "spark.kubernetes.authenticate.driver.serviceAccountName"


def resolve(settings: Settings, user: Callable[[], str]) -> Target:
    """The target for ``settings``; ``user`` gives the submitting user's short name when a layout needs it."""
    conf = settings.conf
    layout = settings.layout
    namespace = conf.get(NAMESPACE)
    account = conf.get(DRIVER_ACCOUNT)
    if layout == "none":
        return Target(namespace or "default", account)
    name = settings.layout_user or user()
    added: dict[str, str] = {}
    if layout == "namespace-per-user":
        if not namespace:
            namespace = added[NAMESPACE] = f"spark-{name}"
        if not account:
            account = added[DRIVER_ACCOUNT] = "spark"
        return Target(namespace, account, conf=added)
    if not namespace:
        raise ConfigError(f"spark.secrets.layout={layout} needs spark.kubernetes.namespace",
                          "set it to your group's namespace (by default spark-<group>)")
    if not account:
        account = added[DRIVER_ACCOUNT] = "spark" if layout == "group" else f"spark-{name}"
    fill = f"hadoop-tokens-{name}" if layout == "precreated" else None
    return Target(namespace, account, fill=fill, conf=added,
                  secret_prefix=f"{name}{OWNER_SEPARATOR}" if layout == "controller" else "")


class LayoutStep(SubmitStep):
    """Adds the layout's namespace and driver service account to the conf, and the target to the spec."""

    def __init__(self, context: JobContext | Settings, *, user: Callable[[], str] | None = None) -> None:
        super().__init__(context)
        self._user = user

    def user(self, spec: SubmissionSpec | None = None) -> str:
        if self._user is not None:
            return self._user()
        if spec is not None and spec.principal:
            return short_name(spec.principal)
        return current_ticket_cache().short_name

    def target(self, spec: SubmissionSpec | None = None) -> Target:
        return resolve(self.settings, lambda: self.user(spec))

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        target = self.target(spec)
        spec = replace(spec, target=target).add_conf(target.conf)
        if self.settings.layout == "none":
            return spec
        return spec.add_note(f"layout {self.settings.layout}: namespace {target.namespace}, driver service account "
                             f"{target.service_account}" + (f", pre-created Secret {target.fill}" if target.fill else ""))
