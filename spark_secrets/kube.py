"""The Kubernetes API calls this project makes, with one-line errors and no secret bytes in them.

Built on the ``kubernetes`` client; its debug log of response bodies (which would carry Secret
data) is filtered out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from spark_secrets.errors import (KubernetesConflict, KubernetesError, KubernetesForbidden, KubernetesGone,
                                  KubernetesNotFound)


class _NoBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "body" not in str(record.msg).lower()


logging.getLogger("kubernetes.client.rest").addFilter(_NoBodies())


#: Ask for metadata only (``PartialObjectMetadata``): labels and annotations, no data.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ITEM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


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


def error_for(status: int | None, what: str, message: str) -> KubernetesError:
    """The error for an API server's refusal of ``what`` with HTTP ``status`` and ``message``."""
    if status == 401:
        return KubernetesError(f"cannot {what}: the API server did not accept your credentials",
                               "refresh your kubeconfig credentials")
    if status == 403:
        return KubernetesForbidden(f"Kubernetes refused to {what}: {message}", "ask an admin for the RBAC role this needs")
    if status == 404:
        return KubernetesNotFound(f"cannot {what}: not found ({message})")
    if status == 409:
        return KubernetesConflict(f"cannot {what}: {message}")
    if status == 410:
        return KubernetesGone(f"cannot {what}: HTTP 410 {message}", "list again")
    return KubernetesError(f"cannot {what}: HTTP {status} {message}")


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
        """``fn(*args, **kwargs)`` with the API server's refusals turned into this project's errors
        (:func:`error_for`) and connection failures into one line naming the server."""
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise error_for(exc.status, what, _message(exc)) from None
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

    def list_secret_metadata(self, namespace: str | None, label_selector: str,
                             on_page: Callable[[list[dict[str, Any]]], None], page: int = 500) -> str:
        """Every matching Secret's metadata (no data crosses the wire), handed to ``on_page`` a page of
        ``page`` at a time (so a list of 100,000 is never held at once); returns the resourceVersion to
        watch from."""
        fn, args = ((self.core.list_namespaced_secret, (namespace,)) if namespace
                    else (self.core.list_secret_for_all_namespaces, ()))
        token: str | None = None
        while True:
            options: dict[str, Any] = {"label_selector": label_selector, "limit": page}
            if token:
                options["_continue"] = token
            resp = self.call(f"list Secrets in {namespace or 'all namespaces'}", fn, *args,
                             _headers={"Accept": METADATA_LIST}, _preload_content=False, **options)
            body = json.loads(resp.data)
            on_page(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return str(body["metadata"]["resourceVersion"])

    def watch_secret_metadata(self, namespace: str | None, label_selector: str, resource_version: str,
                              timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """Watch events (``type``, ``object``: metadata only) from ``resource_version`` until the
        server ends the watch; an ``ERROR`` event (e.g. 410 Gone) is yielded as the server sent it."""
        fn, args = ((self.core.list_namespaced_secret, (namespace,)) if namespace
                    else (self.core.list_secret_for_all_namespaces, ()))
        resp = self.call(f"watch Secrets in {namespace or 'all namespaces'}", fn, *args, watch=True,
                         label_selector=label_selector, resource_version=resource_version,
                         timeout_seconds=timeout_seconds, allow_watch_bookmarks=True,
                         _headers={"Accept": METADATA_ITEM}, _preload_content=False,
                         _request_timeout=timeout_seconds + 30)
        buffer = b""
        try:
            for chunk in resp.stream(65536, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except (HTTPError, OSError) as exc:
            raise KubernetesError(f"the watch of Secrets in {namespace or 'all namespaces'} broke "
                                  f"({type(exc).__name__})") from None
        finally:
            resp.release_conn()

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self.call(f"record an Event in {namespace}", self.core.create_namespaced_event, namespace, dict(event),
                  _preload_content=False)

    # -- Leases --------------------------------------------------------------------------------------
    def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        api = k8s.CoordinationV1Api(self.api_client)
        resp = self.call(f"read Lease {namespace}/{name}", api.read_namespaced_lease, name, namespace,
                         _preload_content=False)
        return dict(json.loads(resp.data))

    def create_lease(self, namespace: str, lease: Mapping[str, Any]) -> None:
        api = k8s.CoordinationV1Api(self.api_client)
        self.call(f"create Lease {namespace}/{lease['metadata']['name']}", api.create_namespaced_lease, namespace,
                  dict(lease), _preload_content=False)

    def replace_lease(self, namespace: str, lease: Mapping[str, Any]) -> None:
        """Replace it; the ``resourceVersion`` in ``lease`` makes this conditional (409 if it changed)."""
        api = k8s.CoordinationV1Api(self.api_client)
        name = lease["metadata"]["name"]
        self.call(f"update Lease {namespace}/{name}", api.replace_namespaced_lease, name, namespace, dict(lease),
                  _preload_content=False)

    # -- pods --------------------------------------------------------------------------------------
    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        resp = self.call(f"read pod {namespace}/{name}", self.core.read_namespaced_pod, name, namespace,
                         _preload_content=False)
        return dict(json.loads(resp.data))

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
