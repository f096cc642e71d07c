"""The renew service as a subprocess, for tests on the real test bed."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
import yaml

from spark_secrets.testbed.bed import RENEWER, RENEWER_NAMESPACE, RENEWER_PRINCIPAL, Testbed
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY
from spark_secrets.testbed.hadoop import SecureHdfs

CONF = Path(__file__).resolve().parent.parent / "conf"


def manifests(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest(path: Path, kind: str, name: str) -> dict[str, object]:
    (found,) = [m for m in manifests(path) if m["kind"] == kind and m["metadata"]["name"] == name]  # type: ignore[index]
    return found


def _bind_in_alice(bed: Testbed, cluster_role: str) -> None:
    """conf/rbac/common.yaml's ClusterRole ``cluster_role``, bound in alice's namespace to the renew service's
    user (as the layouts bind it in theirs)."""
    assert bed.kube is not None
    bed.kube.apply(manifest(CONF / "rbac" / "common.yaml", "ClusterRole", cluster_role))
    bed.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": f"{cluster_role}-user", "namespace": "alice"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RENEWER}]})


def bind_renewer(bed: Testbed) -> None:
    """The renew service may work on token Secrets in alice's namespace."""
    _bind_in_alice(bed, "spark-secrets-renewer")


def bind_vault(bed: Testbed) -> None:
    """The renew service may request tokens of alice's job accounts (rotating job secrets)."""
    _bind_in_alice(bed, "spark-secrets-renewer-vault")


def bind_lease(bed: Testbed) -> None:
    """conf/rbac/common.yaml's lease Role, bound to the renew service's user in its namespace."""
    assert bed.kube is not None
    bed.kube.apply(manifest(CONF / "rbac" / "common.yaml", "Role", "spark-secrets-renewer-lease"))
    bed.kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "spark-secrets-renewer-lease-user", "namespace": RENEWER_NAMESPACE},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": "spark-secrets-renewer-lease"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RENEWER}]})


class RenewerProcess:
    """``spark-secrets renewer`` as a subprocess with its own keytab, kubeconfig and log file."""

    def __init__(self, bed: Testbed, cluster: SecureHdfs | None, workdir: Path, reissue_before: str = "15s",
                 extra: tuple[str, ...] = (), kubeconfig: Path | None = None,
                 namespaces: tuple[str, ...] = ("alice",)) -> None:
        assert bed.kube is not None
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "renewer.log"
        env = bed.env(RENEWER, workdir / "no-user-ticket")
        if cluster is not None:
            env["HADOOP_CONF_DIR"] = str(cluster.client_conf_dir())
        env["KUBECONFIG"] = str(kubeconfig or bed.kube.kubeconfig(RENEWER))
        argv = [sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(bed.renewer_keytab),
                "--principal", bed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache", str(workdir / "renewer-cc"),
                *(f"--namespace={ns}" for ns in namespaces), "--reissue-before", reissue_before,
                "--listen", "127.0.0.1:0", *extra]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"health on :(\d+)", self.log.read_text())
            if match:
                self.port = int(match.group(1))
                break
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            time.sleep(0.2)
        else:
            raise AssertionError(self.log.read_text()[-2000:])

    def metrics(self) -> dict[str, float]:
        return metrics(f"http://127.0.0.1:{self.port}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.2)

    def actions(self) -> float:
        m = self.metrics()
        return m["renewals_total"] + m["reissues_total"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def metrics(url: str) -> dict[str, float]:
    """The renew service's ``/metrics`` at ``url``, by name without the ``spark_secrets_`` prefix (with
    its labels as exposed, ``token_operations_total{kind="kms",operation="renew"}``)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^spark_secrets_(\w+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def wait_until(what: str, check: Callable[[], bool], seconds: float, renewer: RenewerProcess | None = None) -> float:
    """Seconds until ``check()`` holds; fails with ``what`` (and the service's log tail) after ``seconds``."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > seconds:
            raise AssertionError(what + ("\n" + renewer.log.read_text()[-2500:] if renewer else ""))
        time.sleep(0.1)
    return time.monotonic() - began


class SubmittedJob:
    """A job's token Secret made by the submission steps as alice (as ``spark-secrets conf`` makes it),
    with ``extra`` settings; :meth:`current` reads the token file in it now, :meth:`delete` ends it."""

    def __init__(self, bed: Testbed, app: str, conf: dict[str, str]) -> None:
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config

        from spark_secrets.kube.client import KubeClient
        from submit_steps.submission import Submission

        assert bed.kube is not None
        alice = KubeClient.from_config(str(bed.kube.kubeconfig("alice", namespace="alice")))
        settings = {"spark.app.name": app, "spark.kubernetes.namespace": "alice", "spark.secrets.renewer": RENEWER,
                    "spark.secrets.plugin.jar": "none", **conf}
        self.name = Submission(settings, alice, progress=lambda _: None).prepare().secrets[0].name
        self.api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))

    def current(self) -> bytes:
        return base64.b64decode(self.api.read_namespaced_secret(self.name, "alice").data[DEFAULT_TOKEN_KEY])

    def delete(self) -> None:
        self.api.delete_namespaced_secret(self.name, "alice")


def job_pod(bed: Testbed, secret: str, account: str = "spark", namespace: str = "alice", owns: bool = True) -> str:
    """A pod like a job's driver: runs as ``account`` and mounts ``secret``; with ``owns`` the Secret is given to
    it (as the submission gives a cluster-mode Secret to the driver pod). Returns the pod's name."""
    assert bed.kube is not None
    image = bed.image("spark") if bed.node is not None else "spark:absent"
    name = f"{secret[:50].rstrip('-')}-pod"
    pod = bed.kube.request("POST", f"/api/v1/namespaces/{namespace}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "job", "image": image, "command": ["sleep", "600"],
                                 "volumeMounts": [{"name": "s", "mountPath": "/mnt/s"}]}],
                 "volumes": [{"name": "s", "secret": {"secretName": secret}}]}})
    if owns:
        from spark_secrets.kube.client import KubeClient

        admin = KubeClient.from_config(str(bed.kube.kubeconfig("admin")))
        admin.patch_secret(namespace, secret, {"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}]}})
    return name


def assert_cancelled(bed: Testbed, cluster: SecureHdfs, token: object, renewer: RenewerProcess, workdir: Path) -> None:
    """The renew service counted a cancellation, and ``token`` no longer renews at ``cluster``'s NameNode."""
    from spark_secrets.errors import InvalidTokenError, TokenExpiredError
    from spark_secrets.hadoop.conf import HadoopConf
    from spark_secrets.login.kerberos import keytab_login
    from spark_secrets.login.spnego import SpnegoAuth
    from spark_secrets.tokens.fetcher import renew_token

    wait_until("the tokens were not cancelled", lambda: renewer.metrics()["cancellations_total"] >= 1, 30, renewer)
    login = keytab_login(bed.kdc_required().principal(RENEWER_PRINCIPAL), bed.renewer_keytab, workdir / "cc")
    try:
        renew_token(token, SpnegoAuth(login.credentials), conf=HadoopConf.load(cluster.client_conf_dir()))  # type: ignore[arg-type]
    except (InvalidTokenError, TokenExpiredError):
        return
    raise AssertionError("the cancelled token still renews")
