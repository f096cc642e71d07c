"""Benchmark: the time the submission steps add to a spark-submit, against the time Spark's own
built-in Kerberos step adds (its JVM obtaining tokens from the same TGT), in the same run.

    python3 benchmarks/submit.py [--rounds N] [--kinds hdfs|all]

With ``--kinds all`` the job needs every kind of token issues 16 and 30 name: its filesystem is an HDFS
whose NameNode names a KMS (encryption zones), a Kerberized Hive metastore is configured
(``spark.hadoop.hive.metastore.*``) and a Kerberized Kafka broker (``spark.kafka.clusters.c1.*``), which
Spark's built-in step (its ``KafkaDelegationTokenProvider``, with Spark's Kafka connector jars on every
spark-submit's class path through ``SPARK_DIST_CLASSPATH``) and spark-secrets both read, so each side
obtains HDFS, KMS, Hive metastore and Kafka tokens; the kinds each side wrote into its Secret are read
back and printed, so the comparison is like for like.

Every spark-submit runs in cluster mode against the test bed's API server and returns once the
driver pod exists. "Added" time is measured against the same spark-submit with Hadoop security off
(no HADOOP_CONF_DIR), which obtains no tokens and makes no token Secret: per round (variants in a
random order), each variant's difference to that round's baseline; the median of those is printed,
and the difference of the fastest runs. One more untimed run of each spark-submit counts the
classes its JVM loads: work done, whatever else the machine is doing. Both entry points are timed:
``spark-secrets conf`` plus spark-submit with the flags it prints (issue 15's goal: at most 0.25 of
what the built-in step adds), and ``spark-secrets submit`` around the same spark-submit, run through a script
that notes when spark-submit started and ended, so that the wrapper's own time is printed apart from
spark-submit's spread between rounds (about a second with Spark's Kafka connector on its class path). CPU time
(user + system, children included) is printed beside wall time as a cross-check on a busy machine.
The test bed runs without its kubelet node (no pod needs to run); the CLI runs from this checkout,
byte-compiled first as ``pip install`` compiles an installed package (with PYTHONDONTWRITEBYTECODE
set and no ``__pycache__``, every start would compile the sources again: about 70 ms here).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout, not an installed copy
sys.path.insert(0, str(ROOT / "benchmarks"))

from spark_secrets.hadoop.credentials import Credentials  # noqa: E402
from spark_secrets.kube.client import KubeClient  # noqa: E402
from spark_secrets.testbed.bed import RENEWER, Testbed  # noqa: E402
from spark_secrets.testbed.hadoop import SecureHdfs  # noqa: E402
from spark_secrets.testbed.kafka import KafkaBroker  # noqa: E402
from spark_secrets.testbed.kms import Kms  # noqa: E402
from spark_secrets.testbed.kube import KubeControlPlane  # noqa: E402
from spark_secrets.testbed.metastore import HiveMetastore  # noqa: E402
from spark_secrets.testbed.paths import cache_dir  # noqa: E402
from spark_secrets.testbed.spark import cluster_submit_argv, spark_env  # noqa: E402
from submit_steps.submission import Submission  # noqa: E402

from cli_imports import byte_compile  # noqa: E402


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def _run(argv: list[str], env: dict[str, str], what: str) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, of the process and everything it waited for) of one
    command, and its stdout. CPU time is the cross-check on a busy machine: other processes stretch
    the wall time, not the work done."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed (exit status {proc.returncode}): {proc.stderr[-2000:]}{proc.stdout[-1000:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), proc.stdout


@dataclass
class _Servers:
    cluster: SecureHdfs
    metastore: HiveMetastore
    kafka: KafkaBroker


def _all_kinds(bed: Testbed, tmp: Path) -> _Servers:
    """A KMS, an HDFS whose NameNode names it, and a Kerberized metastore, in the bed's realm (stopped
    with the bed's directory: the processes end when the benchmark's process group does)."""
    kdc = bed.kdc_required()
    kms = Kms(tmp / "kms", kdc)
    kms.start()
    cluster = SecureHdfs(tmp / "hdfs-ez", kdc, key_provider=kms.provider_uri)
    cluster.start()
    cluster.make_home_dirs(["alice"])
    metastore = HiveMetastore(tmp / "metastore", kdc)
    metastore.start()
    kafka = KafkaBroker(tmp / "kafka", kdc)
    kafka.start()
    atexit.register(lambda: [s.stop() for s in (kafka, metastore, cluster, kms)])
    return _Servers(cluster, metastore, kafka)


def _kinds_in(kube: KubeControlPlane, name_part: str, key: str | None) -> str:
    """The token kinds in the newest Secret of namespace alice whose name has ``name_part``."""
    items = [s for s in kube.request("GET", "/api/v1/namespaces/alice/secrets").get("items", [])
             if name_part in s["metadata"]["name"] and not s["metadata"]["name"].endswith("-delegation-tokens")
             or name_part == "-delegation-tokens" and s["metadata"]["name"].endswith(name_part)]
    if not items:
        return "(no Secret found)"
    newest = max(items, key=lambda s: s["metadata"]["creationTimestamp"])
    data = newest.get("data") or {}
    raw = data.get(key) if key else next(iter(data.values()), None)
    if raw is None:
        return "(no token file)"
    return ", ".join(sorted({t.kind for t in Credentials.from_bytes(base64.b64decode(raw))}))


def _class_name(line: str) -> str:
    """The class a ``-Xlog:class+load`` line names, with the run-unique suffix of a lambda or generated class
    (``Foo$$Lambda/0x...``, ``LambdaForm$MH/0x...``) cut off."""
    name = line.split()[1]
    for marker in ("$$Lambda", "/0x", "$Proxy"):
        name = name.split(marker, 1)[0]
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="repetitions per variant (default 5)")
    parser.add_argument("--kinds", choices=("hdfs", "all"), default="hdfs",
                        help="hdfs: HDFS tokens only; all: HDFS, KMS, Hive metastore and Kafka tokens (default hdfs)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp), components=("kdc", "hdfs", "kube")) as bed:
        assert bed.kube is not None and bed.hdfs is not None
        server = bed.kube.server
        env = spark_env(bed.env("alice", bed.ticket_cache("alice")))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        insecure = {k: v for k, v in env.items() if k != "HADOOP_CONF_DIR"}
        ours = {"spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": bed.hdfs.uri,
                "spark.secrets.renewer": RENEWER}
        shared: dict[str, str] = {}  # conf both sides get
        if args.kinds == "all":
            servers = _all_kinds(bed, Path(tmp))
            env["HADOOP_CONF_DIR"] = str(servers.cluster.client_conf_dir())
            ours["spark.secrets.hadoop.filesystems"] = servers.cluster.uri
            shared = {f"spark.hadoop.{k}": v for k, v in servers.metastore.client_conf().items()}
            shared.update({"spark.kafka.clusters.c1.auth.bootstrap.servers": servers.kafka.bootstrap,
                           "spark.kafka.clusters.c1.security.protocol": "SASL_PLAINTEXT"})
            ours.update(shared)
            # Spark's Kafka token provider (and the client it uses) on every spark-submit's class path alike.
            jars = os.pathsep.join(str(j) for j in sorted((cache_dir() / "spark-kafka" / "lib").glob("*.jar")))
            env["SPARK_DIST_CLASSPATH"] = insecure["SPARK_DIST_CLASSPATH"] = jars
        cli = [sys.executable, "-m", "spark_secrets"]
        wall: dict[str, list[float]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)

        def sample(key: str, argv: list[str], environment: dict[str, str]) -> str:
            w, c, out = _run(argv, spark_env(environment), key)
            wall[key].append(w)
            cpu[key].append(c)
            return out

        def spark_submit(name: str, extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
            argv = cluster_submit_argv(server, "alice", name, conf=shared)
            return [argv[0], *extra, *argv[1:]]

        def conf_then_submit(r: int) -> None:
            conf_args = ["--name", f"bench-ours-{r}"] + [x for k, v in ours.items() for x in ("--conf", f"{k}={v}")]
            flags = sample("conf-cli", [*cli, "conf", "--", *conf_args], env)
            sample("ours-submit", spark_submit(f"bench-ours-{r}", shlex.split(flags)), env)

        # The wrapper runs spark-submit through a script that notes when it started and ended it, so that the
        # wrapper's own time (before and after spark-submit) is known apart from spark-submit's spread.
        timed = Path(tmp) / "timed-spark-submit"
        marks = Path(tmp) / "marks"
        timed.write_text(f'#!/bin/sh\ndate +%s%N >> {marks}\n"$SPARK_SUBMIT_BIN" "$@"\nrc=$?\n'
                         f'date +%s%N >> {marks}\nexit $rc\n')
        timed.chmod(0o755)

        def wrapped(r: int) -> None:
            argv = spark_submit(f"bench-wrapped-{r}", [x for k, v in ours.items() for x in ("--conf", f"{k}={v}")])
            marks.unlink(missing_ok=True)
            sample("wrapper", [*cli, "submit", "--spark-submit", str(timed), "--", *argv[1:]],
                   {**env, "SPARK_SUBMIT_BIN": argv[0]})
            began, ended = (int(x) for x in marks.read_text().split())
            wall["wrapper-own"].append(wall["wrapper"][-1] - (ended - began) / 1e9)

        variants = [lambda r: sample("baseline", spark_submit(f"bench-base-{r}"), insecure),
                    lambda r: sample("builtin", spark_submit(f"bench-builtin-{r}"), env), conf_then_submit, wrapped]
        print(f"one cluster-mode spark-submit to the test bed's API server ({args.rounds} rounds, variants in a "
              "random order per round)", flush=True)
        for r in range(args.rounds):
            for variant in random.Random(r).sample(variants, len(variants)):
                variant(r)
            sample("python", [sys.executable, "-c", "pass"], env)
            os.environ.update(KRB5CCNAME=env["KRB5CCNAME"], HADOOP_CONF_DIR=env["HADOOP_CONF_DIR"])
            kube = KubeClient.from_config(env["KUBECONFIG"])
            sub = Submission({**ours, "spark.app.name": f"bench-inproc-{r}"}, kube, progress=lambda _: None)
            wall["steps"].append(_timed(sub.prepare))
            sub.cleanup()

        # Work done, not time: the classes each spark-submit JVM loads (one more, untimed run each).
        classes: dict[str, int] = {}
        loaded: dict[str, set[str]] = {}
        conf_args = ["--name", "bench-classes"] + [x for k, v in ours.items() for x in ("--conf", f"{k}={v}")]
        flags = _run([*cli, "conf", "--", *conf_args], env, "conf")[2]
        for key, environment, extra in (("baseline", insecure, []), ("builtin", env, []),
                                        ("ours-submit", env, shlex.split(flags))):
            log = Path(tmp) / f"classes-{key}.log"
            opts = f"{environment.get('SPARK_SUBMIT_OPTS', '')} -Xlog:class+load=info:file={log}".strip()
            _run(spark_submit(f"bench-classes-{key}", extra), {**environment, "SPARK_SUBMIT_OPTS": opts}, key)
            loaded[key] = {_class_name(line) for line in log.open() if "class,load" in line and len(line.split()) > 1}
            classes[key] = sum(1 for _ in log.open())

        if args.kinds == "all":
            print("  token kinds in each side's Secret: built-in "
                  f"{_kinds_in(bed.kube, '-delegation-tokens', 'hadoop-tokens')}; spark-secrets "
                  f"{_kinds_in(bed.kube, 'bench-', None)}", flush=True)

        def med(values: list[float]) -> float:
            return statistics.median(values) * 1000

        def added(samples: dict[str, list[float]], plus: tuple[str, ...]) -> float:
            """Median over rounds of (the variant's time - that round's baseline)."""
            return med([sum(samples[k][r] for k in plus) - samples["baseline"][r] for r in range(args.rounds)])

        def added_min(plus: tuple[str, ...]) -> float:
            """Difference of the fastest runs: other processes on the machine only ever add time."""
            return (sum(min(wall[k]) for k in plus) - min(wall["baseline"])) * 1000

        rows = [
            ("spark-submit, Hadoop security off (baseline)", "baseline"),
            ("spark-submit, Spark's built-in Kerberos step (TGT)", "builtin"),
            ("spark-secrets conf (cold CLI: preflight, tokens, Secret)", "conf-cli"),
            ("  of which the steps in a warm process (Submission.prepare)", "steps"),
            ("  (for scale: an empty Python process, python3 -c pass)", "python"),
            ("spark-submit with spark-secrets' flags", "ours-submit"),
            ("spark-secrets submit (the wrapper around that spark-submit)", "wrapper"),
            ("  of which the wrapper's own, before and after spark-submit", "wrapper-own"),
        ]
        print(f"  {'':<62} {'wall median':>12} {'wall min':>10} {'CPU median':>12}")
        for name, key in rows:
            cpu_text = f"{med(cpu[key]):9.0f} ms" if key in cpu else ""
            print(f"  {name:<62} {med(wall[key]):9.0f} ms {min(wall[key]) * 1000:7.0f} ms {cpu_text}")
        print(f"\n  added time {'':<42} {'wall median':>12} {'wall min':>10} {'CPU median':>12}   ratios to built-in")
        builtin = ("builtin",)
        for label, plus in (("by Spark's built-in step", builtin),
                            ("by spark-secrets conf + its flags", ("conf-cli", "ours-submit")),
                            ("by spark-secrets submit", ("wrapper",))):
            line = f"  {label:<53} {added(wall, plus):9.0f} ms {added_min(plus):7.0f} ms {added(cpu, plus):9.0f} ms"
            if plus != builtin:
                line += (f"   x{added(wall, plus) / added(wall, builtin):.2f}  x{added_min(plus) / added_min(builtin):.2f}"
                         f"  x{added(cpu, plus) / added(cpu, builtin):.2f}")
            print(line)
        own = med(wall["wrapper-own"])
        print(f"  the wrapper's own time {own:.0f} ms (x{own / added(wall, builtin):.2f} of the built-in step) beside "
              "spark-submit with the flags: what spark-secrets submit adds beyond spark-secrets conf's flags")
        print(f"\n  classes loaded by spark-submit's JVM: baseline {classes['baseline']}, built-in step "
              f"{classes['builtin']} ({classes['builtin'] - classes['baseline']:+d}), with spark-secrets' flags "
              f"{classes['ours-submit']} ({classes['ours-submit'] - classes['baseline']:+d})")
        # What the flags make the JVM load beyond the baseline, by package (issue 33: only what submission needs);
        # lambdas and generated classes count by their defining class, so that their run-unique names match.
        extra = loaded["ours-submit"] - loaded["baseline"]
        packages: dict[str, int] = defaultdict(int)
        for name in extra:
            packages[name.rpartition(".")[0]] += 1
        print("  loaded with spark-secrets' flags and not in the baseline, by package: " + ", ".join(
            f"{package} {count}" for package, count in sorted(packages.items(), key=lambda kv: -kv[1])[:25]))
        conf = ("conf-cli", "ours-submit")
        print(f"\n  issue 15, spark-secrets conf + flags / built-in: x{added(wall, conf) / added(wall, builtin):.2f} "
              f"(medians of differences), x{added_min(conf) / added_min(builtin):.2f} (fastest runs); goal <= x0.25")
    return 0


if __name__ == "__main__":
    sys.exit(main())
