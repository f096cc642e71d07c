"""Finding, starting and reaching a user's own Spark Connect server on Kubernetes (its objects:
:mod:`submit_steps.connectpod`).

A server is found again by its driver pod's user label, but a label is anyone's to write: a pod is taken as the
user's only if it mounts a token Secret whose owner label is the user, which the admission policy of
``spark-secrets rbac common`` binds to whoever created the Secret, and which the pod policy of the shared layouts
lets no one else's pod mount. Its bearer token is read back from the Secret its pod names, if the pod owns that
Secret; the port is the one its (unchangeable) spec declares. A server started from this machine is known by its
pod's uid without either reading (:mod:`spark_secrets.connect.records`): the shared ``controller`` layout lets
users read no Secrets. There a Service is anyone's to replace, so the address is the pod's own IP.
"""

from __future__ import annotations

import base64
import os
import secrets as random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spark_secrets.errors import (ConfigError, KubernetesError, KubernetesForbidden, KubernetesNotFound,
                                  SparkSecretsError)
from spark_secrets.kube.client import KubeClient, ObjectRef
from spark_secrets.renew.ownership import PodInfo
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_OWNER, parse_rfc3339
from spark_secrets.connect.names import (ANNOTATION_IDLE_TIMEOUT, ANNOTATION_LAST_ACTIVITY, ANNOTATION_TOKEN_SECRET,
                                         LABEL_CONNECT_USER)
from spark_secrets.connect.address import connect_port, server_address, service_name
from spark_secrets.connect.records import ServerRecords
from submit_steps.connectpod import TOKEN_KEY, build, check, label_value
from submit_steps.secret import label_value as owner_label
from submit_steps.settings import DEPLOY_MODE, Settings
from submit_steps.settings import catalog as c
from submit_steps.submission import Progress, Submission, stderr_progress

_LIVE = ("Pending", "Running")
#: A server idle for its timeout less this long is not reused (it may stop before the notebook's first call).
REUSE_MARGIN_S = 60
#: Layouts whose namespace users share: the pod policy guards the server's Secrets, but Services are anyone's.
SHARED_LAYOUTS = ("controller",)


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


def is_users(kube: KubeClient, pod: Mapping[str, Any], user: str) -> bool:
    """Whether ``pod`` mounts a token Secret owned by ``user`` (see the module's note)."""
    namespace = pod["metadata"]["namespace"]
    for name in sorted(PodInfo.from_object(pod).secrets):  # the renew service's own reading of a pod's mounts
        try:
            labels = (kube.read_secret(namespace, name).get("metadata") or {}).get("labels") or {}
        except KubernetesNotFound:
            continue
        if labels.get(LABEL_KIND) == KIND_HADOOP_TOKENS and labels.get(LABEL_OWNER) == owner_label(user):
            return True
    return False


