"""charts/spark-secrets-renewer on the test bed's API server: every object of a render with every option
passes a strict server-side dry run, the prometheus-operator's ServiceMonitor and PrometheusRule against
CRDs made from that operator's own types. Installed with ``helm install``, upgraded and uninstalled on the
node around the long job of test_pods.py (tests/charts.py); rendering and values: test_chart_unit.py."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.bed import RENEWER_NAMESPACE, Testbed
from spark_secrets.testbed.helm import Helm
from spark_secrets.testbed.kube import collection_path
from spark_secrets.testbed.paths import monitoring_crds

from charts import CHART

pytestmark = pytest.mark.testbed


def _install_crds(bed: Testbed) -> None:
    assert bed.kube is not None
    for path in monitoring_crds():
        crd = yaml.safe_load(path.read_text())
        bed.kube.apply(crd)
        deadline = time.monotonic() + 60
        while not any(c["type"] == "Established" and c["status"] == "True" for c in bed.kube.request(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}")
                .get("status", {}).get("conditions") or ()):
            assert time.monotonic() < deadline, crd["metadata"]["name"]
            time.sleep(0.2)


def _dry_run(bed: Testbed, doc: dict[str, Any]) -> None:
    """A strict server-side dry run of creating ``doc``; an object that exists already (409) passed
    validation first, as the API server validates before it stores."""
    assert bed.kube is not None
    try:
        bed.kube.request("POST", f"{collection_path(doc)}?dryRun=All&fieldValidation=Strict", doc)
    except TestbedError as exc:
        if "HTTP 409" not in exc.problem:
            raise


def test_every_object_of_the_chart_with_every_option_passes_strict_validation(testbed: Testbed,
                                                                              tmp_path: Path) -> None:
    _install_crds(testbed)
    helm = Helm(tmp_path / "helm")
    values = {"principal": "spark-renewer/renewer.example.com@EXAMPLE.COM",
              "watch": {"allNamespaces": False, "namespaces": ["alice", "bob"]}, "grantAccess": True,
              "krb5": {"conf": "[libdefaults]\n"}, "hadoopConf": {"files": {"core-site.xml": "<configuration/>"}},
              "kafkaClusters": ["kafka://b1:9093/prod"], "lease": {"duration": "20s"},
              "admission": {"submitters": {"system:serviceaccount:airflow:worker": ["alice"]}},
              "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
              "alerts": {"prometheusRule": {"enabled": True}},
              "extraEnv": [{"name": "TZ", "value": "UTC"}], "nodeSelector": {"kubernetes.io/os": "linux"},
              "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "spark", "effect": "NoSchedule"}]}
    docs = [d for d in yaml.safe_load_all(helm.template(CHART, values, "-n", RENEWER_NAMESPACE)) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Lease", "ServiceMonitor", "PrometheusRule", "ValidatingAdmissionPolicy",
            "RoleBinding", "ConfigMap"} <= kinds, kinds
    for doc in docs:
        _dry_run(testbed, doc)

    # The control: the same objects with a field the schema does not have are refused, each kind.
    for kind in ("Deployment", "ServiceMonitor", "PrometheusRule"):
        (doc,) = [copy.deepcopy(d) for d in docs if d["kind"] == kind]
        doc["spec"]["replicaz"] = 2
        with pytest.raises(TestbedError) as refused:
            _dry_run(testbed, doc)
        assert "unknown field" in str(refused.value) and "spec.replicaz" in str(refused.value), kind
