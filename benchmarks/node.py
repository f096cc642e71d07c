"""Benchmark: what a real kubelet node shows a running job.

    python3 benchmarks/node.py [--trials N]     (root: it starts the test bed with its node)

1. kubelet's delay from a Secret update to the new file content inside a running container
   (a pod that reads its Secret volume every 20 ms; times from the container runtime's log stamps).
2. In the same run, from the moment a re-issued token is written into a job's token Secret (as the
   renew service writes it) to the moment the executor JVM's refresher plugin uses it (its log line
   naming the new sequence number), for a PySpark job with executors in pods.
Prints median and max of each, kubelet's sync settings, and what the plugin adds on top of kubelet.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import re
import statistics
import sys
import subprocess
import tempfile
import time
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import KRB5_CONFIG_MAP, RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.spark import (IMAGE_PLUGIN_JAR, JOBS_CONFIG_MAP, JOBS_DIR, node_job_conf,
                                         node_pod_template, spark_env)

SCRIPTS = Path(__file__).resolve().parent.parent / "tests" / "scripts"
READER = ("import os,sys,time\nlast=None\nwhile True:\n    try: v=open('/secret/value').read()\n"
          "    except OSError: v=None\n    if v!=last: print('SEEN',v,flush=True); last=v\n    time.sleep(0.02)\n")


def _stamp(line: str) -> float:
    """Seconds since the epoch of a log line with the container runtime's RFC 3339 stamp."""
    text = line.split(" ", 1)[0]
    whole, _, frac = text.rstrip("Z").partition(".")
    base = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.timezone.utc).timestamp()
    return base + float(f"0.{frac or 0}")


def _wait_log(api: k8s.CoreV1Api, pod: str, ns: str, pattern: str, after: float, timeout: float = 180) -> float:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            text = api.read_namespaced_pod_log(pod, ns, timestamps=True, since_seconds=600) or ""
        except k8s.exceptions.ApiException:  # the container has not started yet
            text = ""
        for line in text.splitlines():
            if re.search(pattern, line) and _stamp(line) >= after - 0.5:
                return _stamp(line)
        time.sleep(0.2)
    raise SystemExit(f"{pod}: no log line matching {pattern!r} within {timeout:.0f} s")


def kubelet_delay(bed: Testbed, api: k8s.CoreV1Api, trials: int) -> list[float]:
    assert bed.node is not None
    api.create_namespaced_secret("alice", {"metadata": {"name": "bench-secret"}, "stringData": {"value": "0"}})
    api.create_namespaced_pod("alice", {"metadata": {"name": "bench-reader"}, "spec": {
        "containers": [{"name": "reader", "image": bed.node.images_imported["spark"], "imagePullPolicy": "Never",
                        "command": ["python3", "-c", READER],
                        "volumeMounts": [{"name": "s", "mountPath": "/secret"}]}],
        "volumes": [{"name": "s", "secret": {"secretName": "bench-secret"}}]}})
    _wait_log(api, "bench-reader", "alice", r"SEEN 0", 0)
    delays = []
    for i in range(1, trials + 1):
        time.sleep(1 + (i % 3))  # not in step with kubelet's sync loop
        began = time.time()
        api.patch_namespaced_secret("bench-secret", "alice", {"stringData": {"value": str(i)}})
        delays.append(_wait_log(api, "bench-reader", "alice", rf"SEEN {i}$", began) - began)
        print(f"  secret update {i}: visible in the container after {delays[-1]:.2f} s", flush=True)
    api.delete_namespaced_pod("bench-reader", "alice", grace_period_seconds=0)
    return delays


