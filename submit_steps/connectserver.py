"""Finding, starting and reaching a user's own Spark Connect server on Kubernetes (its objects:
:mod:`submit_steps.connectpod`).

A server is found again by its driver pod's user label, but a label is anyone's to write: a pod is taken as the
user's only if it mounts a token Secret whose owner label is the user, which the admission policy of
``spark-secrets rbac common`` binds to whoever created the Secret, and which the pod policy of the shared layouts
lets no one else's pod mount. Its bearer token is read back from the Secret its pod names.
"""

from __future__ import annotations

import base64
import os
import secrets as random
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_secrets.errors import KubernetesError, KubernetesNotFound, SparkSecretsError
from spark_secrets.kube.client import KubeClient, ObjectRef
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_OWNER
from spark_secrets.connect.names import ANNOTATION_PORT, ANNOTATION_TOKEN_SECRET, LABEL_CONNECT_USER
from submit_steps.connectpod import TOKEN_KEY, build, check, label_value
from submit_steps.settings import DEPLOY_MODE, Settings
from submit_steps.settings import catalog as c
from submit_steps.submission import Progress, Submission, stderr_progress

_LIVE = ("Pending", "Running")


@dataclass(frozen=True)
class ConnectServer:
    """A user's running server: ``url`` (``sc://host:port``, never with the token), its driver pod, whether this
    call started it. ``token`` is the bearer token: ``repr`` leaves it out."""

    url: str
    namespace: str
    pod: str
    user: str
    started: bool
    token: str = field(repr=False)

    def session(self) -> Any:
        """A ``SparkSession`` of pyspark's Connect client on this server (no JVM here), the token sent as the
        ``authorization`` metadata of every call."""
        from pyspark.sql.connect.session import SparkSession

        from spark_secrets.connect.channel import BearerChannelBuilder

        return SparkSession.builder.channelBuilder(BearerChannelBuilder(self.url, self.token)).getOrCreate()


def _secret_volumes(pod: Mapping[str, Any]) -> list[str]:
    return [str(v["secret"]["secretName"]) for v in (pod.get("spec") or {}).get("volumes") or []
            if (v.get("secret") or {}).get("secretName")]


def is_users(kube: KubeClient, pod: Mapping[str, Any], user: str) -> bool:
    """Whether ``pod`` mounts a token Secret owned by ``user`` (see the module's note)."""
    namespace = pod["metadata"]["namespace"]
    for name in _secret_volumes(pod):
        try:
            labels = (kube.read_secret(namespace, name).get("metadata") or {}).get("labels") or {}
        except KubernetesNotFound:
            continue
        if labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS and labels.get(LABEL_OWNER) == user:
            return True
    return False


def _address(pod: Mapping[str, Any], how: str) -> str | None:
    """The host the notebook reaches the server at, or None while it has none."""
    meta, status = pod["metadata"], pod.get("status") or {}
    service = f"{meta['name'].removesuffix('-driver')}-driver-svc.{meta['namespace']}.svc"
    if how == "service":
        return service
    if how == "auto":
        try:
            socket.getaddrinfo(service, None)
            return service
        except OSError:
            pass
    return status.get("podIP")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def live_servers(kube: KubeClient, namespace: str, user: str) -> list[dict[str, Any]]:
    """Driver pods labelled as ``user``'s Connect server that run or start, newest first (candidates: see
    :func:`is_users`)."""
    pods = kube.list_pods(namespace, f"{LABEL_CONNECT_USER}={label_value(user)},spark-role=driver")
    live = [p for p in pods if (p.get("status") or {}).get("phase") in _LIVE and not p["metadata"].get("deletionTimestamp")]
    return sorted(live, key=lambda p: str(p["metadata"].get("creationTimestamp")), reverse=True)


def server_address(pod: Mapping[str, Any], how: str, default_port: int) -> tuple[str | None, int, bool]:
    """Where the notebook reaches the server of ``pod`` (host, port), and whether it accepts a connection now."""
    port = int((pod["metadata"].get("annotations") or {}).get(ANNOTATION_PORT) or default_port)
    host = _address(pod, how)
    return host, port, bool(host) and (pod.get("status") or {}).get("phase") == "Running" and _listening(str(host), port)


def hadoop_files() -> dict[str, str] | None:
    """The files of ``HADOOP_CONF_DIR`` here (Spark ships them to its pods in a ConfigMap), or None."""
    directory = os.environ.get("HADOOP_CONF_DIR")
    if not directory or not os.path.isdir(directory):
        return None
    files = {}
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if entry.is_file():
            try:
                with open(entry.path, encoding="utf-8") as f:
                    files[entry.name] = f.read()
            except (OSError, UnicodeDecodeError):
                continue  # Spark skips what it cannot read as text too
    return files or None


