"""The kubeconfig reader and KubeClient's REST calls, against kubeconfig files written here and a
small local HTTP server that answers like the API server (no test bed)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.errors import (KubernetesConflict, KubernetesError, KubernetesForbidden, KubernetesGone,
                                  KubernetesInvalid, KubernetesNotFound)
from spark_secrets.kube.client import KubeClient, ObjectRef
from spark_secrets.kube.config import KubeconfigError, load_in_cluster, load_kubeconfig

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _kubeconfig(path: Path, *, server: str = "https://api.example.com:6443", cluster: dict[str, Any] | None = None,
                user: dict[str, Any] | None = None, namespace: str | None = "team-a", name: str = "dev",
                current: str | None = "dev", yaml_text: bool = False) -> Path:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": name, "user": user if user is not None else {"token": "t0ken"}}],
        "contexts": [{"name": name, "context": context}],
    }
    if current:
        config["current-context"] = current
    if yaml_text:
        import yaml

        path.write_text(yaml.safe_dump(config))
    else:
        path.write_text(json.dumps(config))
    return path


# -- the kubeconfig reader ---------------------------------------------------------------------------
@pytest.mark.parametrize("yaml_text", [False, True], ids=["json", "yaml"])
def test_token_ca_file_and_namespace(tmp_path: Path, yaml_text: bool) -> None:
    (tmp_path / "ca.pem").write_bytes(PEM)
    path = _kubeconfig(tmp_path / "config", cluster={"certificate-authority": "ca.pem"}, yaml_text=yaml_text)
    access = load_kubeconfig(str(path))
    assert access.server == "https://api.example.com:6443"
    assert access.verify == str(tmp_path / "ca.pem")  # relative to the kubeconfig
    assert access.authorization() == "Bearer t0ken"
    assert access.namespace == "team-a" and access.cert is None


def test_data_entries_become_private_files(tmp_path: Path) -> None:
    b64 = base64.b64encode
    path = _kubeconfig(tmp_path / "config", cluster={"certificate-authority-data": b64(PEM).decode()},
                       user={"client-certificate-data": b64(b"CERT").decode(), "client-key-data": b64(b"KEY").decode()})
    access = load_kubeconfig(str(path))
    assert isinstance(access.verify, str) and Path(access.verify).read_bytes() == PEM
    assert access.cert is not None
    cert, key = access.cert
    assert Path(cert).read_bytes() == b"CERT" and Path(key).read_bytes() == b"KEY"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(Path(key).parent).st_mode) == 0o700
    assert access.authorization() is None


def test_client_certificate_files_token_file_and_insecure(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text(name)
    (tmp_path / "token").write_text("from-file\n")
    path = _kubeconfig(tmp_path / "config", cluster={"insecure-skip-tls-verify": True, "tls-server-name": "kube.local",
                                                     "proxy-url": "http://proxy:3128"},
                       user={"client-certificate": "c.pem", "client-key": "k.pem", "tokenFile": "token"})
    access = load_kubeconfig(str(path))
    assert access.cert == (str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
    assert access.verify is False
    assert access.authorization() == "Bearer from-file"
    assert (access.tls_server_name, access.proxy) == ("kube.local", "http://proxy:3128")


def test_basic_auth_and_plain_http_ignores_certificates(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", server="http://127.0.0.1:8080/",
                       cluster={"certificate-authority": "missing.pem"}, user={"username": "u", "password": "p"})
    access = load_kubeconfig(str(path))
    assert access.server == "http://127.0.0.1:8080" and access.verify is True
    assert access.authorization() == "Basic " + base64.b64encode(b"u:p").decode()


def test_several_files_merge_as_the_kubernetes_package_merges_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _kubeconfig(tmp_path / "a", server="https://first:6443", name="shared", current="shared")
    second = _kubeconfig(tmp_path / "b", server="https://second:6443", name="shared", current=None)
    third = _kubeconfig(tmp_path / "c", server="https://third:6443", name="other", current="other")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    assert load_kubeconfig().server == "https://first:6443"  # the first file to name a cluster wins
    monkeypatch.setenv("KUBECONFIG", f"{first}:{third}")
    assert load_kubeconfig().server == "https://third:6443"  # the last current-context wins
    assert load_kubeconfig(context="shared").server == "https://first:6443"


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no kubeconfig file found"),
    ("empty", "is empty"),
    ("no-current", "no current-context"),
    ("bad-context", "no context 'nope'"),
    ("missing-ca", "certificate-authority file"),
])
def test_unusable_kubeconfigs_say_why(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "config"
    context = None
    if setup == "empty":
        path.write_text("")
    elif setup == "no-current":
        _kubeconfig(path, current=None)
    elif setup == "bad-context":
        _kubeconfig(path)
        context = "nope"
    elif setup == "missing-ca":
        _kubeconfig(path, cluster={"certificate-authority": "gone.pem"})
    with pytest.raises(KubeconfigError, match=message):
        load_kubeconfig(str(path), context)
    with pytest.raises(KubernetesError, match="no usable Kubernetes configuration"):
        KubeClient.from_config(str(path), context)


def test_exec_plugins_are_delegated_to_the_kubernetes_package(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text("import json; print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
                      "'kind': 'ExecCredential', 'status': {'token': 'from-exec'}}))\n")
    path = _kubeconfig(tmp_path / "config", user={"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                           "command": sys.executable, "args": [str(plugin)]}})
    access = load_kubeconfig(str(path))
    assert access.authorization() == "Bearer from-exec"


def test_a_token_wins_over_an_exec_plugin(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "config", user={"token": "plain", "exec": {"command": "/nonexistent"}})
    assert load_kubeconfig(str(path)).authorization() == "Bearer plain"


def test_in_cluster_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(PEM)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    access = load_in_cluster(env, str(tmp_path))
    assert (access.server, access.verify, access.in_cluster) == ("https://10.96.0.1:443", str(tmp_path / "ca.crt"), True)
    assert access.authorization() == "Bearer sa-token"
    with pytest.raises(KubeconfigError, match="not in a pod"):
        load_in_cluster({}, str(tmp_path))


# -- REST calls ---------------------------------------------------------------------------------------
class _FakeApiServer(ThreadingHTTPServer):
    """Records requests; answers from ``replies`` (status, JSON body) by method and path; a list of
    bodies is a watch's answer, one JSON event per line."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[dict[str, Any]] = []
        self.replies: dict[tuple[str, str], tuple[int, dict[str, Any] | list[dict[str, Any]]]] = {}


