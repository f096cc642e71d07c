"""``spark-secrets submit`` exits with the driver's outcome in cluster mode (spark-submit exits 0 even when
the driver pod failed): against a fake API server behind KubeClient's own REST code and a fake
spark-submit script (no test bed)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from spark_secrets.kube.client import KubeClient
from spark_secrets.kube.config import ClusterAccess
from spark_secrets.transport import Answer
from submit_steps.submission import Submission

from steps_support import BASE, builder

SERVER = "https://api.example.com:6443"
PODS = "/api/v1/namespaces/alice/pods"
DRIVER = "etl-1a2b-driver"
CLUSTER = {**BASE, "spark.master": "k8s://https://api:6443", "spark.submit.deployMode": "cluster"}
Reply = tuple[int, Any]


def _response(url: str, status: int, body: Any) -> Answer:
    reason = {200: "OK", 201: "Created", 403: "Forbidden", 404: "Not Found"}.get(status, "Error")
    return Answer(status, reason, {}, body if isinstance(body, bytes) else json.dumps(body).encode())


class FakeApi:
    """Stands in for the client's transport: answers by (method, path), records every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any], Any], Reply]] = {
            ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"):
                lambda params, body: (201, {"status": {"allowed": True}}),
            ("POST", "/api/v1/namespaces/alice/secrets"):
                lambda params, body: (201, {"metadata": {**body["metadata"], "uid": "s-uid", "resourceVersion": "1"}}),
        }

    def route(self, method: str, path: str, answer: Reply | Callable[[dict[str, Any], Any], Reply]) -> None:
        self.routes[(method, path)] = answer if callable(answer) else (lambda params, body: answer)

    def send(self, method: str, url: str, headers: Any, *, body: bytes | None = None, **_: Any) -> Answer:
        path, params, data = urlsplit(url).path, dict(parse_qsl(urlsplit(url).query)), body
        self.seen.append((method, path, dict(params or {})))
        handler = self.routes.get((method, path))
        if handler is None and method in ("PATCH", "DELETE") and path.startswith("/api/v1/namespaces/alice/secrets/"):
            handler = lambda params, body: (200, {})  # noqa: E731 (set_owner, cleanup)
        if handler is None:
            return _response(url, 404, {"kind": "Status", "message": f"nothing at {path}"})
        status, body = handler(dict(params or {}), json.loads(data) if data else None)
        return _response(url, status, body)

    def reads_of_the_driver(self) -> list[str]:
        return [path for method, path, _ in self.seen if method == "GET" and path.startswith(f"{PODS}/")]


def _pod(phase: str, *, name: str = DRIVER, terminated: dict[str, Any] | None = None, reason: str | None = None,
         created: float | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    containers = [{"name": "istio-proxy", "state": {"running": {}}}]
    containers.append({"name": "spark-kubernetes-driver", "state": {"terminated": terminated} if terminated
                       else {"waiting": {"reason": "ContainerCreating"}}})
    stamp = datetime.fromtimestamp(time.time() if created is None else created, timezone.utc)
    return {"metadata": {"name": name, "namespace": "alice", "uid": f"{name}-uid",
                         "creationTimestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "labels": {"spark-role": "driver"}},
            "spec": {"containers": [{"name": "istio-proxy"}, {"name": "spark-kubernetes-driver"}]},
            "status": {**status, "containerStatuses": containers}}


def _spark_submit(tmp_path: Path, status: int = 0) -> str:
    script = tmp_path / "spark-submit"
    script.write_text(f"#!/bin/sh\nexit {status}\n")
    script.chmod(0o755)
    return str(script)


def _submit(tmp_path: Path, api: FakeApi, conf: dict[str, str] | None = None, status: int = 0,
            wait: float = 5.0) -> int:
    kube = KubeClient(ClusterAccess(SERVER, namespace="alice"), "alice")
    kube._transport = api  # type: ignore[assignment]
    submission = Submission(CLUSTER if conf is None else conf, kube, builder=builder(CLUSTER if conf is None else conf))
    submission.outcome_wait, submission.outcome_poll = wait, 0.02
    return submission.run_spark_submit(["--name", "etl", "local:///opt/app.py"], spark_submit=_spark_submit(tmp_path, status),
                                       env={"PATH": "/usr/bin:/bin"}, poll=0.01)


def _api_with_driver(pod: dict[str, Any] | Callable[[], dict[str, Any]], log: bytes = b"") -> FakeApi:
    api = FakeApi()
    current = pod if callable(pod) else (lambda: pod)
    api.route("GET", PODS, lambda params, body: (200, {"items": [current()]}))
    api.route("GET", f"{PODS}/{DRIVER}", lambda params, body: (200, current()))
    api.route("GET", f"{PODS}/{DRIVER}/log", (200, log))
    return api


def _ours(stderr: str) -> list[str]:
    """The lines about the driver's outcome: those after spark-submit ran, but for the Secret's ownership."""
    lines = stderr.splitlines()
    (ran,) = [i for i, line in enumerate(lines) if line.startswith("spark-secrets: running spark-submit with ")]
    return [line for line in lines[ran + 1:] if "Secret" not in line]


def test_a_succeeded_driver_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Succeeded", terminated={"exitCode": 0, "reason": "Completed"}))
    assert _submit(tmp_path, api) == 0
    assert api.reads_of_the_driver() == [f"{PODS}/{DRIVER}"]  # read once, no log
    assert _ours(capsys.readouterr().err) == []


def test_a_failed_driver_exits_with_its_container_exit_code_and_shows_its_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 3, "reason": "Error"}),
                           log=b"INFO starting\nTraceback (most recent call last):\nValueError: bad input\n")
    assert _submit(tmp_path, api) == 3
    err = capsys.readouterr().err
    lines = err.splitlines()
    header = f"spark-secrets: driver pod alice/{DRIVER} ended Failed (container exit code 3)"
    assert [line for line in lines if line.startswith("spark-secrets: driver pod")] == [header]
    at = lines.index(header)
    assert lines[at + 1:] == ["spark-secrets: the last 3 lines of the driver pod's log:", "INFO starting",
                              "Traceback (most recent call last):", "ValueError: bad input"]
    (log_request,) = [params for method, path, params in api.seen if path.endswith("/log")]
    assert log_request == {"tailLines": "40", "container": "spark-kubernetes-driver"}
    password = b"p" * 20  # the fake tokens' password (steps_support.creds)
    for text in (password.decode(), password.hex(), base64.b64encode(password).decode()):
        assert text not in err


