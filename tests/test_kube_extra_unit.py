"""Issue 29: ``kubernetes`` is the ``kube`` extra. A submission (``spark-secrets conf``) talks REST and
never imports it; what does need it (the controller layout's grants, the ``kubernetes`` API client,
exec-plugin kubeconfigs) says in one line which extra to install.

Each probe runs in a fresh interpreter, since this one has ``kubernetes`` installed: in the blocked one
a ``sys.meta_path`` finder makes it fail to import as if it were absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spark_secrets.kube import _extra

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install 'spark-secrets[kube]'"

#: Installed before anything else in the child: ``kubernetes`` (and its submodules) are absent.
BLOCKER = '''
import sys

class _Absent:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "kubernetes":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent)
'''

#: A ``spark-secrets conf`` against a fake API server (access reviews allowed, Secrets created), then
#: each thing that needs the extra; prints a JSON report.
PROBE = '''
import contextlib, io, json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Api(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.endswith("/selfsubjectaccessreviews"):
            body["status"] = {"allowed": True}
        else:
            body["metadata"].update(uid="u-1", resourceVersion="7")
        data = json.dumps(body).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}"

def kubeconfig(name, user):
    path = os.path.join(os.environ["WORK"], name)
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                   "clusters": [{"name": "c", "cluster": {"server": url}}], "users": [{"name": "u", "user": user}],
                   "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "alice"}}]}, f)
    return path

os.environ["KUBECONFIG"] = kubeconfig("token.json", {"token": "t0ken"})
import spark_secrets.cli.main as cli

printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    rc = cli.main(["conf", "--", "--master", "k8s://" + url, "--deploy-mode", "cluster", "--name", "etl",
                   "--conf", "spark.kubernetes.namespace=alice",
                   "--conf", "spark.secrets.file.db-password=file:" + os.path.join(os.environ["WORK"], "pw")])
out = {"conf": [rc, printed.getvalue()], "loaded": "kubernetes" in sys.modules}
try:
    import kubernetes  # noqa: F401
    out["kubernetes importable"] = True
except ImportError:
    out["kubernetes importable"] = False

from spark_secrets.errors import SparkSecretsError
from spark_secrets.kube.client import KubeClient
from spark_secrets.kube.config import KubeconfigError, load_kubeconfig
from spark_secrets.renew.grants import AccessGrants

def attempt(call):
    try:
        made = call()
        return {"ok": type(made).__module__ + "." + type(made).__qualname__}
    except (SparkSecretsError, KubeconfigError) as exc:
        return {"error": type(exc).__name__, "message": str(exc)}

kube = KubeClient.from_config()
out["api_client"] = attempt(lambda: KubeClient.from_config().api_client)
out["grants"] = attempt(lambda: AccessGrants(KubeClient.from_config()))
out["call"] = attempt(lambda: kube.call("list nothing", lambda: None))
exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "true", "interactiveMode": "Never"}}
out["exec plugin"] = attempt(lambda: load_kubeconfig(kubeconfig("exec.json", exec_user)))
print(json.dumps(out))
'''

NEEDS = {"api_client": "the kubernetes client (the renew service's controller layout)",
         "grants": "the controller layout's per-Secret grants", "call": "a kubernetes client call",
         "exec plugin": "a kubeconfig user with an exec plugin or auth provider"}


def probe(tmp_path: Path, *, blocked: bool) -> dict[str, object]:
    (tmp_path / "pw").write_text("s3cret")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "WORK": str(tmp_path), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", (BLOCKER if blocked else "") + PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


def test_conf_runs_without_kubernetes_and_what_needs_it_names_the_extra(tmp_path: Path) -> None:
    report = probe(tmp_path, blocked=True)
    assert report["kubernetes importable"] is False  # the blocker works
    rc, printed = report["conf"]  # type: ignore[misc]
    assert rc == 0 and "spark.kubernetes.driver.secrets." in printed, printed
    assert report["loaded"] is False
    for name, what in NEEDS.items():
        error = report[name]
        assert isinstance(error, dict) and error["error"] == "ConfigError", (name, error)
        assert error["message"] == f"{what} needs the kubernetes package, which is not installed: {INSTALL}"


def test_with_the_extra_the_same_calls_get_past_the_import(tmp_path: Path) -> None:
    """Control: without the blocker, nothing names the extra, and the submission still does not import it."""
    report = probe(tmp_path, blocked=False)
    assert report["kubernetes importable"] is True
    assert report["conf"][0] == 0 and report["loaded"] is False  # type: ignore[index]
    assert report["api_client"] == {"ok": "kubernetes.client.api_client.ApiClient"}
    assert report["grants"] == {"ok": "spark_secrets.renew.grants.AccessGrants"}
    assert report["call"] == {"ok": "builtins.NoneType"}
    assert INSTALL not in json.dumps(report["exec plugin"])


def test_other_import_failures_are_not_taken_for_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError, match="spark_secrets.kube.no_such_module"):
        _extra.load("spark_secrets.kube.no_such_module", "a test")


def test_setup_cfg_has_the_extra_and_not_the_hard_dependency() -> None:
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "kubernetes" not in cfg["options"]["install_requires"]
    assert cfg["options.extras_require"][_extra.EXTRA].split() == ["kubernetes>=29"]
    assert "kubernetes>=29" in cfg["options.extras_require"]["dev"].split()  # the tests and the demo use it