class _Handler(BaseHTTPRequestHandler):
    server: _FakeApiServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        self.server.seen.append({"method": self.command, "path": path, "query": query, "headers": dict(self.headers),
                                 "body": json.loads(body) if body else None})
        status, answer = self.server.replies.get((self.command, path), (404, {"kind": "Status", "message": "nope"}))
        if isinstance(answer, list):
            data = b"".join(json.dumps(event).encode() + b"\n" for event in answer)
        else:
            data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[_FakeApiServer, KubeClient]]:
    server = _FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = _kubeconfig(tmp_path / "config", server=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield server, KubeClient.from_config(str(path))
    finally:
        server.shutdown()
        server.server_close()


SECRETS = "/api/v1/namespaces/team-a/secrets"


def test_calls_send_the_token_and_the_bodies_the_kubernetes_client_sent(api: tuple[_FakeApiServer, KubeClient]) -> None:
    server, kube = api
    assert kube.namespace == "team-a"
    server.replies[("POST", SECRETS)] = (201, {"metadata": {"name": "s", "namespace": "team-a", "uid": "u1",
                                                            "resourceVersion": "7"}})
    server.replies[("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")] = (201, {"status": {"allowed": True}})
    server.replies[("PATCH", f"{SECRETS}/s")] = (200, {})
    server.replies[("DELETE", f"{SECRETS}/s")] = (200, {})
    server.replies[("GET", "/api/v1/namespaces/team-a/pods")] = (200, {"items": [
        {"metadata": {"name": "driver", "uid": "p1", "resourceVersion": "9"}}]})

    assert kube.can_i("create", "secrets", "team-a")
    ref = kube.create_secret({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "team-a"},
                              "data": {"k": "dg=="}})
    assert ref == ObjectRef("Secret", "s", "team-a", "u1", "7")
    pods = kube.find_pods("team-a", "spark-role=driver")
    assert pods == [ObjectRef("Pod", "driver", "team-a", "p1", "9")]
    kube.set_owner(ref, pods[0])
    kube.delete_secret("team-a", "s", uid="u1")

    review, create, find, own, delete = server.seen
    assert all(r["headers"]["Authorization"] == "Bearer t0ken" for r in server.seen)
    assert review["body"]["spec"]["resourceAttributes"] == {"verb": "create", "resource": "secrets",
                                                           "namespace": "team-a", "group": ""}
    assert create["body"]["data"] == {"k": "dg=="}
    assert find["query"] == "labelSelector=spark-role%3Ddriver"
    assert own["headers"]["Content-Type"] == "application/strategic-merge-patch+json"
    assert own["body"] == {"metadata": {"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "driver",
                                                             "uid": "p1"}]}}
    assert delete["body"] == {"preconditions": {"uid": "u1"}}


