"""A real Kubernetes control plane: etcd, kube-apiserver (RBAC) and kube-controller-manager.

Built from the Go module proxy by ``tests/testbed/install.sh``. Pods run only when a node joins
(:mod:`spark_secrets.testbed.node`); otherwise they stay Pending and tests read their specs. The
controller manager runs the garbage collector (ownerReferences), namespace deletion, default service
accounts, and what a node needs (node lifecycle, endpoints, root CA publisher, pod GC).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.paths import kube_binary

SERVICE_CIDR = "10.96.0.0/24"
ADMIN = "admin"


@dataclass(frozen=True)
class KubeUser:
    """A static-token identity of the API server (``--token-auth-file``)."""

    name: str
    token: str
    groups: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show the bearer token
        return f"KubeUser({self.name!r}, groups={self.groups!r})"


def resource_of(kind: str) -> str:
    """The REST resource of a kind: ``Secret`` → ``secrets``, ``ValidatingAdmissionPolicy`` → ``...policies``."""
    lower = kind.lower()
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def collection_path(manifest: Mapping[str, Any]) -> str:
    """The REST path of the collection ``manifest`` is created in (its namespace's, if it has one)."""
    api = manifest["apiVersion"]
    kind = resource_of(str(manifest["kind"]))
    ns = manifest.get("metadata", {}).get("namespace")
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    return f"{base}/namespaces/{ns}/{kind}" if ns else f"{base}/{kind}"


class KubeControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports."""

    def __init__(self, workdir: Path, users: dict[str, tuple[str, ...]] | None = None) -> None:
        self.dir = workdir
        # alice and bob share group team-a; carol (an API identity only, no Kerberos principal) is in team-b.
        wanted = {ADMIN: ("system:masters",), "alice": ("users", "team-a"), "bob": ("users", "team-a"),
                  "carol": ("users", "team-b"), "spark-renewer": ("spark-secrets:renewers",)}
        wanted.update(users or {})
        self.users = {name: KubeUser(name, secrets.token_hex(24), groups) for name, groups in wanted.items()}
        self.etcd_port = 0
        self.port = 0
        self.etcd = Daemon("etcd", [], workdir)
        self.apiserver = Daemon("kube-apiserver", [], workdir)
        self.controller_manager = Daemon("kube-controller-manager", [], workdir)

    def __repr__(self) -> str:
        return f"KubeControlPlane(server={self.server!r})"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The API server's self-signed serving certificate bundle (its CA included)."""
        return self.dir / "certs" / "apiserver.crt"

    # -- identities ------------------------------------------------------------------------------
    def kubeconfig(self, user: str, namespace: str = "default") -> Path:
        """A kubeconfig file for a static user of this control plane: one per user and namespace, as tests ask
        for them from several threads at once."""
        ident = self.users[user]
        name = f"kubeconfig-{user}" if namespace == "default" else f"kubeconfig-{user}-ns-{namespace}"
        return self._write_kubeconfig(name, user, ident.token, namespace)

    def service_account_token(self, namespace: str, name: str, seconds: int = 86_400) -> str:
        """A TokenRequest token of ``system:serviceaccount:<namespace>:<name>``."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds}}
        status = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return str(status["status"]["token"])

    def service_account_kubeconfig(self, namespace: str, name: str, seconds: int = 86_400) -> Path:
        """A kubeconfig for ``system:serviceaccount:<namespace>:<name>`` with a TokenRequest token."""
        token = self.service_account_token(namespace, name, seconds)
        return self._write_kubeconfig(f"kubeconfig-sa-{namespace}-{name}", f"sa-{namespace}-{name}", token, namespace)

    def _write_kubeconfig(self, filename: str, user: str, token: str, namespace: str) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {"server": self.server,
                                                          "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "testbed", "user": user, "namespace": namespace}}],
            "current-context": user,
        }
        path = self.dir / filename
        # Whole or not at all: another thread may be reading the same file (written to a private name first).
        partial = path.with_name(f".{filename}.{threading.get_ident()}")
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(config, indent=1))
        os.replace(partial, path)
        return path

    # -- raw admin requests (the test bed's own set-up; the project uses the kubernetes client) ----
    def request(self, method: str, path: str, body: Mapping[str, object] | None = None,
                user: str = ADMIN, raw: bool = False) -> Any:
        """One API request as ``user`` (its JSON, or with ``raw`` its text: a pod's log); raises TestbedError
        with the status on failure."""
        req = urllib.request.Request(self.server + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", f"Bearer {self.users[user].token}")
        req.add_header("Content-Type", "application/json")
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=15) as resp:  # noqa: S310 - loopback
                data = resp.read()
        except urllib.error.HTTPError as exc:
            raise TestbedError(f"{method} {path} as {user}: HTTP {exc.code}",
                               exc.read().decode(errors="replace")[:300]) from None
        if raw:
            return data.decode(errors="replace")
        return json.loads(data) if data else {}

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create one object as admin (``409 AlreadyExists`` is fine)."""
        try:
            return self.request("POST", collection_path(manifest), manifest)
        except TestbedError as exc:
            if "HTTP 409" in exc.problem:
                return {}
            raise

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        (self.dir / "certs").mkdir(parents=True, exist_ok=True)
        self.etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        self._start_etcd(peer_port)
        self._start_apiserver()
        for user in self.users:
            self.kubeconfig(user)
        self._start_controller_manager()

    def stop(self) -> None:
        for daemon in (self.controller_manager, self.apiserver, self.etcd):
            daemon.stop()

    def stop_apiserver(self) -> None:
        """Take the API server down (etcd keeps the state) to test outages."""
        self.apiserver.stop()

    def start_apiserver(self) -> None:
        self._start_apiserver()

    @property
    def running(self) -> bool:
        return self.etcd.running and self.apiserver.running and self.controller_manager.running

    def _start_etcd(self, peer_port: int) -> None:
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{peer_port}"
        self.etcd = Daemon("etcd", [
            str(kube_binary("etcd")), "--name=testbed", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}", "--unsafe-no-fsync", "--log-level=warn",
        ], self.dir)
        self.etcd.start()
        self.etcd.wait_until(lambda: _http_ok(f"{client}/health"), 60, "healthy")

    def _start_apiserver(self) -> None:
        tokens = self.dir / "tokens.csv"
        tokens.touch(mode=0o600)
        tokens.write_text("".join(f'{u.token},{u.name},{u.name},"{",".join(u.groups)}"\n'
                                  for u in self.users.values()))
        sa_key = self.dir / "certs" / "service-account.key"
        if not sa_key.exists():
            subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
        self.apiserver = Daemon("kube-apiserver", [
            str(kube_binary("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={self.dir / 'certs'}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC", f"--token-auth-file={tokens}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}", f"--service-account-signing-key-file={sa_key}",
            "--endpoint-reconciler-type=none", "--allow-privileged=true", "--v=1",
            # Webhooks behind a Service (the spark-operator's) are called at its endpoint's address: there is
            # no kube-proxy to route a ClusterIP.
            "--enable-aggregator-routing=true",
        ], self.dir)
        self.apiserver.start()
        self.apiserver.wait_until(self._ready, 120, "ready")

    def _start_controller_manager(self) -> None:
        self.controller_manager = Daemon("kube-controller-manager", [
            str(kube_binary("kube-controller-manager")),
            f"--kubeconfig={self.kubeconfig(ADMIN)}",
            # What a node needs besides: the not-ready taint removed (nodelifecycle), Services' endpoints
            # for cluster DNS, kube-root-ca.crt for service-account token volumes, finished pods collected.
            "--controllers=garbagecollector,namespace,serviceaccount,clusterrole-aggregation,nodelifecycle,"
            "endpoint,endpointslice,podgc,ttl,root-ca-cert-publisher,deployment,replicaset",
            f"--root-ca-file={self.ca_file}",
            "--leader-elect=false", "--secure-port=0", "--v=1",
        ], self.dir)
        self.controller_manager.start()
        # Ready once the service-account controller has made the default namespace's account.
        self.controller_manager.wait_until(
            lambda: bool(self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")), 90,
            "running its controllers")

    def _ready(self) -> bool:
        if not (port_open(self.port) and self.ca_file.exists()):
            return False
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(f"{self.server}/readyz")
        req.add_header("Authorization", f"Bearer {self.users[ADMIN].token}")
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.status == 200


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback only
        return resp.status == 200
