"""Benchmark: the time the submission steps add to a spark-submit, against the time Spark's own
built-in Kerberos step adds (its JVM obtaining tokens from the same TGT), in the same run.

    python3 benchmarks/submit.py [--rounds N]

Every spark-submit runs in cluster mode against the test bed's API server and returns once the
driver pod exists. "Added" time is measured against the same spark-submit with Hadoop security off
(no HADOOP_CONF_DIR), which obtains no tokens and makes no token Secret. The test bed runs without
its kubelet node (no pod needs to run), and ``spark-secrets conf`` runs from this checkout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, not an installed copy

from spark_secrets.kube import KubeClient  # noqa: E402
from spark_secrets.testbed.bed import RENEWER, Testbed  # noqa: E402
from spark_secrets.testbed.spark import cluster_submit_argv, run_spark_submit, spark_env  # noqa: E402
from submit_steps.submission import Submission  # noqa: E402


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="repetitions per variant (default 3)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp), components=("kdc", "hdfs", "kube")) as bed:
        assert bed.kube is not None and bed.hdfs is not None
        server = bed.kube.server
        env = spark_env(bed.env("alice", bed.ticket_cache("alice")))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        insecure = {k: v for k, v in env.items() if k != "HADOOP_CONF_DIR"}
        ours = {"spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": bed.hdfs.uri,
                "spark.secrets.renewer": RENEWER}
        samples: dict[str, list[float]] = {k: [] for k in ("baseline", "builtin", "conf-cli", "steps", "ours-submit",
                                                            "python")}

        def submit(name: str, environment: dict[str, str], extra: list[str] = ()) -> float:  # type: ignore[assignment]
            argv = cluster_submit_argv(server, "alice", name)
            argv = [argv[0], *extra, *argv[1:]]
            began = time.perf_counter()
            proc = run_spark_submit(argv, environment)
            if proc.returncode != 0:
                raise SystemExit(f"spark-submit failed: {proc.stderr[-2000:]}")
            return time.perf_counter() - began

        print(f"one cluster-mode spark-submit to the test bed's API server ({args.rounds} rounds, medians)",
              flush=True)
        for r in range(args.rounds):
            samples["baseline"].append(submit(f"bench-base-{r}", insecure))
            samples["builtin"].append(submit(f"bench-builtin-{r}", env))
            conf_args = ["--name", f"bench-ours-{r}"] + [x for k, v in ours.items() for x in ("--conf", f"{k}={v}")]
            began = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "spark_secrets", "conf", "--", *conf_args], env=env,
                                  capture_output=True, text=True, timeout=300)
            samples["conf-cli"].append(time.perf_counter() - began)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            samples["ours-submit"].append(submit(f"bench-ours-{r}", env, shlex.split(proc.stdout)))
            samples["python"].append(_timed(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)))
            os.environ.update(KRB5CCNAME=env["KRB5CCNAME"], HADOOP_CONF_DIR=env["HADOOP_CONF_DIR"])
            kube = KubeClient.from_config(env["KUBECONFIG"])
            sub = Submission({**ours, "spark.app.name": f"bench-inproc-{r}"}, kube, progress=lambda _: None)
            samples["steps"].append(_timed(sub.prepare))
            sub.cleanup()
        med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
        builtin_added = med["builtin"] - med["baseline"]
        ours_added = med["conf-cli"] + (med["ours-submit"] - med["baseline"])
        rows = [
            ("spark-submit, Hadoop security off (baseline)", med["baseline"]),
            ("spark-submit, Spark's built-in Kerberos step (TGT)", med["builtin"]),
            ("spark-secrets conf (cold CLI: preflight, tokens, Secret)", med["conf-cli"]),
            ("  of which the steps in a warm process (Submission.prepare)", med["steps"]),
            ("  (for scale: an empty Python process, python3 -c pass)", med["python"]),
            ("spark-submit with spark-secrets' flags", med["ours-submit"]),
        ]
        for name, ms in rows:
            print(f"  {name:<62} {ms:8.0f} ms")
        print(f"\n  added by Spark's built-in step:  {builtin_added:8.0f} ms")
        print(f"  added by spark-secrets (conf + its flags): {ours_added:8.0f} ms   "
              f"ratio spark-secrets / built-in = x{ours_added / builtin_added:.2f} (goal <= x0.25)")
        print(f"  steps alone in a warm process:    {med['steps']:8.0f} ms   "
              f"ratio built-in / steps = x{builtin_added / med['steps']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