@pytest.mark.parametrize(("status", "error", "text"), [
    (403, KubernetesForbidden, "Kubernetes refused to read Secret team-a/s: secrets \"s\" is forbidden"),
    (404, KubernetesNotFound, "cannot read Secret team-a/s: not found (secrets \"s\" is forbidden)"),
    (409, KubernetesConflict, "cannot read Secret team-a/s: secrets \"s\" is forbidden"),
    (401, KubernetesError, "did not accept your credentials"),
    (500, KubernetesError, "cannot read Secret team-a/s: HTTP 500 secrets \"s\" is forbidden"),
    (410, KubernetesGone, "cannot read Secret team-a/s: HTTP 410"),
    (422, KubernetesInvalid, "cannot read Secret team-a/s: HTTP 422"),
])
def test_status_codes_map_to_one_line_errors(api: tuple[_FakeApiServer, KubeClient], status: int,
                                             error: type[Exception], text: str) -> None:
    server, kube = api
    server.replies[("GET", f"{SECRETS}/s")] = (status, {"kind": "Status", "message": 'secrets "s" is forbidden'})
    with pytest.raises(error) as caught:
        kube.read_secret("team-a", "s")
    assert text in str(caught.value)
    assert type(caught.value) is error


def test_an_unreachable_api_server_is_named(tmp_path: Path) -> None:
    from spark_secrets.testbed.daemon import free_port

    kube = KubeClient.from_config(str(_kubeconfig(tmp_path / "config", server=f"http://127.0.0.1:{free_port()}")))
    with pytest.raises(KubernetesError, match="unreachable"):
        kube.read_secret("team-a", "s")


def test_a_submission_does_not_import_the_kubernetes_package(tmp_path: Path) -> None:
    """The package's import alone took about a third of a second of every `spark-secrets conf`."""
    path = _kubeconfig(tmp_path / "config")
    code = ("import sys; from spark_secrets.kube.client import KubeClient; "
            "import spark_secrets.cli.main, submit_steps.submission, "
            f"submit_steps.builder; KubeClient.from_config({str(path)!r}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"


def test_a_watch_without_a_resource_version_is_a_streaming_list(api: tuple[_FakeApiServer, KubeClient]) -> None:
    server, kube = api
    events = [{"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9",
                                                           "annotations": {"k8s.io/initial-events-end": "true"}}}}]
    server.replies[("GET", SECRETS)] = (200, events)
    assert list(kube.watch_secret_metadata("team-a", "x=y", None, 7)) == events
    assert list(kube.watch_secret_metadata("team-a", "x=y", "9", 7)) == events
    first, resumed = (dict(p.split("=", 1) for p in seen["query"].split("&")) for seen in server.seen)
    assert first == {"watch": "true", "labelSelector": "x%3Dy", "allowWatchBookmarks": "true", "timeoutSeconds": "7",
                     "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}
    assert resumed == {"watch": "true", "labelSelector": "x%3Dy", "allowWatchBookmarks": "true", "timeoutSeconds": "7",
                       "resourceVersion": "9"}
    assert server.seen[0]["headers"]["Accept"] == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    assert server.seen[0]["headers"]["Authorization"] == "Bearer t0ken"


def test_a_server_without_streaming_lists_answers_invalid(api: tuple[_FakeApiServer, KubeClient]) -> None:
    """What Kubernetes 1.33 (WatchList off by default) answers; the renew service then lists in pages."""
    server, kube = api
    server.replies[("GET", SECRETS)] = (422, {"kind": "Status", "message": "sendInitialEvents is forbidden for watch "
                                                                          "unless the WatchList feature gate is enabled"})
    with pytest.raises(KubernetesInvalid, match="cannot watch Secrets in team-a: HTTP 422 sendInitialEvents"):
        list(kube.watch_secret_metadata("team-a", "x=y", None, 7))


def test_the_renew_service_does_not_import_the_kubernetes_package(tmp_path: Path) -> None:
    """Only controller mode's RBAC grants use it; its import would add about a third of a second to
    every start of the service."""
    code = ("import sys; import spark_secrets.renew.service, spark_secrets.renew.watch, spark_secrets.renew.lease; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"
