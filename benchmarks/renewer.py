"""Benchmark: the renew service with 1,000 and 10,000 token Secrets on the real API server.

    python3 benchmarks/renewer.py [--counts 1000,10000]

For each count: the time `spark-secrets renewer` takes from process start to ready (every Secret
listed and parsed) against the time a bare list of the same Secrets takes (the peer: the least any
resync can cost), its resident memory once ready, and the Kubernetes API requests it makes per
renewal (20 of the Secrets are made due at once, with real tokens).
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.fetcher import obtain_tokens
from spark_secrets.labels import (ANNOTATION_EXPIRY, ANNOTATION_FILESYSTEMS, ANNOTATION_KEY, ANNOTATION_RENEWED_AT,
                                  KIND_HADOOP_TOKENS,
                                  LABEL_KIND, LABEL_MANAGED_BY, MANAGED_BY, TOKEN_SECRET_SELECTOR, rfc3339)
from spark_secrets.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed


def _secret(name: str, data: bytes, expiry_ms: int, filesystem: str, renewed_ms: int | None = None) -> dict[str, object]:
    notes = {ANNOTATION_EXPIRY: rfc3339(expiry_ms), ANNOTATION_KEY: "hadoop-tokens", ANNOTATION_FILESYSTEMS: filesystem}
    if renewed_ms is not None:
        notes[ANNOTATION_RENEWED_AT] = rfc3339(renewed_ms)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS},
                         "annotations": notes},
            "data": {"hadoop-tokens": base64.b64encode(data).decode()}}


def _wait(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} not ready after {timeout:.0f} s")
        time.sleep(0.05)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000", help="Secret counts to measure (default 1000,10000)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp)) as bed:
        assert bed.kube is not None and bed.hdfs is not None
        kube = bed.kube
        for kind, name, rules in (("ClusterRole", "bench-renewer", [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "patch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]),):
            kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name},
                        "rules": rules})
        kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "bench-renewer"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-renewer"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RENEWER}]})
        admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("admin"))))
        os.environ["KRB5CCNAME"] = f"FILE:{bed.ticket_cache('alice')}"
        filesystem = bed.hdfs.webhdfs_url
        idle = obtain_tokens([filesystem], RENEWER, SpnegoAuth()).to_bytes()
        far = int(time.time() * 1000) + 20 * 3_600_000
        created = 0
        print("renew service resync against a bare list of the same Secrets (real API server, etcd)")
        for count in (int(c) for c in args.counts.split(",")):
            ns = f"bench-{count}"
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            began = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: admin.create_namespaced_secret(
                    ns, _secret(f"job-{i:05d}-hadoop-tokens", idle, far, filesystem), _preload_content=False),
                    range(count)))
            created += count
            print(f"  {count} Secrets created in {time.perf_counter() - began:.1f} s", flush=True)
            began = time.perf_counter()
            listed = admin.list_namespaced_secret(ns, label_selector=TOKEN_SECRET_SELECTOR, _preload_content=False)
            size = len(listed.data)  # the whole body, read
            list_s = time.perf_counter() - began
            env = {**bed.env(RENEWER), "KUBECONFIG": str(kube.kubeconfig(RENEWER)),
                   "HADOOP_CONF_DIR": str(bed.hdfs.client_conf_dir())}
            argv = [sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(bed.renewer_keytab),
                    "--principal", bed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache",
                    str(bed.dir / f"cc-{count}"), "-n", ns, "--listen", "127.0.0.1:18080"]
            began = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=(bed.dir / f"r{count}.log").open("w"))
            try:
                _wait("http://127.0.0.1:18080/readyz", 600)
                ready_s = time.perf_counter() - began
                rss = _rss_mb(proc.pid)
                # 20 Secrets with real, distinct tokens, due now: requests per renewal.
                now = int(time.time() * 1000)
                for i in range(20):  # last renewed 10 min ago, expiring in 60 s: due at once
                    data = obtain_tokens([filesystem], RENEWER, SpnegoAuth()).to_bytes()
                    admin.create_namespaced_secret(ns, _secret(f"due-{i:02d}-hadoop-tokens", data, now + 60_000,
                                                               filesystem, now - 600_000), _preload_content=False)
                deadline = time.monotonic() + 120
                metrics: dict[str, float] = {}
                while time.monotonic() < deadline:
                    text = requests.get("http://127.0.0.1:18080/metrics", timeout=5).text
                    metrics = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines()
                               if ln.startswith("spark_secrets_")}
                    if metrics.get("spark_secrets_renewals_total", 0) >= 20:
                        break
                    time.sleep(0.2)
                per = metrics["spark_secrets_api_requests_total"] / max(1, metrics["spark_secrets_renewals_total"])
            finally:
                proc.terminate()
                proc.wait(30)
            print(f"  {count:>6} Secrets: ready in {ready_s:6.2f} s (bare list {list_s:5.2f} s, {size / 1e6:.1f} MB; "
                  f"x{ready_s / list_s:.1f}), RSS {rss:6.1f} MB, "
                  f"{per:.2f} API requests per renewal ({int(metrics['spark_secrets_renewals_total'])} renewals)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
