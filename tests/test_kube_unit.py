"""The API server's refusals become this project's errors, one line each (table-driven)."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError

from spark_secrets.errors import (KubernetesConflict, KubernetesError, KubernetesForbidden, KubernetesGone,
                                  KubernetesNotFound, SparkSecretsError)
from spark_secrets.kube import KubeClient, error_for


@pytest.mark.parametrize(("status", "kind", "words"), [
    (401, KubernetesError, "did not accept your credentials"),
    (403, KubernetesForbidden, "Kubernetes refused to read Secret a/b: secrets is forbidden"),
    (404, KubernetesNotFound, "not found (secrets is forbidden)"),
    (409, KubernetesConflict, "cannot read Secret a/b: secrets is forbidden"),
    (410, KubernetesGone, "HTTP 410"),
    (500, KubernetesError, "HTTP 500 secrets is forbidden"),
    (422, KubernetesError, "HTTP 422"),
])
def test_status_to_exception(status: int, kind: type[KubernetesError], words: str) -> None:
    error = error_for(status, "read Secret a/b", "secrets is forbidden")
    assert type(error) is kind and isinstance(error, SparkSecretsError)
    assert words in str(error) and "\n" not in str(error)


class _Client:
    class configuration:  # noqa: N801 - the attribute KubeClient reads
        host = "https://api.example:6443"


def test_call_maps_api_exceptions_and_unreachable_servers() -> None:
    kube = KubeClient.__new__(KubeClient)
    kube.api_client = _Client()  # type: ignore[assignment]

    def refuse() -> None:
        raise ApiException(status=403, reason="Forbidden")

    def unreachable() -> None:
        raise MaxRetryError(None, "/api", "refused")  # type: ignore[arg-type]

    with pytest.raises(KubernetesForbidden, match="refused to list pods"):
        kube.call("list pods", refuse)
    with pytest.raises(KubernetesError, match="api.example:6443 unreachable"):
        kube.call("list pods", unreachable)
    assert kube.call("add", lambda a, b: a + b, 1, b=2) == 3  # control: a call that works is passed through
