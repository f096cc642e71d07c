"""The kubeflow spark-operator (v2, built from the Go module proxy by install.sh) on the test bed's node,
installed with its own Helm chart through a real ``helm``, as platform teams install it.

Its controller runs ``spark-submit`` in its pod (the operator's image is the test bed's Spark image with
the operator added, as upstream builds it on Spark's), its webhook mutates and validates applications
and their pods. What only the test bed needs goes in through values and helm's post-renderer: host
network (the API server listens on the host's loopback; the apiserver reaches the webhook's Service
through its endpoint, ``--enable-aggregator-routing``), no HTTP probes (controller and webhook would both
take the host's :8081), and the driver's API server address in the controller's spark-defaults.conf
(the operator's webhook refuses ``spark.kubernetes.driver.master`` in an application's sparkConf).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import free_port
from spark_secrets.testbed.helm import Helm
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir

NAMESPACE = "spark-operator"
RELEASE = "spark-operator"
#: Where the controller's spark-submit reads spark-defaults.conf (a ConfigMap of the test bed's).
CONF_MAP, CONF_DIR = "spark-operator-spark-conf", "/etc/spark-operator"
APPS = "/apis/sparkoperator.k8s.io/v1beta2"


def operator_chart() -> Path:
    chart = cache_dir() / "spark-operator" / "chart"
    if not (chart / "Chart.yaml").is_file():
        raise TestbedError(f"the spark-operator chart was not found in {chart}", INSTALL_HINT)
    return chart


def operator_example(name: str = "spark-pi-python.yaml") -> Path:
    """One of the operator's own examples (install.sh keeps its PySpark one)."""
    path = cache_dir() / "spark-operator" / name
    if not path.is_file():
        raise TestbedError(f"the spark-operator example {name} was not found in {path.parent}", INSTALL_HINT)
    return path


class SparkOperator:
    """``helm install`` of the operator's chart for ``job_namespaces``; :meth:`uninstall` removes it."""

    def __init__(self, bed: Any, workdir: Path, job_namespaces: list[str]) -> None:
        assert bed.kube is not None and bed.node is not None
        self.bed, self.kube = bed, bed.kube
        self.helm = Helm(workdir, bed.kube.kubeconfig("admin"))
        self.job_namespaces = job_namespaces

    def values(self) -> dict[str, Any]:
        repository, _, tag = self.bed.image("spark-operator").rpartition(":")
        registry, _, repository = repository.partition("/")
        host, port = self.kube.server.removeprefix("https://").split(":")
        env = [{"name": "KUBERNETES_SERVICE_HOST", "value": host}, {"name": "KUBERNETES_SERVICE_PORT", "value": port}]
        return {
            "image": {"registry": registry, "repository": repository, "tag": tag, "pullPolicy": "Never"},
            "controller": {"leaderElection": {"enable": False}, "workers": 2, "uiService": {"enable": False},
                           "env": [*env, {"name": "SPARK_CONF_DIR", "value": CONF_DIR}],
                           "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                                       {"name": "spark-conf", "configMap": {"name": CONF_MAP}}],
                           "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                                            {"name": "spark-conf", "mountPath": CONF_DIR, "readOnly": True}]},
            "webhook": {"enable": True, "port": free_port(), "leaderElection": {"enable": False}, "env": env},
            "prometheus": {"metrics": {"enable": False}},
            "spark": {"jobNamespaces": self.job_namespaces},
        }

    def install(self) -> None:
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONF_MAP, "namespace": NAMESPACE},
                         "data": {"spark-defaults.conf": f"spark.kubernetes.driver.master {self.kube.server}\n"}})
        self._grant_network_policies()
        fit = self.helm.post_renderer("--no-probes", "--append-arg=--health-probe-bind-address=0")
        self.helm.install(RELEASE, operator_chart(), NAMESPACE, self.values(), *fit)
        self._wait_for_webhook_ca()

    def _grant_network_policies(self) -> None:
        """What the platform team adds for Spark 4.1 and later: their spark-submit also creates a NetworkPolicy
        for the driver (Spark's NetworkPolicyFeatureStep), which the chart's controller role (made for Spark
        4.0) does not allow."""
        role = "spark-operator-controller-networkpolicies"
        self.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
                         "rules": [{"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                                    "verbs": ["create", "get", "list", "watch", "delete", "patch", "update"]}]})
        self.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                         "metadata": {"name": role},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                         "subjects": [{"kind": "ServiceAccount", "name": f"{RELEASE}-controller", "namespace": NAMESPACE}]})

    def _wait_for_webhook_ca(self) -> None:
        """The webhook makes its certificate at start and writes its CA into the chart's webhook
        configurations; until then the API server cannot call it."""
        deadline = time.monotonic() + 90
        path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
        while True:
            found = self.kube.request("GET", path).get("items") or []
            ours = [w for c in found if c["metadata"]["name"].startswith(RELEASE) for w in c.get("webhooks") or []]
            if ours and all(w.get("clientConfig", {}).get("caBundle") for w in ours):
                return
            if time.monotonic() > deadline:
                raise TestbedError("the spark-operator's webhook did not publish its CA in 90 s",
                                   "read its pod's log: kubectl -n spark-operator logs -l app.kubernetes.io/component=webhook")
            time.sleep(0.5)

    def application(self, namespace: str, name: str) -> dict[str, Any]:
        return self.kube.request("GET", f"{APPS}/namespaces/{namespace}/sparkapplications/{name}")

    def state(self, namespace: str, name: str) -> str:
        status = self.application(namespace, name).get("status") or {}
        return str((status.get("applicationState") or {}).get("state") or "")

    def logs(self) -> str:
        """The operator's pods' logs (controller and webhook), for a failure's message."""
        out = []
        pods = self.kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods").get("items") or []
        for pod in pods:
            name = pod["metadata"]["name"]
            try:
                text = self.kube.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/log", raw=True)
            except TestbedError as exc:
                text = exc.problem
            out.append(f"== {name}\n{text}")
        return "\n".join(out)

    def uninstall(self) -> None:
        self.helm.uninstall(RELEASE, NAMESPACE)