def test_a_failed_driver_without_an_exit_code_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", reason="Evicted"), log=b"")
    assert _submit(tmp_path, api) == 1
    assert _ours(capsys.readouterr().err) == [
        f"spark-secrets: driver pod alice/{DRIVER} ended Failed (no container exit code; reason Evicted)",
        "spark-secrets: the driver pod's log is empty"]


def test_a_failed_driver_whose_container_exited_0_still_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 0, "reason": "Completed"}), log=b"done\n")
    assert _submit(tmp_path, api) == 1
    assert f"driver pod alice/{DRIVER} ended Failed (container exit code 0, Completed)" in capsys.readouterr().err


def test_the_phase_is_awaited_a_while(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """spark-submit may return a moment before the phase is written."""
    reads: list[float] = []

    def pod() -> dict[str, Any]:
        reads.append(time.monotonic())
        if len(reads) < 4:
            return _pod("Running")
        return _pod("Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})

    api = _api_with_driver(pod, log=b"killed\n")
    assert _submit(tmp_path, api) == 137
    assert f"driver pod alice/{DRIVER} ended Failed (container exit code 137, OOMKilled)" in capsys.readouterr().err


def test_a_driver_still_running_after_the_wait_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Running"))
    began = time.monotonic()
    assert _submit(tmp_path, api, wait=0.3) == 1
    assert time.monotonic() - began < 5
    assert len(api.reads_of_the_driver()) > 2  # polled, not read once
    assert _ours(capsys.readouterr().err) == [
        f"spark-secrets: driver pod alice/{DRIVER} is Running 0.3 s after spark-submit ended, not Succeeded: exiting 1"]


def test_a_forbidden_pod_keeps_spark_submits_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 3}))
    api.route("GET", f"{PODS}/{DRIVER}", (403, {"kind": "Status", "message": f'pods "{DRIVER}" is forbidden'}))
    assert _submit(tmp_path, api) == 0
    err = capsys.readouterr().err
    assert _ours(err) == ["spark-secrets: the driver's outcome is unknown: you may not get pods in namespace alice; "
                          "exiting with spark-submit's status 0"]
    assert "Traceback" not in err


def test_a_forbidden_log_still_reports_the_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 2}))
    api.route("GET", f"{PODS}/{DRIVER}/log", (403, {"kind": "Status", "message": "forbidden"}))
    assert _submit(tmp_path, api) == 2
    assert _ours(capsys.readouterr().err) == [
        f"spark-secrets: driver pod alice/{DRIVER} ended Failed (container exit code 2)",
        "spark-secrets: cannot show its log: you may not get pods/log in namespace alice"]


def test_without_waiting_for_the_app_no_pod_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 3}))
    conf = {**CLUSTER, "spark.kubernetes.submission.waitAppCompletion": "False"}
    assert _submit(tmp_path, api, conf) == 0
    assert api.reads_of_the_driver() == []
    assert _ours(capsys.readouterr().err) == []