def plugin_delay(bed: Testbed, api: k8s.CoreV1Api, trials: int, workdir: Path) -> list[float]:
    assert bed.hdfs is not None and bed.kube is not None and bed.node is not None and bed.kdc is not None
    api.create_namespaced_config_map("alice", {"metadata": {"name": JOBS_CONFIG_MAP},
                                               "data": {p.name: p.read_text() for p in SCRIPTS.glob("*.py")}})
    template = node_pod_template(workdir / "template.json", KRB5_CONFIG_MAP)
    conf = {**node_job_conf(bed.node.images_imported["spark"], bed.kube.server, template, executors=1),
            "spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": bed.hdfs.uri,
            "spark.secrets.renewer": RENEWER, "spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
            "spark.secrets.refresh.pollInterval": "60s"}  # only kubelet's swap can explain a quick pick-up
    env = spark_env(bed.env("alice", bed.ticket_cache("alice")))
    argv = [sys.executable, "-m", "spark_secrets", "submit", "--", "--master", f"k8s://{bed.kube.server}",
            "--deploy-mode", "cluster", "--name", "bench-refresh"]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    seconds = 40 + 20 * trials
    argv += [f"local://{JOBS_DIR}/refresh_job.py", f"{bed.hdfs.uri}/user/alice/bench", str(seconds), "2"]
    job = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return _reissue_delays(bed, api, trials, workdir)
    finally:
        job.terminate()  # spark-submit waits for the job; the measurements are done
        job.wait(60)


def _reissue_delays(bed: Testbed, api: k8s.CoreV1Api, trials: int, workdir: Path) -> list[float]:
    assert bed.hdfs is not None and bed.kdc is not None
    executor = None
    deadline = time.time() + 240
    while executor is None and time.time() < deadline:
        pods = api.list_namespaced_pod("alice", label_selector="spark-role=executor").items
        running = [p for p in pods if p.status.phase == "Running"]
        executor = running[0].metadata.name if running else None
        time.sleep(1)
    assert executor is not None, "no executor pod started"
    _wait_log(api, executor, "alice", r"now uses", 0)
    secret = next(s for s in api.list_namespaced_secret("alice").items
                  if (s.metadata.labels or {}).get("spark-secrets.io/app-name") == "bench-refresh")
    login = keytab_login(bed.kdc.principal(RENEWER_PRINCIPAL), bed.renewer_keytab, workdir / "renewer-cc")
    auth, hconf = SpnegoAuth(login.credentials), HadoopConf.load(bed.hdfs.client_conf_dir())
    delays = []
    for i in range(trials):
        time.sleep(2 + (i % 4))
        creds = obtain_tokens([bed.hdfs.uri], RENEWER, auth, doas="alice", conf=hconf)  # a re-issue, as the service does
        seq = next(t.decode_identifier().sequence_number for t in creds if t.is_delegation_token)
        began = time.time()
        api.patch_namespaced_secret(secret.metadata.name, "alice",
                                    {"data": {"hadoop-tokens": base64.b64encode(creds.to_bytes()).decode()}})
        delays.append(_wait_log(api, executor, "alice", rf"executor \d+ now uses .* seq {seq} ", began) - began)
        print(f"  re-issued token {seq}: in use by the executor JVM after {delays[-1]:.2f} s", flush=True)
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6, help="updates measured per part (default 6)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="spark-secrets-bench-node-"))
    with Testbed(workdir) as bed:
        assert bed.node is not None and bed.kube is not None
        api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))
        print(f"kubelet: syncFrequency {bed.node.sync_frequency}, Secret change detection: Watch (the default)")
        print("1. Secret update -> new file content in a running container")
        kubelet = kubelet_delay(bed, api, args.trials)
        print("2. re-issued token written into the job's Secret -> used by the executor JVM (plugin)")
        plugin = plugin_delay(bed, api, args.trials, workdir)
    med_k, med_p = statistics.median(kubelet), statistics.median(plugin)
    print(json.dumps({"trials": args.trials, "sync_frequency": "10s"}))
    print(f"kubelet projection: median {med_k:.2f} s, max {max(kubelet):.2f} s")
    print(f"write -> executor JVM uses it: median {med_p:.2f} s, max {max(plugin):.2f} s "
          f"(x{med_p / med_k:.2f} of kubelet's; the medians differ by {med_p - med_k:+.2f} s, within kubelet's "
          "sync jitter: the plugin's own reaction to the swap is ~20 ms, benchmarks/plugin.py)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
