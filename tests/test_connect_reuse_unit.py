"""Which live server `connect()` reuses (submit_steps.connectserver.ConnectServers.find): a driver pod labelled
as alice's Connect server is hers only if it mounts a token Secret whose owner label is alice (bound to the
Secret's creator by the admission policy). Attack: a pod labelled hers that mounts someone else's Secret, newer
than hers, is passed over; control: her own is reused. The API server is a fake (a transport of objects); the
server's port is a real listening socket."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from spark_secrets.errors import KubernetesNotFound
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_OWNER
from spark_secrets.connect.names import ANNOTATION_TOKEN_SECRET, LABEL_CONNECT_USER
from submit_steps.connectserver import ConnectServers

CONF = {"spark.master": "k8s://https://api:6443", "spark.kubernetes.namespace": "shared",
        "spark.secrets.connect.address": "pod", "spark.secrets.layout.user": "alice"}


class FakeKube:
    def __init__(self, pods: list[dict[str, Any]], secrets: dict[str, dict[str, Any]]) -> None:
        self.pods, self.secrets = pods, secrets

    def list_pods(self, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        wanted = dict(part.split("=", 1) for part in (label_selector or "").split(",") if part)
        return [p for p in self.pods if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        if name not in self.secrets:
            raise KubernetesNotFound(f"Secret {namespace}/{name} not found")
        return self.secrets[name]

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return next(p for p in self.pods if p["metadata"]["name"] == name)

    def request(self, what: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        raise KubernetesNotFound(f"cannot {what}: not found")  # no Services here: the pod IP is the address


@pytest.fixture(autouse=True)
def _state(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of servers started here (none in these tests) in a directory of the test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def _pod(name: str, created: str, token_secret: str, bearer: str, port: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shared", "creationTimestamp": created, "uid": f"uid-{name}",
                         "labels": {LABEL_CONNECT_USER: "alice", "spark-role": "driver"},
                         "annotations": {ANNOTATION_TOKEN_SECRET: bearer}},
            "spec": {"volumes": [{"name": "t", "secret": {"secretName": token_secret}}],
                     "containers": [{"name": "spark", "ports": [{"name": "spark-connect", "containerPort": port}]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1"}}


def _secrets() -> dict[str, dict[str, Any]]:
    def tokens(owner: str) -> dict[str, Any]:
        return {"metadata": {"labels": {LABEL_KIND: KIND_HADOOP_TOKENS, LABEL_OWNER: owner}}}

    def bearer(value: str, pod: str) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": [{"kind": "Pod", "name": pod, "uid": f"uid-{pod}"}]},
                "data": {"token": base64.b64encode(value.encode()).decode()}}

    return {"alice-tokens": tokens("alice"), "bob-tokens": tokens("bob"),
            "alice-bearer": bearer("alice-bearer-token", "connect-alice-1-driver"),
            "bob-bearer": bearer("bob-bearer-token", "planted-driver")}


def test_a_pod_labelled_hers_that_mounts_another_owner_s_secret_is_passed_over_for_her_own(port: int) -> None:
    planted = _pod("planted-driver", "2026-12-06T09:00:00Z", "bob-tokens", "bob-bearer", port)
    own = _pod("connect-alice-1-driver", "2026-12-06T08:00:00Z", "alice-tokens", "alice-bearer", port)
    said: list[str] = []
    servers = ConnectServers(CONF, FakeKube([planted, own], _secrets()), said.append)  # type: ignore[arg-type]
    server = servers.find("alice")
    assert server is not None and server.pod == "connect-alice-1-driver" and server.token == "alice-bearer-token"
    assert server.url == f"sc://127.0.0.1:{port}" and not server.started
    assert any("ignoring driver pod shared/planted-driver" in line for line in said), said
    assert "alice-bearer-token" not in repr(server)


def test_with_only_the_planted_pod_nothing_is_reused(port: int) -> None:
    planted = _pod("planted-driver", "2026-12-06T09:00:00Z", "bob-tokens", "bob-bearer", port)
    servers = ConnectServers(CONF, FakeKube([planted], _secrets()), lambda _: None)  # type: ignore[arg-type]
    assert servers.find("alice") is None


def test_her_own_pod_alone_is_reused_and_an_ended_one_is_not(port: int) -> None:
    own = _pod("connect-alice-1-driver", "2026-12-06T08:00:00Z", "alice-tokens", "alice-bearer", port)
    servers = ConnectServers(CONF, FakeKube([own], _secrets()), lambda _: None)  # type: ignore[arg-type]
    assert servers.find("alice") is not None
    own["status"]["phase"] = "Succeeded"
    assert servers.find("alice") is None


def test_doctor_finds_the_client_and_whether_her_server_answers_here(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_secrets.check.connect import check_client, check_server
    from spark_secrets.check.report import FAIL, OK
    from submit_steps.settings import Settings

    settings = Settings(CONF)
    own = _pod("connect-alice-1-driver", "2026-12-06T08:00:00Z", "alice-tokens", "alice-bearer", port)
    assert check_server(settings, FakeKube([], _secrets()), "alice").status == OK  # none runs: connect() starts one
    found = check_server(settings, FakeKube([own], _secrets()), "alice")  # type: ignore[arg-type]
    assert (found.status, found.detail) == (OK, f"connect-alice-1-driver answers at 127.0.0.1:{port}")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        own["spec"]["containers"][0]["ports"][0]["containerPort"] = unused.getsockname()[1]  # nothing listens there
        silent = check_server(settings, FakeKube([own], _secrets()), "alice")  # type: ignore[arg-type]
    assert silent.status == FAIL and "does not answer" in silent.detail and "spark.secrets.connect.address" in silent.fix
    assert check_client().status == OK
    monkeypatch.setitem(__import__("sys").modules, "grpc", None)  # not installed
    missing = check_client()
    assert missing.status == FAIL and "spark-secrets[connect]" in missing.fix and "pyspark-client" in missing.fix


@pytest.mark.parametrize("providers, shown", [
    (["pyspark"], "pyspark 4.3.0"),
    (["pyspark-client"], "pyspark-client 4.2.0"),  # the Connect client alone: its own distribution name
    (["pyspark-client", "pyspark"], "pyspark 4.3.0 and pyspark-client 4.2.0"),  # both: one shadows the other
])
def test_doctor_names_the_distribution_that_gives_pyspark(providers: list[str], shown: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from spark_secrets.check.connect import client_distribution

    monkeypatch.setattr(importlib.metadata, "packages_distributions", lambda: {"pyspark": providers})
    monkeypatch.setattr(importlib.metadata, "version", {"pyspark": "4.3.0", "pyspark-client": "4.2.0"}.__getitem__)
    assert client_distribution() == shown


@pytest.mark.parametrize("options, message", [
    (["--conf", "spark.secrets.connect.idleTimeout=soon"], "spark.secrets.connect.idleTimeout"),
    (["--conf", "spark.secrets.connect.port=0"], "spark.secrets.connect.port='0' is not a TCP port"),
    (["--conf", "spark.secrets.connect.address=vpn"], "spark.secrets.connect.address"),
    (["--master", "local[2]"], "spark.master is not k8s://"),
])
def test_the_cli_refuses_bad_settings_in_one_line_before_contacting_anything(
        tmp_path: Any, options: list[str], message: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "KRB5CCNAME": f"FILE:{tmp_path / 'none'}"}
    master = [] if "--master" in options else ["--master", "k8s://https://api.invalid:6443"]
    done = subprocess.run([sys.executable, "-m", "spark_secrets", "connect", "--", *master, *options], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "", done
    (line,) = done.stderr.strip().splitlines()
    assert message in line and "Traceback" not in done.stderr, done.stderr


def test_an_annotation_edited_to_name_another_secret_or_a_server_about_to_stop_is_not_reused(port: int) -> None:
    from spark_secrets.connect.names import ANNOTATION_IDLE_TIMEOUT, ANNOTATION_LAST_ACTIVITY
    from spark_secrets.secrets.tokensecret import rfc3339

    own = _pod("connect-alice-1-driver", "2026-12-06T08:00:00Z", "alice-tokens", "bob-bearer", port)  # edited
    said: list[str] = []
    assert ConnectServers(CONF, FakeKube([own], _secrets()), said.append).find("alice") is None  # type: ignore[arg-type]
    assert any("is not its own" in line for line in said), said
    own["metadata"]["annotations"][ANNOTATION_TOKEN_SECRET] = "alice-bearer"  # the control: as made
    servers = ConnectServers(CONF, FakeKube([own], _secrets()), said.append)  # type: ignore[arg-type]
    assert servers.find("alice") is not None
    idle_since = int(__import__("time").time() * 1000) - 170_000
    own["metadata"]["annotations"].update({ANNOTATION_IDLE_TIMEOUT: "180", ANNOTATION_LAST_ACTIVITY: rfc3339(idle_since)})
    assert servers.find("alice") is None and "idle for nearly its timeout" in said[-1]