class ConnectServers:
    """A user's Connect servers in one namespace, reached through ``kube`` (the user's own credentials)."""

    def __init__(self, conf: Mapping[str, str], kube: KubeClient | None = None,
                 progress: Progress = stderr_progress, kubeconfig: str | None = None) -> None:
        self.conf = {**conf, DEPLOY_MODE: "cluster"}
        settings = Settings(self.conf)  # every setting checked before anything is contacted
        self.idle_s = settings.value(c.CONNECT_IDLE_TIMEOUT).total_seconds()
        self.port = settings.value(c.CONNECT_PORT)
        self.how = settings.value(c.CONNECT_ADDRESS)
        self.start_s = settings.value(c.CONNECT_START_TIMEOUT).total_seconds()
        self.namespace = settings.namespace
        check(self.conf, starting=False)
        self.kube = kube or KubeClient.from_config(kubeconfig)
        self.progress = progress
        self.submission = Submission(self.conf, self.kube, progress=progress, deploy_mode="cluster")

    def user(self) -> str:
        """Whose server: ``spark.secrets.layout.user``, else the short name of the Kerberos principal here."""
        from spark_secrets.login.kerberos import current_ticket_cache

        return self.submission.settings.layout_user or current_ticket_cache().short_name

    def find(self, user: str) -> ConnectServer | None:
        """The user's newest live server in the namespace, if any answers."""
        for pod in live_servers(self.kube, self.namespace, user):
            if not is_users(self.kube, pod, user):
                self.progress(f"ignoring driver pod {self.namespace}/{pod['metadata']['name']}: it is labelled "
                              f"{user}'s Connect server but mounts no token Secret of {user}'s")
                continue
            annotations = pod["metadata"].get("annotations") or {}
            try:
                secret = self.kube.read_secret(self.namespace, annotations.get(ANNOTATION_TOKEN_SECRET, ""))
            except KubernetesNotFound:
                continue
            token = base64.b64decode((secret.get("data") or {}).get(TOKEN_KEY, "")).decode()
            port = int(annotations.get(ANNOTATION_PORT) or self.port)
            server = self._wait(pod, user, token, port, started=False)
            if server is not None:
                return server
        return None

    def start(self, user: str) -> ConnectServer:
        """A new server: the steps' token Secret, the driver pod, then its ConfigMap, bearer Secret and Service,
        owned by the pod (deleted with it; kubelet starts the pod once what it mounts exists). On failure nothing
        is left behind."""
        check(self.conf)
        spec = self.submission.prepare()  # the TGT, the tokens, the token Secret
        pod: ObjectRef | None = None
        try:
            objects = build(spec, user, random.token_urlsafe(32), self.idle_s, self.port, hadoop_files())
            self.progress(f"starting Connect server {objects.name} in namespace {objects.namespace} "
                          f"(ends after {self.idle_s:g} s idle)")
            pod = self.kube.create(objects.pod)
            owner = [{"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}]
            for manifest in objects.owned():
                self.kube.create({**manifest, "metadata": {**manifest["metadata"], "ownerReferences": owner}})
            if self.submission.adopt() is None and not self.submission.handed_over:
                raise KubernetesError(f"driver pod {pod.name} does not carry its token Secret's label",
                                      "report this: the pod was built without it")
            server = self._wait(self.kube.read_pod(pod.namespace, pod.name), user,
                                base64.b64decode(objects.bearer["data"][TOKEN_KEY]).decode(), self.port, started=True)
            if server is None:
                raise SparkSecretsError(f"Connect server {objects.name} did not accept connections in "
                                        f"{self.start_s:g} s", self._why(pod))
            return server
        except BaseException:
            if pod is not None:
                self.kube.delete_pod(pod.namespace, pod.name)  # what it owns goes with it
            self.submission.cleanup()
            raise

    def _why(self, pod: ObjectRef) -> str:
        try:
            tail = self.kube.read_pod_log(pod.namespace, pod.name, tail_lines=5).strip().splitlines()
        except SparkSecretsError as exc:
            return f"its log cannot be read ({exc.problem})"
        return "its driver's log ends: " + (" | ".join(tail)[-600:] or "(empty)")

    def _wait(self, pod: Mapping[str, Any], user: str, token: str, port: int, *, started: bool) -> ConnectServer | None:
        """Once the server's port accepts connections, the server; None if its pod ends or time runs out."""
        meta = pod["metadata"]
        deadline = time.monotonic() + (self.start_s if started else 10)
        shown = ""
        while True:
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if phase not in _LIVE:
                if started:
                    raise SparkSecretsError(f"Connect server pod {meta['namespace']}/{meta['name']} ended {phase}",
                                            self._why(ObjectRef("Pod", meta["name"], meta["namespace"], "", "")))
                return None
            host, _, answers = server_address(pod, self.how, port)
            if host and answers:
                url = f"sc://{host}:{port}"
                self.progress(f"{'started' if started else 'reusing'} your Connect server at {url} "
                              f"(driver pod {meta['namespace']}/{meta['name']})")
                return ConnectServer(url, meta["namespace"], meta["name"], user, started, token)
            if started and phase != shown:
                self.progress(f"waiting for driver pod {meta['name']} ({phase})")
                shown = phase
            if time.monotonic() > deadline:
                return None
            time.sleep(1)
            pod = self.kube.read_pod(meta["namespace"], meta["name"])


def connect_server(conf: Mapping[str, str], kube: KubeClient | None = None,
                   progress: Progress = stderr_progress) -> ConnectServer:
    """The caller's own Connect server in ``spark.kubernetes.namespace``: a live one reused, else a new one."""
    servers = ConnectServers(conf, kube, progress)
    user = servers.user()
    return servers.find(user) or servers.start(user)
