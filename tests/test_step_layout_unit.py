"""The layout step: each RBAC layout's names filled in where the user set none."""

from __future__ import annotations

import pytest

from spark_secrets.errors import ConfigError
from submit_steps.layout import resolve
from submit_steps.settings import Settings

from steps_support import BASE, builder


def _layout(layout: str, **conf: str) -> dict[str, str]:
    base = {k: v for k, v in BASE.items() if k != "spark.kubernetes.namespace"}
    return {**base, "spark.secrets.layout": layout, **{k.replace("_", "."): v for k, v in conf.items()}}


def test_namespace_per_user_layout_fills_namespace_and_account_from_the_principal() -> None:
    spec = builder(_layout("namespace-per-user")).run()
    (plan,) = spec.secrets
    assert plan.namespace == "spark-alice" and not plan.fill
    assert spec.added_conf["spark.kubernetes.namespace"] == "spark-alice"
    assert spec.added_conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    # What the user set stays.
    spec = builder({**_layout("namespace-per-user"), "spark.kubernetes.namespace": "mine"}).run()
    assert spec.secrets[0].namespace == "mine" and "spark.kubernetes.namespace" not in spec.added_conf


def test_precreated_layout_fills_the_users_secret_instead_of_creating_one() -> None:
    conf = {**_layout("precreated"), "spark.kubernetes.namespace": "spark-team-a"}
    spec = builder(conf).run()
    (plan,) = spec.secrets
    assert (plan.name, plan.namespace, plan.fill) == ("hadoop-tokens-alice", "spark-team-a", True)
    assert spec.added_conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark-alice"
    patch = plan.fill_patch()
    assert set(patch) == {"metadata", "data"} and "ownerReferences" not in patch["metadata"]  # type: ignore[operator]
    assert spec.added_conf["spark.kubernetes.kerberos.tokenSecret.name"] == "hadoop-tokens-alice"


def test_controller_layout_names_the_driver_account_on_the_secret() -> None:
    conf = {**_layout("controller"), "spark.kubernetes.namespace": "spark-jobs", "spark.secrets.layout.user": "al"}
    (plan,) = builder(conf).run().secrets
    assert plan.annotations["spark-secrets.io/service-account"] == "spark-al"


def test_group_layouts_need_the_namespace_and_none_never_asks_for_the_user() -> None:
    with pytest.raises(ConfigError, match="needs spark.kubernetes.namespace"):
        resolve(Settings(_layout("group")), lambda: "alice")

    def no_user() -> str:
        raise AssertionError("layout none must not read the ticket")
    assert resolve(Settings(dict(BASE)), no_user).namespace == "alice"
    with pytest.raises(ConfigError, match="is not a layout"):
        Settings(_layout("per-team"))
    with pytest.raises(ConfigError, match="cannot be part of Kubernetes names"):
        Settings({**_layout("group"), "spark.secrets.layout.user": "Alice Smith"})
