"""Benchmark: how fast the JVM refresher makes a swapped token file active, and what it costs idle.

    python3 benchmarks/plugin.py [--swaps N] [--idle SECONDS]

A plain Hadoop JVM runs the plugin's refresher (tests/jvm/plugin/RefresherHarness) on a Secret
volume laid out as kubelet writes it; this script swaps real delegation tokens into it and reads
the moment each new token is in the JVM's current user. Compared in the same run: directory
watching (the default) against polling alone, and idle CPU with each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.plugin.jar import jar_path
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.jvm import compile_java
from spark_secrets.testbed.projection import SecretVolume

HARNESS = Path(__file__).resolve().parent.parent / "tests" / "jvm" / "plugin"
KEY = "hadoop-tokens"


def _harness(bed: Testbed, classes: Path, jar: Path, volume: SecretVolume, seconds: float, poll_ms: int,
             watch: bool, log: Path) -> subprocess.Popen[str]:
    assert bed.hdfs is not None
    argv = bed.hdfs.java_argv("io.sparksecrets.plugin.RefresherHarness", "follow", str(volume.path(KEY)),
                              str(seconds), str(poll_ms), str(watch).lower(), conf_dir=bed.hdfs.client_conf_dir(),
                              extra_classpath=[classes, jar])
    proc = subprocess.Popen(argv, env=bed.hdfs.java_env(), stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    return proc


def swap_delays(bed: Testbed, classes: Path, jar: Path, contents: list[bytes], swaps: int, poll_ms: int,
                watch: bool) -> list[float]:
    volume = SecretVolume(bed.dir / f"vol-{poll_ms}-{watch}")
    volume.update({KEY: contents[0]})
    spacing = 1.5 if watch else max(1.5, poll_ms / 1000 * 1.5)
    proc = _harness(bed, classes, jar, volume, swaps * spacing + 3, poll_ms, watch, bed.dir / f"h-{poll_ms}.log")
    time.sleep(1)
    swapped_at = []
    for i in range(1, swaps + 1):
        volume.update({KEY: contents[i % 2]})
        swapped_at.append(time.time() * 1000)
        time.sleep(spacing * random.uniform(0.8, 1.2))
    out, _ = proc.communicate()
    active = [float(line.split()[2]) for line in out.splitlines() if line.startswith("ACTIVE")]
    delays = []
    for at in active:
        before = [s for s in swapped_at if s <= at]
        if before:
            delays.append(at - before[-1])
    return delays


def idle_cpu(bed: Testbed, classes: Path, jar: Path, content: bytes, seconds: float, poll_ms: int,
             watch: bool) -> float:
    """CPU milliseconds per hour that the refresher thread uses with nothing changing."""
    volume = SecretVolume(bed.dir / f"idle-{poll_ms}-{watch}")
    volume.update({KEY: content})
    proc = _harness(bed, classes, jar, volume, seconds, poll_ms, watch, bed.dir / f"idle-{poll_ms}.log")
    out, _ = proc.communicate()
    cpu_ns = next(int(line.split()[1]) for line in out.splitlines() if line.startswith("CPU_NS"))
    return cpu_ns / 1e6 / seconds * 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=20, help="token swaps per mode (default 20)")
    parser.add_argument("--idle", type=float, default=30, help="seconds of idle measurement per mode (default 30)")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp), components={"kdc", "hdfs"}) as bed:
        assert bed.hdfs is not None
        os.environ["KRB5CCNAME"] = f"FILE:{bed.ticket_cache('alice')}"
        contents = [obtain_tokens([bed.hdfs.webhdfs_url], RENEWER, SpnegoAuth()).to_bytes() for _ in range(2)]
        jar = jar_path()
        classes = compile_java(sorted(HARNESS.glob("*.java")), bed.dir / "harness", classpath=[jar])
        print(f"swap -> new token active in the JVM ({args.swaps} kubelet-style swaps per mode)")
        results = {}
        for name, poll_ms, watch in (("watch + poll 10 s (default)", 10_000, True),
                                     ("poll only, every 1 s", 1_000, False)):
            delays = swap_delays(bed, classes, jar, contents, args.swaps, poll_ms, watch)
            results[name] = statistics.median(delays)
            print(f"  {name:<30} median {statistics.median(delays):8.1f} ms   max {max(delays):8.1f} ms   "
                  f"({len(delays)} seen)", flush=True)
        (w, wm), (p, pm) = results.items()
        print(f"  ratio: {p} / {w} = x{pm / wm:.0f}")
        print(f"\nidle CPU of the refresher thread ({args.idle:.0f} s each, extrapolated)")
        for name, poll_ms, watch in (("watch + poll 10 s (default)", 10_000, True),
                                     ("poll only, every 1 s", 1_000, False)):
            ms_per_hour = idle_cpu(bed, classes, jar, contents[0], args.idle, poll_ms, watch)
            print(f"  {name:<30} {ms_per_hour:8.1f} ms CPU per hour ({ms_per_hour / 36_000:.5f} % of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