def test_client_mode_keeps_spark_submits_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Failed", terminated={"exitCode": 3}))
    assert _submit(tmp_path, api, {**CLUSTER, "spark.submit.deployMode": "client"}) == 0
    assert api.reads_of_the_driver() == []


def test_a_failed_spark_submit_keeps_its_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = _api_with_driver(_pod("Succeeded", terminated={"exitCode": 0}))
    assert _submit(tmp_path, api, status=4) == 4
    assert api.reads_of_the_driver() == []
    assert _ours(capsys.readouterr().err) == []


def test_no_driver_pod_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    api.route("GET", PODS, (200, {"items": []}))
    # without a Secret to attach, spark-submit's return is not followed by 10 s of looking for its owner
    assert _submit(tmp_path, api, {**CLUSTER, "spark.secrets.enabled": "false"}, wait=0.1) == 1
    assert _ours(capsys.readouterr().err) == ["spark-secrets: no driver pod of this job found in namespace alice: exiting 1"]


def _selected(params: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods a label selector of ``k=v`` pairs picks, as the API server would."""
    wanted = dict(pair.split("=", 1) for pair in params.get("labelSelector", "").split(",") if pair)
    return [p for p in pods if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]


def test_without_a_secret_the_driver_is_found_by_this_submission_s_own_label(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing created (spark.secrets.enabled=false): ``submit`` labels its driver pod with a value of its own
    (``--conf spark.kubernetes.driver.label.spark-secrets.io/submission=…``) and judges that pod alone; the
    drivers of other runs of the same app name, an earlier one that succeeded and one still running, are
    never taken for it."""
    argv = tmp_path / "argv"
    script = tmp_path / "spark-submit-recording"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {argv}\nexit 0\n")
    script.chmod(0o755)
    label = "spark.kubernetes.driver.label.spark-secrets.io/submission="
    others = [_pod("Succeeded", name="nightly-etl-old-driver", terminated={"exitCode": 0}),
              _pod("Running", name="nightly-etl-other-driver")]

    def pods(params: dict[str, Any], body: Any) -> Reply:
        given = [line[len(label):] for line in argv.read_text().splitlines() if line.startswith(label)]
        mine = _pod("Failed", name="nightly-etl-new-driver", terminated={"exitCode": 5})
        mine["metadata"]["labels"]["spark-secrets.io/submission"] = given[0] if given else "none"
        return 200, {"items": _selected(params, [*others, mine])}
    api = FakeApi()
    api.route("GET", PODS, pods)
    api.route("GET", f"{PODS}/nightly-etl-new-driver/log", (200, b"boom\n"))
    kube = KubeClient(ClusterAccess(SERVER, namespace="alice"), "alice")
    kube._transport = api  # type: ignore[assignment]
    conf = {**CLUSTER, "spark.secrets.enabled": "false"}
    submission = Submission(conf, kube, builder=builder(conf))
    submission.outcome_wait, submission.outcome_poll = 5.0, 0.02
    began = time.monotonic()
    assert submission.run_spark_submit(["--name", "etl", "local:///opt/app.py"], spark_submit=str(script),
                                       env={"PATH": "/usr/bin:/bin"}, poll=0.01) == 5
    assert time.monotonic() - began < 5  # no wait for a Secret's owner when there is no Secret
    (given,) = [line for line in argv.read_text().splitlines() if line.startswith(label)]
    (listing,) = [params for method, path, params in api.seen if (method, path) == ("GET", PODS)]
    assert listing == {"labelSelector": f"spark-secrets.io/submission={given[len(label):]},spark-role=driver"}
    assert "driver pod alice/nightly-etl-new-driver ended Failed (container exit code 5)" in capsys.readouterr().err
    # The control: a driver without this submission's label (another run's) is not this job's, whatever its name.
    api.route("GET", PODS, lambda params, body: (200, {"items": _selected(params, others)}))
    submission.outcome_wait = 0.1
    assert submission.run_spark_submit(["--name", "etl", "local:///opt/app.py"], spark_submit=str(script),
                                       env={"PATH": "/usr/bin:/bin"}, poll=0.01) == 1
    assert "no driver pod of this job found" in capsys.readouterr().err


def test_the_driver_container_is_the_template_s_or_spark_s_or_the_last() -> None:
    from submit_steps.submission import _driver_container
    pod = {"spec": {"containers": [{"name": "sidecar"}, {"name": "main"}]}}
    assert _driver_container(pod, "main") == "main"
    assert _driver_container(pod, None) == "main"  # Spark appends its container after a template's
    assert _driver_container({"spec": {"containers": [{"name": "spark-kubernetes-driver"}, {"name": "x"}]}},
                             None) == "spark-kubernetes-driver"
