"""The Kubernetes API calls this project makes, with one-line errors and no secret bytes in them.

Built on the ``kubernetes`` client; its debug log of response bodies (which would carry Secret
data) is filtered out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from spark_secrets.errors import KubernetesError


class KubernetesForbidden(KubernetesError):
    """RBAC denied the request (HTTP 403)."""


class KubernetesNotFound(KubernetesError):
    """The object does not exist (HTTP 404)."""


class KubernetesConflict(KubernetesError):
    """The object exists already, or changed since it was read (HTTP 409)."""


class _NoBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "body" not in str(record.msg).lower()


logging.getLogger("kubernetes.client.rest").addFilter(_NoBodies())


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str
    uid: str
    resource_version: str = ""


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class KubeClient:
    """A user's (or service's) view of one API server."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str | None = None) -> None:
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.namespace = namespace or "default"

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """From ``kubeconfig`` (default ``KUBECONFIG`` or ``~/.kube/config``), else in-cluster."""
        try:
            api = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
            _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
            namespace = (active or {}).get("context", {}).get("namespace")
            return cls(api, namespace)
        except (k8s_config.ConfigException, FileNotFoundError, OSError, TypeError) as exc:
            if kubeconfig is None:
                try:
                    k8s_config.load_incluster_config()
                    return cls(k8s.ApiClient(), None)
                except k8s_config.ConfigException:
                    pass
            raise KubernetesError(f"no usable Kubernetes configuration ({exc})",
                                  "set KUBECONFIG or run inside a pod with a service account") from None

    def __repr__(self) -> str:
        return f"KubeClient({self.api_client.configuration.host}, namespace={self.namespace})"

    # -- errors ----------------------------------------------------------------------------------
    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            message = _message(exc)
            if exc.status == 403:
                raise KubernetesForbidden(f"Kubernetes refused to {what}: {message}",
                                          "ask an admin for the RBAC role this needs") from None
            if exc.status == 404:
                raise KubernetesNotFound(f"cannot {what}: not found ({message})") from None
            if exc.status == 409:
                raise KubernetesConflict(f"cannot {what}: {message}") from None
            if exc.status == 401:
                raise KubernetesError(f"cannot {what}: the API server did not accept your credentials",
                                      "refresh your kubeconfig credentials") from None
            raise KubernetesError(f"cannot {what}: HTTP {exc.status} {message}") from None
        except (HTTPError, OSError) as exc:
            raise KubernetesError(f"cannot {what}: API server {self.api_client.configuration.host} unreachable "
                                  f"({type(exc).__name__})", "check the cluster address in your kubeconfig") from None

    # -- access review ---------------------------------------------------------------------------
    def can_i(self, verb: str, resource: str, namespace: str, group: str = "", name: str | None = None) -> bool:
        """SelfSubjectAccessReview: may the current identity do ``verb`` on ``resource`` (``name``) in ``namespace``?"""
        review = k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace,
                                                         group=group, name=name)))
        api = k8s.AuthorizationV1Api(self.api_client)
        result = self.call(f"review access to {resource} in {namespace}", api.create_self_subject_access_review,
                            review)
        return bool(result.status.allowed)

    # -- Secrets -----------------------------------------------------------------------------------
    def create_secret(self, manifest: Mapping[str, Any]) -> ObjectRef:
        meta = manifest["metadata"]
        created = self.call(f"create Secret {meta['namespace']}/{meta['name']}", self.core.create_namespaced_secret,
                             meta["namespace"], dict(manifest), _preload_content=False)
        body = json.loads(created.data)["metadata"]  # parsed here so the data never reaches a model's repr
        return ObjectRef("Secret", body["name"], body["namespace"], body["uid"], body["resourceVersion"])

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        resp = self.call(f"read Secret {namespace}/{name}", self.core.read_namespaced_secret, name, namespace,
                          _preload_content=False)
        return dict(json.loads(resp.data))

    def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete it; with ``uid``, only that incarnation (a same-named newer Secret is left alone)."""
        body = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid)) if uid else None
        self.call(f"delete Secret {namespace}/{name}", self.core.delete_namespaced_secret, name, namespace,
                  body=body, _preload_content=False)

    def patch_secret(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """A JSON merge patch (``resourceVersion`` in its metadata makes it conditional)."""
        self.call(f"update Secret {namespace}/{name}", self.core.patch_namespaced_secret, name, namespace,
                  dict(patch), _preload_content=False)

    def set_owner(self, secret: ObjectRef, owner: ObjectRef) -> None:
        """Make ``owner`` (a pod) own ``secret``, so the garbage collector deletes it with the pod."""
        patch = {"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": owner.kind, "name": owner.name, "uid": owner.uid}]}}
        self.call(f"set the owner of Secret {secret.namespace}/{secret.name}", self.core.patch_namespaced_secret,
                   secret.name, secret.namespace, patch, _preload_content=False)

    # -- pods --------------------------------------------------------------------------------------
    def list_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every pod in ``namespace`` (None: all namespaces), as plain dicts."""
        resp = (self.call(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace,
                          _preload_content=False) if namespace else
                self.call("list pods", self.core.list_pod_for_all_namespaces, _preload_content=False))
        return list(json.loads(resp.data).get("items") or [])

    def find_pods(self, namespace: str, label_selector: str) -> list[ObjectRef]:
        pods = self.call(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace,
                          label_selector=label_selector)
        return [ObjectRef("Pod", p.metadata.name, namespace, p.metadata.uid, p.metadata.resource_version)
                for p in pods.items]
