"""One-line errors for the API server's answers (its ``Status`` message, never a response body's data)."""

from __future__ import annotations

import json

from spark_secrets.errors import (KubernetesConflict, KubernetesError, KubernetesForbidden, KubernetesGone,
                                  KubernetesInvalid, KubernetesNotFound)


def status_message(body: bytes | str | None, reason: str | None) -> str:
    """The API server's ``Status`` message, else the HTTP reason."""
    try:
        return str(json.loads(body or "{}").get("message") or reason)
    except (ValueError, AttributeError):
        return str(reason)


def status_error(what: str, status: int | None, message: str) -> KubernetesError:
    """The one-line error for an HTTP error ``status`` of the request that was to ``what``."""
    if status == 403:
        return KubernetesForbidden(f"Kubernetes refused to {what}: {message}", "ask an admin for the RBAC role this needs")
    if status == 404:
        return KubernetesNotFound(f"cannot {what}: not found ({message})")
    if status == 409:
        return KubernetesConflict(f"cannot {what}: {message}")
    if status == 410:
        return KubernetesGone(f"cannot {what}: HTTP 410 {message}", "list again")
    if status == 422:
        return KubernetesInvalid(f"cannot {what}: HTTP 422 {message}")
    if status == 401:
        return KubernetesError(f"cannot {what}: the API server did not accept your credentials",
                               "refresh your kubeconfig credentials")
    return KubernetesError(f"cannot {what}: HTTP {status} {message}")