def owned_by(obj: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` owns ``obj`` (its uid, which no one chooses, among ``obj``'s owner references)."""
    uid = pod["metadata"].get("uid")
    return bool(uid) and any(ref.get("uid") == uid for ref in (obj.get("metadata") or {}).get("ownerReferences") or [])


def live_servers(kube: KubeClient, namespace: str, user: str) -> list[dict[str, Any]]:
    """Driver pods labelled as ``user``'s Connect server that run or start, newest first (candidates: see
    :func:`is_users`)."""
    pods = kube.list_pods(namespace, f"{LABEL_CONNECT_USER}={label_value(user)},spark-role=driver")
    live = [p for p in pods if (p.get("status") or {}).get("phase") in _LIVE and not p["metadata"].get("deletionTimestamp")]
    return sorted(live, key=lambda p: str(p["metadata"].get("creationTimestamp")), reverse=True)


def stops_soon(pod: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether the server says it has been idle for nearly its timeout (it would stop under a new session)."""
    notes = pod["metadata"].get("annotations") or {}
    try:
        last = parse_rfc3339(notes[ANNOTATION_LAST_ACTIVITY]) / 1000
        timeout = float(notes[ANNOTATION_IDLE_TIMEOUT])
    except (KeyError, ValueError):
        return False
    return (now or time.time()) - last > max(timeout - REUSE_MARGIN_S, timeout / 2)


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
                 progress: Progress = stderr_progress, kubeconfig: str | None = None,
                 records: ServerRecords | None = None) -> None:
        self.conf = {**conf, DEPLOY_MODE: "cluster"}
        settings = Settings(self.conf)  # every setting checked before anything is contacted
        self.idle_s = settings.value(c.CONNECT_IDLE_TIMEOUT).total_seconds()
        self.port = settings.value(c.CONNECT_PORT)
        self.how = settings.value(c.CONNECT_ADDRESS)
        if settings.layout == "precreated":
            raise ConfigError("spark.secrets.layout=precreated gives a Connect server no Secret for its bearer token "
                              "(users there may create none)",
                              "start Connect servers in a namespace-per-user or controller layout namespace")
        if settings.layout in SHARED_LAYOUTS:
            if self.how == "service":
                raise ConfigError(f"spark.secrets.connect.address=service in the shared {settings.layout} layout: "
                                  "another user may replace the Service and receive your bearer token",
                                  "use spark.secrets.connect.address=pod or auto (both the pod's own IP there)")
            self.how = "pod"
        self.records = records or ServerRecords()
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
        """The user's newest live server in the namespace that is theirs and answers, if any."""
        pods = live_servers(self.kube, self.namespace, user)
        self.records.forget_others(self.namespace, (str(p["metadata"].get("uid")) for p in pods))
        for pod in pods:
            where = f"driver pod {self.namespace}/{pod['metadata']['name']}"
            token = self.records.token(self.namespace, str(pod["metadata"].get("uid")), pod["metadata"]["name"])
            try:
                token = token or self._token_of(pod, user, where)
            except KubernetesForbidden:
                self.progress(f"not reusing {where}: this machine did not start it, and you may not read its Secrets "
                              "here to check that it is yours")
                continue
            if token is None:
                continue
            if stops_soon(pod):
                self.progress(f"not reusing {where}: it has been idle for nearly its timeout")
                continue
            server = self._wait(pod, user, token, connect_port(pod, self.port), started=False)
            if server is not None:
                return server
        return None

    def _token_of(self, pod: Mapping[str, Any], user: str, where: str) -> str | None:
        """The bearer token of a server found by its label, once the API shows the pod is the user's and owns the
        Secret its annotation names; else None (said why)."""
        if not is_users(self.kube, pod, user):
            self.progress(f"ignoring {where}: it is labelled {user}'s Connect server but mounts no token Secret "
                          f"of {user}'s")
            return None
        try:
            secret = self.kube.read_secret(self.namespace, (pod["metadata"].get("annotations") or {}).get(
                ANNOTATION_TOKEN_SECRET, ""))
        except KubernetesNotFound:
            return None
        if not owned_by(secret, pod):
            self.progress(f"ignoring {where}: the Secret its annotation names is not its own")
            return None
        return base64.b64decode((secret.get("data") or {}).get(TOKEN_KEY, "")).decode()

    def _service_ok(self, pod: Mapping[str, Any]) -> bool:
        """Whether the Service named for the pod is the pod's own (needed only when the address may be it)."""
        if self.how == "pod":
            return False
        name = service_name(pod)
        try:
            service = self.kube.request(f"read Service {self.namespace}/{name}", "GET",
                                        f"/api/v1/namespaces/{self.namespace}/services/{name}")
        except SparkSecretsError:
            return False
        return owned_by(service, pod)

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
            token = base64.b64decode(objects.bearer["data"][TOKEN_KEY]).decode()
            self.records.save(pod.namespace, pod.uid, pod.name, token)
            owner = [{"apiVersion": "v1", "kind": "Pod", "name": pod.name, "uid": pod.uid}]
            for manifest in objects.owned():
                self.kube.create({**manifest, "metadata": {**manifest["metadata"], "ownerReferences": owner}})
            # A pre-created Secret is only filled (never owned); the Secrets the steps made go with the pod.
            if self.submission.created and self.submission.adopt() is None and not self.submission.handed_over:
                raise KubernetesError(f"driver pod {pod.name} does not carry its token Secret's label",
                                      "report this: the pod was built without it")
            server = self._wait(self.kube.read_pod(pod.namespace, pod.name), user, token, self.port, started=True)
            if server is None:
                raise SparkSecretsError(f"Connect server {objects.name} did not accept connections in "
                                        f"{self.start_s:g} s", self._why(pod))
            return server
        except BaseException:
            if pod is not None:
                try:
                    self.kube.delete_pod(pod.namespace, pod.name)  # what it owns goes with it
                except SparkSecretsError as exc:
                    self.progress(f"could not delete driver pod {pod.namespace}/{pod.name}: {exc}")
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
        # A server still starting (another notebook's connect() made it) gets the time a new one would.
        starting = started or (pod.get("status") or {}).get("phase") == "Pending"
        deadline = time.monotonic() + (self.start_s if starting else 10)
        shown = ""
        service_ok = False
        while True:
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if phase not in _LIVE:
                if started:
                    raise SparkSecretsError(f"Connect server pod {meta['namespace']}/{meta['name']} ended {phase}",
                                            self._why(ObjectRef("Pod", meta["name"], meta["namespace"], "", "")))
                return None
            service_ok = service_ok or (phase == "Running" and self._service_ok(pod))
            host, _, answers = server_address(pod, self.how, port, service_ok)
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
