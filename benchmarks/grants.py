"""Benchmark: how long the renew service in controller mode takes to grant read access for 100 new
token Secrets created at once, on the real API server.

    python3 benchmarks/grants.py [--count 100] [--rounds 3]

Each round creates ``--count`` token Secrets (real token file, alice's) in one burst in the controller
layout's namespace and times, for each, how long until alice's job service account can read it
(polled as that account). The peer: an admin creating the same Roles and RoleBindings directly, with
the same parallelism, timed the same way — the least the grants can cost on this API server.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from spark_secrets.kube import rbac
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.renew.grants import grant_name
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_KEY, ANNOTATION_SERVICE_ACCOUNT,
                                  KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY)
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed

NAMESPACE = "bench-grants"
PEER_NAMESPACE = "bench-grants-direct"
THREADS = 8
POLLERS = 8  # few enough not to slow the API server they measure


def _secret(name: str, data: bytes, filesystem: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS,
                                                  LABEL_OWNER: "alice"},
                         "annotations": {ANNOTATION_KEY: "hadoop-tokens", ANNOTATION_FILESYSTEMS: filesystem,
                                         ANNOTATION_SERVICE_ACCOUNT: "spark-alice"}},
            "data": {"hadoop-tokens": base64.b64encode(data).decode()}}


def _readable_after(reader: k8s.CoreV1Api, namespace: str, name: str, created: float, limit: float = 120) -> float:
    """Seconds from ``created`` until ``reader`` may get the Secret (polled every 50 ms)."""
    while time.perf_counter() - created < limit:
        try:
            reader.read_namespaced_secret(name, namespace, _preload_content=False)
            return time.perf_counter() - created
        except ApiException as exc:
            if exc.status != 403:
                raise
        time.sleep(0.05)
    raise SystemExit(f"{namespace}/{name} not readable after {limit:.0f} s")


def _burst(count: int, make: Callable[[int], None], reader: k8s.CoreV1Api, namespace: str,
           names: list[str]) -> tuple[float, list[float]]:
    """Run ``make`` for every index at once; (seconds until all readable, per-Secret latencies)."""
    began = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as makers, ThreadPoolExecutor(POLLERS) as pollers:
        polls = [pollers.submit(_readable_after, reader, namespace, name, began) for name in names]
        list(makers.map(make, range(count)))
        latencies = [p.result() for p in polls]
    return max(latencies), latencies


def _renewer(bed: Testbed, kubeconfig: Path) -> subprocess.Popen[bytes]:
    assert bed.hdfs is not None
    env = {**bed.env(RENEWER), "KUBECONFIG": str(kubeconfig), "HADOOP_CONF_DIR": str(bed.hdfs.client_conf_dir())}
    argv = [sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(bed.renewer_keytab),
            "--principal", bed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache", str(bed.dir / "cc-grants"),
            "-n", NAMESPACE, "--grant-access", "--sweep-interval", "0", "--listen", "127.0.0.1:18081"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=(bed.dir / "grants.log").open("w"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get("http://127.0.0.1:18081/readyz", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("the renew service did not become ready; see " + str(bed.dir / "grants.log"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="Secrets per burst (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="bursts to measure (default 3)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, Testbed(Path(tmp)) as bed:
        kube, hdfs = bed.kube, bed.hdfs
        assert kube is not None and hdfs is not None
        for manifest in [*rbac.common(), *rbac.controller(NAMESPACE, ["alice"]),
                         *rbac.controller(PEER_NAMESPACE, ["alice"])]:
            kube.apply(manifest)
        admin_client = k8s_config.new_client_from_config(str(kube.kubeconfig("admin")))
        admin, admin_rbac = k8s.CoreV1Api(admin_client), k8s.RbacAuthorizationV1Api(admin_client)
        readers = {ns: k8s.CoreV1Api(k8s_config.new_client_from_config(
            str(kube.service_account_kubeconfig(ns, "spark-alice")))) for ns in (NAMESPACE, PEER_NAMESPACE)}
        os.environ["KRB5CCNAME"] = f"FILE:{bed.ticket_cache('alice')}"
        data = obtain_tokens([hdfs.webhdfs_url], RENEWER, SpnegoAuth()).to_bytes()
        renewer = _renewer(bed, kube.service_account_kubeconfig(rbac.RENEWER_NAMESPACE, rbac.RENEWER_ACCOUNT))
        print(f"read grants for {args.count} token Secrets created at once (real API server; {THREADS} creating "
              f"threads), until alice's job account can get each")
        try:
            for round_no in range(args.rounds):
                names = [f"r{round_no}-job-{i:03d}-hadoop-tokens" for i in range(args.count)]

                def create_secret(i: int) -> None:
                    admin.create_namespaced_secret(NAMESPACE, _secret(names[i], data, hdfs.webhdfs_url),
                                                   _preload_content=False)

                def grant_directly(i: int) -> None:
                    name = grant_name(names[i])
                    role = {"metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": ["secrets"],
                                                                   "resourceNames": [names[i]], "verbs": ["get"]}]}
                    binding = {"metadata": {"name": name},
                               "roleRef": {"apiGroup": rbac.RBAC, "kind": "Role", "name": name},
                               "subjects": [{"kind": "ServiceAccount", "name": "spark-alice",
                                             "namespace": PEER_NAMESPACE}]}
                    admin.create_namespaced_secret(PEER_NAMESPACE, _secret(names[i], data, hdfs.webhdfs_url),
                                                   _preload_content=False)
                    admin_rbac.create_namespaced_role(PEER_NAMESPACE, role, _preload_content=False)
                    admin_rbac.create_namespaced_role_binding(PEER_NAMESPACE, binding, _preload_content=False)

                ours, latencies = _burst(args.count, create_secret, readers[NAMESPACE], NAMESPACE, names)
                peer, peer_latencies = _burst(args.count, grant_directly, readers[PEER_NAMESPACE], PEER_NAMESPACE,
                                              names)
                q = statistics.quantiles(latencies, n=20)
                print(f"  round {round_no + 1}: all {args.count} readable after {ours:5.2f} s (per Secret median "
                      f"{statistics.median(latencies):.2f} s, p95 {q[18]:.2f} s); admin creating the same grants "
                      f"directly {peer:5.2f} s (median {statistics.median(peer_latencies):.2f} s); x{ours / peer:.2f}",
                      flush=True)
        finally:
            renewer.terminate()
            renewer.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
