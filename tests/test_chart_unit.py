"""charts/spark-secrets-renewer with the real ``helm`` (no cluster): its generated parts are current, ``helm
lint`` is clean, its defaults equal conf/renewer/renewer.yaml's and conf/rbac's, and bad values fail with
one line naming the value. The chart on the API server and on the node: tests/test_chart.py."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from spark_secrets.errors import TestbedError

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "spark-secrets-renewer"
CONF = ROOT / "conf"
SHIPPED_PRINCIPAL = "spark-renewer/renewer.example.com@EXAMPLE.COM"  # conf/renewer/renewer.yaml's


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from spark_secrets.testbed.helm import Helm

    try:
        return Helm(tmp_path_factory.mktemp("helm"))
    except TestbedError as exc:
        pytest.skip(str(exc))


def _render(helm: Any, values: dict[str, Any], namespace: str = "spark-secrets-system") -> list[dict[str, Any]]:
    text = helm.template(CHART, values, "-n", namespace)
    return [d for d in yaml.safe_load_all(text) if d]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _shipped(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_generated_parts_are_current() -> None:
    sys.path.insert(0, str(ROOT / "charts"))
    import generate

    assert generate.main(["--check"]) == 0, "run: python3 charts/generate.py"


def test_helm_lint_is_clean(helm: Any) -> None:
    done = helm.run("lint", "--strict", str(CHART), "--set", f"principal={SHIPPED_PRINCIPAL}")
    assert "0 chart(s) failed" in done.stdout, done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def _without_chart_labels(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for meta in (out["metadata"], out.get("spec", {}).get("template", {}).get("metadata", {})):
        meta.pop("labels", None)
        meta.pop("annotations", None)
    if "selector" in out.get("spec", {}):
        out["spec"].pop("selector")
    return out


def test_the_defaults_are_the_shipped_deployment_and_service(helm: Any) -> None:
    docs = _render(helm, {"principal": SHIPPED_PRINCIPAL})
    shipped = _shipped(CONF / "renewer" / "renewer.yaml")
    for kind in ("Deployment", "Service"):
        chart, raw = _one(docs, kind, "spark-secrets-renewer"), _one(shipped, kind, "spark-secrets-renewer")
        assert _without_chart_labels(chart) == _without_chart_labels(raw), kind
    deployment = _one(docs, "Deployment", "spark-secrets-renewer")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_defaults_bind_what_conf_rbac_binds(helm: Any) -> None:
    """Every object of conf/rbac/common.yaml but its namespace, and the cluster-wide binding of
    renewer-cluster-wide.yaml, with the same rules, subjects and policies (labels aside)."""
    docs = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")): d
            for d in _render(helm, {"principal": SHIPPED_PRINCIPAL})}
    shipped = [d for d in _shipped(CONF / "rbac" / "common.yaml") + _shipped(CONF / "rbac" / "renewer-cluster-wide.yaml")
               if d["kind"] != "Namespace"]
    for raw in shipped:
        key = (raw["kind"], raw["metadata"]["name"], raw["metadata"].get("namespace"))
        assert key in docs, key
        assert _without_chart_labels(docs[key]) == _without_chart_labels(raw), key


def test_submitters_reach_the_owner_policy_parameters_as_spark_secrets_rbac_writes_them(helm: Any) -> None:
    from spark_secrets.kube import rbac

    submitters = {"system:serviceaccount:airflow:worker": ["alice", "bob"], "carol": ["*"]}
    docs = _render(helm, {"principal": "p@R", "admission": {"submitters": submitters}})
    expected = _one(rbac.common(submitters=sorted(submitters.items())), "ConfigMap", "spark-secrets-owners")
    assert _one(docs, "ConfigMap", "spark-secrets-owners")["data"] == expected["data"]
    off = _render(helm, {"principal": "p@R", "admission": {"enabled": False}})
    assert not [d for d in off if d["kind"].startswith("ValidatingAdmissionPolicy")
                or d["metadata"]["name"] == "spark-secrets-owners"]


def test_watched_namespaces_get_a_role_binding_and_an_argument_each(helm: Any) -> None:
    docs = _render(helm, {"principal": "p@R", "watch": {"allNamespaces": False, "namespaces": ["etl", "ml"]},
                          "grantAccess": True, "kafkaClusters": ["kafka://b1:9093,b2:9093/prod"],
                          "lease": {"duration": "20s"}}, namespace="renew")
    args = _one(docs, "Deployment", "spark-secrets-renewer")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" not in args and "--grant-access" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == ["etl", "ml"]
    assert args[args.index("--lease") + 1] == "renew/spark-secrets-renewer"
    assert args[args.index("--lease-duration") + 1] == "20s"
    assert args[args.index("--kafka-cluster") + 1] == "kafka://b1:9093,b2:9093/prod"
    bindings = {(d["metadata"]["namespace"], d["roleRef"]["name"]) for d in docs if d["kind"] == "RoleBinding"
                and d["metadata"]["namespace"] in ("etl", "ml")}
    assert bindings == {(ns, r) for ns in ("etl", "ml") for r in ("spark-secrets-renewer", "spark-secrets-renewer-grants")}
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == "spark-secrets-renewer"]
    for d in docs:  # the service's account is the one in the release's namespace, wherever it is bound
        for subject in d.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                assert subject["namespace"] == "renew", d


def test_monitoring_objects_carry_the_shipped_alert_rules(helm: Any) -> None:
    docs = _render(helm, {"principal": "p@R", "metrics": {"serviceMonitor": {"enabled": True,
                                                                              "labels": {"release": "prom"}}},
                          "alerts": {"prometheusRule": {"enabled": True}}})
    rule = _one(docs, "PrometheusRule", "spark-secrets-renewer")
    assert rule["spec"] == yaml.safe_load((CONF / "renewer" / "alerts.yaml").read_text())
    monitor = _one(docs, "ServiceMonitor", "spark-secrets-renewer")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert not [d for d in _render(helm, {"principal": "p@R"}) if d["kind"] in ("PrometheusRule", "ServiceMonitor")]


def test_inline_configuration_becomes_configmaps_the_pods_mount(helm: Any) -> None:
    docs = _render(helm, {"principal": "p@R", "krb5": {"conf": "[libdefaults]\n"},
                          "hadoopConf": {"files": {"core-site.xml": "<configuration/>"}}})
    volumes = {v["name"]: v for v in _one(docs, "Deployment", "spark-secrets-renewer")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["krb5"]["configMap"]["name"] == "spark-secrets-renewer-krb5"
    assert _one(docs, "ConfigMap", "spark-secrets-renewer-krb5")["data"] == {"krb5.conf": "[libdefaults]\n"}
    assert _one(docs, "ConfigMap", "spark-secrets-renewer-hadoop-conf")["data"] == {"core-site.xml": "<configuration/>"}
    assert volumes["keytab"]["secret"] == {"secretName": "spark-secrets-renewer-keytab", "defaultMode": 0o400}


@pytest.mark.parametrize(("values", "message"), [
    ({}, "principal is required"),
    ({"principal": "p@R", "watch": {"allNamespaces": False}}, "list the namespaces to watch in watch.namespaces"),
    ({"principal": "p@R", "keytab": {"existingSecret": ""}}, "keytab.existingSecret is required"),
    ({"principal": "p@R", "replicaCount": "two"}, "/replicaCount"),
    ({"principle": "p@R"}, "additional properties 'principle' not allowed"),
    ({"principal": "p@R", "watch": {"namespaces": "etl"}}, "/watch/namespaces"),
], ids=["no-principal", "nothing-watched", "no-keytab", "replicas-not-a-number", "a-misspelt-key", "namespaces-not-a-list"])
def test_bad_values_fail_with_one_line_naming_the_value(helm: Any, values: dict[str, Any], message: str) -> None:
    done = helm.run("template", "r", str(CHART), "-f", str(helm.values_file(values)), check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
