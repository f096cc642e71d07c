"""Benchmark: the renew service with 1,000, 10,000 and 100,000 token Secrets on the real API server.

    python3 benchmarks/renewer.py [--counts 1000,10000,100000] [--rounds 3] [--checkout DIR ...]

For each count: the time `spark-secrets renewer` takes from process start to ready (every Secret's
metadata listed and scheduled) against a bare streaming list of the same Secrets' metadata by another
client (the peer: the least the service's own list can cost), in rounds of one list then one start, the
ratio taken per round (one list can take half as long again as the next); a bare paged list, what a server
without streaming lists gives, is printed beside it; and against the service with no Secrets at all (the
process's own start); its resident memory once ready above the same service idle, per tracked Secret;
and the Kubernetes API writes it makes per renewal (20 of the Secrets are made due at once, with
real tokens). The bulk Secrets look like ones the service renewed a moment ago (not due for hours): alice's owner
label, and sealed with the key the service derives from its keytab (an unsealed Secret is due at first sight, and
the service would read and renew every one of them while it starts). The service runs from this checkout,
byte-compiled first as ``pip install`` compiles an installed package (with PYTHONDONTWRITEBYTECODE set and no
``__pycache__``, every start would compile the sources again). ``--checkout DIR`` starts another source tree's
service on the same Secrets too (a ``git worktree`` of an older commit): its start and memory, in the same run.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.watch import INITIAL_EVENTS_END
from spark_secrets.renew.seal import Seal
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_KEY, ANNOTATION_TOKENS, ANNOTATION_VERIFIED,
                                               KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY,
                                               TOKEN_SECRET_SELECTOR, schedule_annotations)
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed

#: The bulk Secrets' owner label: the user whose tokens they hold.
OWNER = "alice"
ROOT = Path(__file__).resolve().parent.parent


def _secret(name: str, creds: Credentials, expiry_ms: int, filesystem: str, renewed_ms: int) -> dict[str, object]:
    """A token Secret as the submission writes it, after a renewal at ``renewed_ms``."""
    data = creds.to_bytes()
    notes = {ANNOTATION_KEY: "hadoop-tokens", ANNOTATION_FILESYSTEMS: filesystem,
             **{k: v for k, v in schedule_annotations(creds, expiry_ms, renewed_at_ms=renewed_ms).items() if v}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS,
                                                  LABEL_OWNER: OWNER},
                         "annotations": notes},
            "data": {"hadoop-tokens": base64.b64encode(data).decode()}}


def _create_sealed(admin: k8s.CoreV1Api, seal: Seal, ns: str, secret: dict[str, Any]) -> None:
    """Creates ``secret`` and seals it as the service does once it renewed the tokens (the seal names the uid)."""
    # .data reads each answer, so its connection goes back to the pool instead of staying open
    created = json.loads(admin.create_namespaced_secret(ns, secret, _preload_content=False).data)
    meta = created["metadata"]
    verified = seal.sign(ns, meta["name"], meta["uid"], OWNER, meta["annotations"][ANNOTATION_TOKENS])
    admin.patch_namespaced_secret(meta["name"], ns, {"metadata": {"annotations": {ANNOTATION_VERIFIED: verified}}},
                                  _preload_content=False).data


def _streamed(peer: KubeClient, namespace: str) -> int:
    """A bare streaming list (what the service asks for first): the Secrets until the end bookmark."""
    count = 0
    for event in peer.watch_secret_metadata(namespace, TOKEN_SECRET_SELECTOR, None, 600):
        if event["type"] == "ADDED":
            count += 1
        elif event["type"] == "BOOKMARK":
            if (event["object"]["metadata"].get("annotations") or {}).get(INITIAL_EVENTS_END) == "true":
                return count
    raise SystemExit("the streaming list ended without its bookmark")


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


class _Service:
    """``spark-secrets renewer`` on one namespace, as a user would start it."""

    def __init__(self, bed: Testbed, namespace: str, log: Path, checkout: Path = ROOT) -> None:
        assert bed.kube is not None and bed.hdfs is not None
        env = {**bed.env(RENEWER), "KUBECONFIG": str(bed.kube.kubeconfig(RENEWER)),
               "HADOOP_CONF_DIR": str(bed.hdfs.client_conf_dir()),
               "PYTHONPATH": os.pathsep.join(filter(None, (str(checkout), os.environ.get("PYTHONPATH"))))}
        argv = [sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(bed.renewer_keytab),
                "--principal", bed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache",
                str(bed.dir / f"cc-{namespace}"), "-n", namespace, "--listen", "127.0.0.1:18080"]
        self.began = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, cwd=checkout, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        _wait("http://127.0.0.1:18080/readyz", 600)
        self.ready_s = time.perf_counter() - self.began
        time.sleep(1.0)  # let the first scheduling pass settle before reading memory
        self.rss_mb = _rss_mb(self.proc.pid)

    def metrics(self) -> dict[str, float]:
        text = requests.get("http://127.0.0.1:18080/metrics", timeout=5).text
        return {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines() if ln.startswith("spark_secrets_")}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000,100000",
                        help="Secret counts to measure (default 1000,10000,100000)")
    parser.add_argument("--checkout", action="append", type=Path, default=[],
                        help="also start the service of this source tree (e.g. a git worktree of an older commit) on the "
                             "same Secrets, to compare its start and memory in the same run (repeatable)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per count of a bare streaming list and each tree's start (default 3)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    others = [c.resolve() for c in args.checkout]
    for checkout in (ROOT, *others):
        compileall.compile_dir(checkout / "spark_secrets", quiet=1)
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp), components=("kdc", "hdfs", "kube")) as bed:
        assert bed.kube is not None and bed.hdfs is not None
        kube = bed.kube
        kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "bench-renewer"},
                    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "patch"]},
                              {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]})
        kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "bench-renewer"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-renewer"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": RENEWER}]})
        admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(kube.kubeconfig("admin"))))
        peer = KubeClient.from_config(str(kube.kubeconfig("admin")))
        os.environ["KRB5CCNAME"] = f"FILE:{bed.ticket_cache('alice')}"
        filesystem = bed.hdfs.webhdfs_url
        bulk = obtain_tokens([filesystem], RENEWER, SpnegoAuth())
        seal = Seal.from_file(bed.renewer_keytab)  # the service's own key (it is given no --seal-key-file)
        now = int(time.time() * 1000)
        far = now + 20 * 3_600_000

        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench-empty"}})
        empty = _Service(bed, "bench-empty", bed.dir / "r-empty.log")
        empty.stop()
        print("renew service: start to ready and memory, against a bare metadata list of the same Secrets "
              f"and the same service with none (real API server, etcd; the service from {ROOT})")
        print(f"  {0:>6} Secrets: ready in {empty.ready_s:6.2f} s, RSS {empty.rss_mb:6.1f} MB (the idle process)")
        idle: dict[Path, _Service] = {}
        for checkout in others:
            idle[checkout] = _Service(bed, "bench-empty", bed.dir / "r-empty-other.log", checkout)
            idle[checkout].stop()
            print(f"  {0:>6} Secrets: ready in {idle[checkout].ready_s:6.2f} s, RSS {idle[checkout].rss_mb:6.1f} MB "
                  f"(the idle process of {checkout})")
        for count in (int(c) for c in args.counts.split(",")):
            ns = f"bench-{count}"
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            began = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                for _ in pool.map(lambda i: _create_sealed(
                        admin, seal, ns, _secret(f"job-{i:06d}-hadoop-tokens", bulk, far, filesystem, now)), range(count)):
                    pass
            print(f"  ({count} Secrets created in {time.perf_counter() - began:.1f} s)", flush=True)
            began = time.perf_counter()
            pages: list[int] = []
            peer.list_secret_metadata(ns, TOKEN_SECRET_SELECTOR, lambda items: pages.append(len(items)))
            paged_s = time.perf_counter() - began
            assert sum(pages) == count, sum(pages)
            # Rounds: the bare streaming list, then each tree's service on the same Secrets (none renewed yet); the
            # ratio is taken per round, since the list's own time varies by a half from one list to the next.
            trees = (*others, ROOT)
            lists: list[float] = []
            starts: dict[Path, list[_Service]] = {c: [] for c in trees}
            for _ in range(args.rounds):
                began = time.perf_counter()
                assert _streamed(peer, ns) == count
                lists.append(time.perf_counter() - began)
                for checkout in trees:
                    starts[checkout].append(_Service(bed, ns, bed.dir / f"r{count}-start.log", checkout))
                    starts[checkout][-1].stop()
            list_s = statistics.median(lists)
            for checkout, runs in starts.items():
                ready = statistics.median(r.ready_s for r in runs)
                ratio = statistics.median(r.ready_s / listed for r, listed in zip(runs, lists))
                rss = statistics.median(r.rss_mb for r in runs)
                base = idle[checkout].rss_mb if checkout in idle else empty.rss_mb
                print(f"  {count:>6} Secrets: ready in {ready:6.2f} s, x{ratio:.2f} of the bare streaming list "
                      f"({list_s:.2f} s; medians of {args.rounds} rounds, the ratio per round), "
                      f"{(rss - base) * 1024 / count:.2f} KB per Secret above idle: the service of {checkout}", flush=True)
            service = _Service(bed, ns, bed.dir / f"r{count}.log")
            try:
                # 20 Secrets with real, distinct tokens, due now: API writes per renewal.
                due_now = int(time.time() * 1000)
                for i in range(20):  # last renewed 10 min ago, expiring in 60 s: due at once
                    creds = obtain_tokens([filesystem], RENEWER, SpnegoAuth())
                    admin.create_namespaced_secret(ns, _secret(f"due-{i:02d}-hadoop-tokens", creds, due_now + 60_000,
                                                               filesystem, due_now - 600_000), _preload_content=False)
                deadline = time.monotonic() + 120
                metrics: dict[str, float] = {}
                while time.monotonic() < deadline:
                    metrics = service.metrics()
                    if metrics.get("spark_secrets_renewals_total", 0) >= 20:
                        break
                    time.sleep(0.2)
                renewals = max(1.0, metrics["spark_secrets_renewals_total"])
                writes = metrics["spark_secrets_api_writes_total"] / renewals
                reads = (metrics["spark_secrets_api_requests_total"] - metrics["spark_secrets_api_writes_total"]) / renewals
            finally:
                service.stop()
            per_secret_kb = (service.rss_mb - empty.rss_mb) * 1024 / count
            print(f"  {count:>6} Secrets: once more, ready in {service.ready_s:6.2f} s (bare paged list {paged_s:5.2f} s; "
                  f"idle start {empty.ready_s:.2f} s), RSS {service.rss_mb:6.1f} MB = {per_secret_kb:.2f} KB per Secret "
                  f"above idle; per renewal {writes:.2f} API writes and {reads:.2f} reads "
                  f"({int(metrics['spark_secrets_renewals_total'])} renewals)", flush=True)
            admin.delete_namespace(ns, _preload_content=False)  # the next count starts from a quieter API server
    return 0


if __name__ == "__main__":
    sys.exit(main())
