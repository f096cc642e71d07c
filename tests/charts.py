"""The renew service installed on the test bed's node by its Helm chart (charts/spark-secrets-renewer), as an
admin installs it: the keytab in an existing Secret, krb5.conf and the Hadoop client files as values."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.bed import RENEWER_NAMESPACE, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.helm import Helm
from spark_secrets.testbed.kube import collection_path

from renewers import wait_until

CHART = Path(__file__).resolve().parent.parent / "charts" / "spark-secrets-renewer"
RELEASE = "spark-secrets-renewer"
SELECTOR = "app.kubernetes.io/name=spark-secrets-renewer"


def chart_values(bed: Testbed, cluster: SecureHdfs, namespaces: list[str], **more: Any) -> dict[str, Any]:
    """Values for the test bed: its principal, image, krb5.conf and Hadoop files, and the watched namespaces.
    The API server is named by the in-cluster variables (pods reach it on the host's loopback)."""
    assert bed.kube is not None and bed.node is not None
    repository, _, tag = bed.node.images_imported["renewer"].rpartition(":")
    host, port = bed.kube.server.removeprefix("https://").split(":")
    conf_dir = cluster.client_conf_dir()
    return {"principal": bed.kdc_required().principal(RENEWER_PRINCIPAL),
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "krb5": {"conf": bed.kdc_required().krb5_conf.read_text()},
            "hadoopConf": {"files": {f: (conf_dir / f).read_text() for f in ("core-site.xml", "hdfs-site.xml")}},
            "watch": {"allNamespaces": False, "namespaces": namespaces},
            "extraEnv": [{"name": "KUBERNETES_SERVICE_HOST", "value": host},
                         {"name": "KUBERNETES_SERVICE_PORT", "value": port}], **more}


def left_behind(bed: Testbed, objects: list[dict[str, Any]]) -> list[str]:
    """Which of ``objects`` the API server still has."""
    assert bed.kube is not None
    left = []
    for doc in objects:
        try:
            bed.kube.request("GET", f"{collection_path(doc)}/{doc['metadata']['name']}")
            left.append(f"{doc['kind']}/{doc['metadata']['name']}")
        except TestbedError as exc:
            if "HTTP 404" not in exc.problem:
                raise
    return left


@contextlib.contextmanager
def installed_renewer(bed: Testbed, workdir: Path, values: dict[str, Any],
                      upgrade_to: dict[str, Any] | None = None) -> Iterator[Helm]:
    """``helm install`` of the chart (``--wait``: its pods run), then ``helm upgrade`` to ``upgrade_to`` if
    given; on leaving, ``helm uninstall`` and a check that none of the release's objects and pods is left.

    Earlier tests applied objects of conf/rbac/common.yaml, as an admin does; the release adopts those it
    renders (``--take-ownership``, as the chart's README says for such a cluster), its uninstall removes them,
    and they are put back afterwards for the tests that follow."""
    assert bed.kube is not None
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))
    with contextlib.suppress(k8s.exceptions.ApiException):
        api.delete_namespaced_secret("spark-secrets-renewer-keytab", RENEWER_NAMESPACE)
    api.create_namespaced_secret(RENEWER_NAMESPACE, {
        "metadata": {"name": "spark-secrets-renewer-keytab"},
        "data": {"renewer.keytab": base64.b64encode(bed.renewer_keytab.read_bytes()).decode()}})
    helm = Helm(workdir, bed.kube.kubeconfig("admin"))
    fit = helm.post_renderer("--free-port")
    helm.install(RELEASE, CHART, RENEWER_NAMESPACE, values, "--take-ownership", *fit)
    try:
        if upgrade_to is not None:
            helm.install(RELEASE, CHART, RENEWER_NAMESPACE, upgrade_to, *fit, verb="upgrade")
        yield helm
    finally:
        objects = helm.manifest(RELEASE, RENEWER_NAMESPACE)
        helm.uninstall(RELEASE, RENEWER_NAMESPACE)
        try:
            wait_until("the renew service's pods outlived its release", lambda: not api.list_namespaced_pod(
                RENEWER_NAMESPACE, label_selector=SELECTOR).items, 60)
            left = left_behind(bed, objects)
            assert not left, f"helm uninstall left {left}"
        finally:  # what the test bed and earlier tests had applied, as before the release adopted it
            from spark_secrets.kube import rbac

            for doc in rbac.common():
                bed.kube.apply(doc)
            bed.bind_owners()
