"""The Kubernetes API calls this project makes, with one-line errors and no secret bytes in them.

The calls made here (access reviews, Secrets and their watches, pods, Events, Leases) are plain REST, configured
by :mod:`spark_secrets.kube.config`, so that no submission and no start of the renew service imports the
``kubernetes`` package (a third of a second). They go over :mod:`spark_secrets.transport` (HTTP/1.1 on sockets), so a
submission does not import requests either; the streaming watches, and calls through a kubeconfig's ``proxy-url``,
go over ``requests``. The renew service's RBAC grants use that package's API classes through
:attr:`KubeClient.api_client`, made on first use; :meth:`KubeClient.call` maps their errors the same way.
Response bodies (which would carry Secret data) are never logged: the ``kubernetes`` client's debug
log of them is filtered out, and ``requests`` logs none.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from spark_secrets.errors import KubernetesError
from spark_secrets.kube._extra import load
from spark_secrets.kube.config import ClusterAccess, KubeconfigError, load_in_cluster, load_kubeconfig
from spark_secrets.kube.metadata import decode_metadata_event
from spark_secrets.kube.status import status_error, status_message
from spark_secrets.transport import Answer, Transport

if TYPE_CHECKING:
    import requests

#: Connection attempts after a first one fails, before a request counts as failed (urllib3's default, which
#: the ``kubernetes`` client uses).
RETRIES = 3

__all__ = ["KubeClient", "ObjectRef", "OnRequest", "status_error"]


class _NoBodies(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "body" not in str(record.msg).lower()


logging.getLogger("kubernetes.client.rest").addFilter(_NoBodies())

#: Ask for metadata only (``PartialObjectMetadata``): labels and annotations, no data.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ITEM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
#: A dict body sent with PATCH is a strategic merge patch, as the ``kubernetes`` client sends it.
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
#: The URL segment of each core kind this client creates or gives an owner.
_PLURALS = {"Secret": "secrets", "Pod": "pods", "ConfigMap": "configmaps", "Service": "services"}
#: Told of every request a client makes (lists and watches of Secret metadata aside): True for a write
#: (any method but GET). The renew service's metrics count API calls here, not at each call site.
OnRequest = Callable[[bool], None]


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    name: str
    namespace: str
    uid: str
    resource_version: str = ""


class KubeClient:
    """A user's (or service's) view of one API server."""

    def __init__(self, access: ClusterAccess, namespace: str | None = None) -> None:
        self.access = access
        self.namespace = namespace or "default"
        self._local = threading.local()  # one requests.Session per thread, for watches and proxies
        self._transport = Transport(retries=RETRIES)
        self._lock = threading.Lock()
        self._api_client: Any = None
        self._core: Any = None
        self.on_request: OnRequest | None = None

    def counting(self, on_request: OnRequest) -> KubeClient:
        """A twin of this client (same server, credentials and connections) that reports each request to
        ``on_request``: the renew service counts its actions' calls, not its Lease's or its watches'."""
        twin = copy.copy(self)
        twin.on_request = on_request
        return twin

    def _count(self, write: bool) -> None:
        if self.on_request is not None:
            self.on_request(write)

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """From ``kubeconfig`` (default ``KUBECONFIG`` or ``~/.kube/config``), else in-cluster."""
        try:
            access = load_kubeconfig(kubeconfig, context)
        except (KubeconfigError, OSError, UnicodeDecodeError) as exc:
            if kubeconfig is None:
                try:
                    return cls(load_in_cluster(), None)
                except (KubeconfigError, OSError):
                    pass
            raise KubernetesError(f"no usable Kubernetes configuration ({exc})",
                                  "set KUBECONFIG or run inside a pod with a service account") from None
        return cls(access, access.namespace)

    def __repr__(self) -> str:
        return f"KubeClient({self.access.server}, namespace={self.namespace})"

    # -- the kubernetes package, for the renew service ------------------------------------------------
    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the same server and credentials, made on first use."""
        with self._lock:
            if self._api_client is None:
                k8s = load("kubernetes.client", "the kubernetes client (the renew service's controller layout)")
                k8s_config = load("kubernetes.config", "the kubernetes client (the renew service's controller layout)")

                try:
                    if self.access.in_cluster:
                        k8s_config.load_incluster_config()
                        self._api_client = k8s.ApiClient()
                    else:
                        self._api_client = k8s_config.new_client_from_config(config_file=self.access.kubeconfig,
                                                                             context=self.access.context)
                except (k8s_config.ConfigException, OSError, TypeError) as exc:
                    raise KubernetesError(f"no usable Kubernetes configuration ({exc})",
                                          "set KUBECONFIG or run inside a pod with a service account") from None
            return self._api_client

    @property
    def core(self) -> Any:
        """``kubernetes.client.CoreV1Api`` on :attr:`api_client`."""
        if self._core is None:
            self._core = load("kubernetes.client", "the kubernetes client").CoreV1Api(self.api_client)
        return self._core

    # -- errors ----------------------------------------------------------------------------------
    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, a ``kubernetes`` client call, with its errors made one-line."""
        from urllib3.exceptions import HTTPError

        ApiException = load("kubernetes.client.exceptions", "a kubernetes client call").ApiException

        self._count(True)  # the renew service's grants: creates and deletes
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise status_error(what, exc.status, status_message(exc.body, exc.reason)) from None
        except (HTTPError, OSError) as exc:
            raise self._unreachable(what, exc) from None

    def _unreachable(self, what: str, exc: BaseException) -> KubernetesError:
        return KubernetesError(f"cannot {what}: API server {self.access.server} unreachable ({type(exc).__name__})",
                               "check the cluster address in your kubeconfig")

    # -- REST ------------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            from spark_secrets.kube.session import new_session

            session = self._local.session = new_session(self.access.tls_server_name)
        return session

    def _authorize(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        header = self.access.authorization()
        if header:
            request.headers["Authorization"] = header
        return request

    def request(self, what: str, method: str, path: str, *, params: Mapping[str, str | int] | None = None,
                body: Any = None, content_type: str = "application/json",
                accept: str = "application/json") -> dict[str, Any]:
        """One API request; returns the parsed JSON answer. Errors as :meth:`call` maps them."""
        resp = self._send(what, method, path, params=params, body=body, content_type=content_type, accept=accept)
        return dict(json.loads(resp.content)) if resp.content else {}

    def _send(self, what: str, method: str, path: str, *, params: Mapping[str, str | int] | None,
              body: Any, content_type: str, accept: str, counted: bool = True) -> Answer:
        """One API request; returns the successful answer (a pod's log is text, not JSON)."""
        if counted:
            self._count(method != "GET")
        headers = {"Accept": accept, "User-Agent": "spark-secrets"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        url = self.access.server + path + (f"?{urlencode(params, doseq=True)}" if params else "")
        try:
            if self.access.proxy:
                resp = self._send_by_proxy(method, url, headers, data)
            else:
                authorization = self.access.authorization()
                if authorization:
                    headers["Authorization"] = authorization
                # No timeout, as the kubernetes client has none: a paused API server is waited for.
                resp = self._transport.send(method, url, headers, timeout=None, verify=self.access.verify, body=data,
                                            cert=self.access.cert, server_name=self.access.tls_server_name)
        except KubeconfigError as exc:
            raise KubernetesError(f"cannot {what}: {exc}", "check your Kubernetes credentials") from None
        except OSError as exc:  # ssl.SSLError and a broken answer among them
            raise self._unreachable(what, exc) from None
        if not resp.ok:
            raise status_error(what, resp.status_code, status_message(resp.content, resp.reason))
        return resp

    def _send_by_proxy(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> Answer:
        from spark_secrets.kube.session import send_by_proxy

        return send_by_proxy(self._session(), self.access, method, url, headers, data, self._authorize)

    # -- access review ---------------------------------------------------------------------------
    def can_i(self, verb: str, resource: str, namespace: str, group: str = "", name: str | None = None) -> bool:
        """SelfSubjectAccessReview: may the current identity do ``verb`` on ``resource`` (``name``) in ``namespace``?"""
        attributes = {"verb": verb, "resource": resource, "namespace": namespace, "group": group, "name": name}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v is not None}}}
        result = self.request(f"review access to {resource} in {namespace}", "POST",
                              "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
        return bool((result.get("status") or {}).get("allowed"))

    def whoami(self) -> tuple[str, tuple[str, ...]]:
        """SelfSubjectReview (Kubernetes 1.28+): this client's user name and groups, as the API server
        authenticated it."""
        review = self.request("review who this client is", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                              body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        info = (review.get("status") or {}).get("userInfo") or {}
        return str(info.get("username", "")), tuple(str(g) for g in info.get("groups") or ())

    def may(self, user: str, groups: tuple[str, ...], verb: str, resource: str, namespace: str,
            name: str | None = None) -> bool:
        """LocalSubjectAccessReview: may ``user`` (in ``groups``) do ``verb`` on ``resource`` in
        ``namespace``? Asking needs ``create`` on localsubjectaccessreviews there (the ``admin`` role)."""
        attributes = {"verb": verb, "resource": resource, "namespace": namespace, "name": name}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                  "metadata": {"namespace": namespace},
                  "spec": {"user": user, "groups": list(groups),
                           "resourceAttributes": {k: v for k, v in attributes.items() if v is not None}}}
        result = self.request(f"review the access of {user} to {resource} in {namespace}", "POST",
                              f"/apis/authorization.k8s.io/v1/namespaces/{quote(namespace, safe='')}"
                              "/localsubjectaccessreviews", body=review)
        return bool((result.get("status") or {}).get("allowed"))

    # -- Secrets -----------------------------------------------------------------------------------
    @staticmethod
    def _secret_path(namespace: str, name: str | None = None) -> str:
        base = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
        return base if name is None else f"{base}/{quote(name, safe='')}"

    def create_secret(self, manifest: Mapping[str, Any]) -> ObjectRef:
        return self.create({"kind": "Secret", **manifest})

    def create(self, manifest: Mapping[str, Any]) -> ObjectRef:
        """Create a namespaced core object (a Secret, Pod, ConfigMap or Service)."""
        meta, kind = manifest["metadata"], str(manifest["kind"])
        path = f"/api/v1/namespaces/{quote(meta['namespace'], safe='')}/{_PLURALS[kind]}"
        body = self.request(f"create {kind} {meta['namespace']}/{meta['name']}", "POST", path, body=dict(manifest))["metadata"]
        return ObjectRef(kind, body["name"], body["namespace"], body["uid"], body["resourceVersion"])

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.request(f"read Secret {namespace}/{name}", "GET", self._secret_path(namespace, name))

    def delete_secret(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete it; with ``uid``, only that incarnation (a same-named newer Secret is left alone)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        self.request(f"delete Secret {namespace}/{name}", "DELETE", self._secret_path(namespace, name), body=body)

    def patch_secret(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A strategic merge patch (``resourceVersion`` in its metadata makes it conditional); returns the
        Secret as it now is."""
        return self.request(f"update Secret {namespace}/{name}", "PATCH", self._secret_path(namespace, name),
                            body=dict(patch), content_type=STRATEGIC_MERGE_PATCH)

    def service_account_token(self, namespace: str, name: str, seconds: int = 600,
                              audiences: Sequence[str] = ()) -> str:
        """A short-lived token of ``system:serviceaccount:<namespace>:<name>`` (TokenRequest), to act as
        that account elsewhere (OpenBao/Vault's Kubernetes auth); never stored."""
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        answer = self.request(f"request a token of service account {namespace}/{name}", "POST",
                              f"/api/v1/namespaces/{quote(namespace, safe='')}/serviceaccounts/"
                              f"{quote(name, safe='')}/token", body=body)
        return str((answer.get("status") or {}).get("token") or "")

    def set_owner(self, owned: ObjectRef, owner: ObjectRef) -> None:
        """Make ``owner`` (a pod) own ``owned`` (a Secret, ConfigMap or Service), so the garbage collector deletes
        it with the pod."""
        patch = {"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": owner.kind, "name": owner.name, "uid": owner.uid}]}}
        path = f"/api/v1/namespaces/{quote(owned.namespace, safe='')}/{_PLURALS[owned.kind]}/{quote(owned.name, safe='')}"
        self.request(f"set the owner of {owned.kind} {owned.namespace}/{owned.name}", "PATCH", path, body=patch,
                     content_type=STRATEGIC_MERGE_PATCH)

    def list_secret_metadata(self, namespace: str | None, label_selector: str,
                             on_page: Callable[[list[dict[str, Any]]], None], page: int = 500) -> str:
        """Every matching Secret's metadata (no data crosses the wire), handed to ``on_page`` a page of
        ``page`` at a time (so a list of 100,000 is never held at once); returns the resourceVersion to
        watch from."""
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets" if namespace else "/api/v1/secrets"
        params: dict[str, str | int] = {"labelSelector": label_selector, "limit": page}
        while True:
            resp = self._send(f"list Secrets in {namespace or 'all namespaces'}", "GET", path, params=params, body=None,
                              content_type="application/json", accept=METADATA_LIST, counted=False)
            body = dict(json.loads(resp.content)) if resp.content else {}
            on_page(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return str(body["metadata"]["resourceVersion"])
            params["continue"] = token

    def watch_secret_metadata(self, namespace: str | None, label_selector: str, resource_version: str | None,
                              timeout_seconds: int) -> Iterator[dict[str, Any]]:
        """Watch events (``type``, ``object``: metadata only) until the server ends the watch after
        ``timeout_seconds``; an ``ERROR`` event (e.g. 410 Gone) is yielded as the server sent it.

        From ``resource_version``; or, when it is ``None``, a *streaming list* (``sendInitialEvents``):
        every matching Secret first as an ``ADDED`` event served from the API server's watch cache, then
        a ``BOOKMARK`` annotated ``k8s.io/initial-events-end``, then changes, all on one connection. Without
        ``managedFields`` (:mod:`.metadata`). A server without streaming lists answers :class:`KubernetesInvalid`."""
        where = f"Secrets in {namespace or 'all namespaces'}"
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets" if namespace else "/api/v1/secrets"
        params: dict[str, str | int] = {"watch": "true", "labelSelector": label_selector,
                                        "allowWatchBookmarks": "true", "timeoutSeconds": timeout_seconds}
        if resource_version is None:
            params.update(sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
        else:
            params["resourceVersion"] = resource_version
        from spark_secrets.kube.session import stream_events

        return stream_events(self._session(), self.access, self.access.server + path, params, METADATA_ITEM,
                             timeout_seconds, self._authorize, where, decode_metadata_event)

    def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self.request(f"record an Event in {namespace}", "POST", f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
                     body=dict(event))

    # -- Leases --------------------------------------------------------------------------------------
    @staticmethod
    def _lease_path(namespace: str, name: str | None = None) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases"
        return base if name is None else f"{base}/{quote(name, safe='')}"

    def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        return self.request(f"read Lease {namespace}/{name}", "GET", self._lease_path(namespace, name))

    def create_lease(self, namespace: str, lease: Mapping[str, Any]) -> None:
        self.request(f"create Lease {namespace}/{lease['metadata']['name']}", "POST", self._lease_path(namespace),
                     body=dict(lease))

    def replace_lease(self, namespace: str, lease: Mapping[str, Any]) -> None:
        """Replace it; the ``resourceVersion`` in ``lease`` makes this conditional (409 if it changed)."""
        name = lease["metadata"]["name"]
        self.request(f"update Lease {namespace}/{name}", "PUT", self._lease_path(namespace, name), body=dict(lease))

    # -- pods --------------------------------------------------------------------------------------
    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.request(f"read pod {namespace}/{name}", "GET",
                            f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}")

    def delete_pod(self, namespace: str, name: str) -> None:
        self.request(f"delete pod {namespace}/{name}", "DELETE",
                     f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}")

    def list_pods(self, namespace: str | None, label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every pod in ``namespace`` (None: all namespaces), or those ``label_selector`` matches, as plain dicts."""
        params = {"labelSelector": label_selector} if label_selector else None
        if namespace:
            answer = self.request(f"list pods in {namespace}", "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/pods",
                                  params=params)
        else:
            answer = self.request("list pods", "GET", "/api/v1/pods", params=params)
        return list(answer.get("items") or [])

    def read_pod_log(self, namespace: str, name: str, container: str | None = None, tail_lines: int = 40) -> str:
        """The last ``tail_lines`` lines of a container's log (``container`` None: the pod's only or
        default one), e.g. to show why a driver failed; undecodable bytes are replaced."""
        params: dict[str, str | int] = {"tailLines": tail_lines}
        if container:
            params["container"] = container
        resp = self._send(f"read the log of pod {namespace}/{name}", "GET",
                          f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}/log",
                          params=params, body=None, content_type="application/json", accept="text/plain, */*")
        return resp.content.decode("utf-8", errors="replace")

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The Events about one object."""
        answer = self.request(f"list Events in {namespace}", "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/events",
                              params={"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"})
        return list(answer.get("items") or [])

    def find_pods(self, namespace: str, label_selector: str) -> list[ObjectRef]:
        answer = self.request(f"list pods in {namespace}", "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/pods",
                              params={"labelSelector": label_selector})
        return [ObjectRef("Pod", p["metadata"]["name"], namespace, p["metadata"]["uid"],
                          p["metadata"].get("resourceVersion", "")) for p in answer.get("items") or []]
