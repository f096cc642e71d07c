"""Benchmark: obtaining a delegation token here against Hadoop's own Java client, in the same run,
on the real local test bed (MIT KDC + secure HDFS); and the codec's throughput.

    python3 benchmarks/tokens.py [--rounds N]

Prints medians and ratios (Hadoop time / spark-secrets time: above 1 means spark-secrets is faster). For the
cold ``tokens fetch`` also (issue 33) its share of Hadoop's fetcher's time, its distance from its limit (an
empty ``python3 -c pass`` plus the fetch's own round trips, timed in a warm process with a new SPNEGO
context), and what each top-level package it imports costs (``python3 -X importtime``: each package's
outermost modules, what they import included); and the same fetch in a plain venv, as a wheel installed in one
runs (this interpreter's .pth hooks cost 30 ms at every start here). The CLI runs from this checkout, byte-compiled first as
``pip install`` compiles an installed package (under PYTHONDONTWRITEBYTECODE, a changed module would be compiled
again at every start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from spark_secrets.hadoop.credentials import PROTOBUF, WRITABLE, Credentials
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.jvm import compile_java
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.webhdfs import WebHdfsClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_imports import OWN, ROOT, byte_compile, import_lines  # noqa: E402

JVM_SOURCES = Path(__file__).resolve().parent.parent / "tests" / "jvm"


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(action: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        out.append(time.perf_counter() - began)
    return out


def _row(name: str, ms: float, ratio_to: float | None = None) -> None:
    ratio = f"   x{ms / ratio_to:6.1f} of spark-secrets" if ratio_to else ""
    print(f"  {name:<58} {ms:9.1f} ms{ratio}", flush=True)


def bench_fetch(bed: Testbed, rounds: int) -> None:
    assert bed.hdfs is not None
    hdfs = bed.hdfs
    ccache = bed.ticket_cache("alice")
    os.environ["KRB5CCNAME"] = f"FILE:{ccache}"
    tools = compile_java([JVM_SOURCES / "FetchLoop.java"], bed.dir / "bench-jvm")
    out = bed.dir / "bench.tokens"

    print(f"\nobtaining one HDFS delegation token as alice (median of {rounds}; TGT in a ticket cache)")
    client = WebHdfsClient(hdfs.webhdfs_url, SpnegoAuth())
    client.get_delegation_token(RENEWER)  # warm-up: service ticket, connection
    py_warm = _median_ms(_timed(lambda: client.get_delegation_token(RENEWER), rounds))
    py_file = _median_ms(_timed(lambda: obtain_tokens([hdfs.webhdfs_url], RENEWER, SpnegoAuth()).save(out), rounds))
    # The command as users run it: pip's console script (no runpy, which -m loads), if this interpreter has one.
    script = Path(sys.executable).with_name("spark-secrets")
    entry = [str(script)] if script.is_file() else ["-m", "spark_secrets"]
    cli_argv = [sys.executable, *entry, "tokens", "fetch", "--namenode", hdfs.webhdfs_url, "--renewer", RENEWER,
                str(out)]
    env = bed.env("alice", ccache)
    py_cli = _median_ms(_timed(lambda: subprocess.run(cli_argv, env=env, check=True, capture_output=True), rounds))
    python = _median_ms(_timed(lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True), rounds))
    # The same two in a plain venv, as a wheel installed there runs: site without this interpreter's .pth hooks
    # (an editable install's finder and a CA bundle's, 30 ms at every start here), the same modules.
    venv_python = _plain_venv(bed.dir / "venv")
    venv_cli = _median_ms(_timed(lambda: subprocess.run([venv_python, *cli_argv[1:]], env=env, check=True,
                                                        capture_output=True), rounds))
    venv_pass = _median_ms(_timed(lambda: subprocess.run([venv_python, "-c", "pass"], env=env, check=True), rounds))
    packages = _import_costs(cli_argv[1:], {**env, "HOME": str(bed.dir)}, rounds)

    def hadoop_cli(*extra: str) -> Callable[[], object]:
        argv = hdfs.java_argv("org.apache.hadoop.hdfs.tools.DelegationTokenFetcher", *extra, "--renewer", RENEWER,
                              str(out), conf_dir=hdfs.client_conf_dir(), heap="256m")
        return lambda: subprocess.run(argv, env=hdfs.java_env(ccache), check=True, capture_output=True)

    jvm_web_cli = _median_ms(_timed(hadoop_cli("--webservice", hdfs.webhdfs_url), rounds))
    jvm_rpc_cli = _median_ms(_timed(hadoop_cli(), rounds))

    def jvm_loop(uri: str) -> float:
        proc = hdfs.run_client("FetchLoop", uri, RENEWER, str(rounds + 3), ccache=ccache, extra_classpath=[tools])
        if proc.returncode:
            raise SystemExit(f"FetchLoop failed: {proc.stderr.decode()[-500:]}")
        ns = [int(line.split()[1]) for line in proc.stdout.decode().splitlines() if line.startswith("fetch ")]
        return statistics.median(ns[3:]) / 1e6  # the first fetches warm the JVM up

    jvm_web_warm = jvm_loop(f"webhdfs://localhost:{hdfs.ports.http}")
    jvm_rpc_warm = jvm_loop(hdfs.uri)

    print(" command line, cold process each time (what a user's submission pays):")
    _row("spark-secrets tokens fetch (WebHDFS+SPNEGO)", py_cli)
    _row("Hadoop DelegationTokenFetcher --webservice (WebHDFS+SPNEGO)", jvm_web_cli, py_cli)
    _row("Hadoop DelegationTokenFetcher (RPC+SASL, what Spark uses)", jvm_rpc_cli, py_cli)
    limit = python + py_file
    print(f"  the cold fetch takes x{py_cli / jvm_web_cli:.2f} of Hadoop's fetcher over WebHDFS and x{py_cli / jvm_rpc_cli:.2f}"
          f" over RPC (goal <= x0.10); x{py_cli / limit:.2f} of its limit (goal <= x3): python3 -c pass {python:.1f} ms"
          f" + the fetch's round trips {py_file:.1f} ms")
    print(f"  in a plain venv (site without this interpreter's .pth hooks): {venv_cli:.1f} ms,"
          f" x{venv_cli / jvm_web_cli:.2f} of Hadoop's fetcher over WebHDFS and x{venv_cli / jvm_rpc_cli:.2f} over RPC;"
          f" x{venv_cli / (venv_pass + py_file):.2f} of its limit: python -c pass {venv_pass:.1f} ms + the round trips")
    print("  what the cold fetch's imports cost, by top-level package (ms, median; beyond python3 -c pass): "
          + ", ".join(f"{name} {ms:.1f}" for name, ms in packages))
    print(" in a warm process, per token:")
    _row("spark-secrets WebHdfsClient.get_delegation_token", py_warm)
    _row("spark-secrets obtain_tokens + save (new SPNEGO context)", py_file)
    _row("Hadoop WebHdfsFileSystem.addDelegationTokens", jvm_web_warm, py_warm)
    _row("Hadoop DistributedFileSystem.addDelegationTokens (RPC)", jvm_rpc_warm, py_warm)


def _plain_venv(where: Path) -> str:
    """A venv (``python3 -m venv``, no pip) whose one ``.pth`` names this checkout and this interpreter's
    packages: plain paths, so none of the ``.pth`` files beside those packages runs. Its python's path."""
    import site

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    packages = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                              capture_output=True, text=True).stdout.strip()
    Path(packages, "spark-secrets-bench.pth").write_text("\n".join([str(ROOT), *site.getsitepackages()]) + "\n")
    return str(python)


def _import_costs(argv: list[str], env: dict[str, str], rounds: int) -> list[tuple[str, float]]:
    """What a cold run of ``argv`` imports beyond ``python3 -c pass``, split without overlap: each package this
    project's modules import (its top-level name, with everything it pulls in: http's count has email's), and
    this project's own modules (the rest)."""
    baseline = {name for *_, name in import_lines(["-c", "pass"], env)[0]}
    costs: dict[str, list[float]] = {}
    for _ in range(rounds):
        lines, _ = import_lines(argv, env)
        sums: dict[str, float] = {}
        total = sum(us for depth, us, name in lines if depth == 0 and name not in baseline) / 1000
        ancestors: list[tuple[int, str]] = []  # importtime prints a module after what it imported: walk back
        for depth, us, name in reversed(lines):
            while ancestors and ancestors[-1][0] >= depth:
                ancestors.pop()
            top = name.partition(".")[0]
            parent = ancestors[-1][1].partition(".")[0] if ancestors else None
            if name not in baseline and top not in OWN and (parent is None or parent in OWN):
                sums[top] = sums.get(top, 0.0) + us / 1000
            ancestors.append((depth, name))
        sums["(this project's own modules)"] = total - sum(sums.values())
        for top, ms in sums.items():
            costs.setdefault(top, []).append(ms)
    medians = [(top, statistics.median(ms)) for top, ms in costs.items()]
    return sorted((kv for kv in medians if kv[1] >= 0.5), key=lambda kv: -kv[1])


def bench_codec(seconds: float = 1.0) -> None:
    ident = DelegationTokenIdentifier("alice", RENEWER, "", 1_795_000_000_000, 1_795_604_800_000, 12345, 7)
    token = Token(ident.encode(), os.urandom(20), "HDFS_DELEGATION_TOKEN", "10.0.0.1:8020")
    creds = Credentials({f"10.0.0.{i}:8020": token.with_service(f"10.0.0.{i}:8020") for i in range(10)})
    print(f"\ncodec throughput (one core, {seconds:.0f} s each)")
    for name, fn, size in [
        ("token file v0, 10 tokens: write", lambda: creds.to_bytes(WRITABLE), len(creds.to_bytes(WRITABLE))),
        ("token file v0, 10 tokens: read", lambda: Credentials.from_bytes(creds.to_bytes(WRITABLE)), 0),
        ("token file v1, 10 tokens: write", lambda: creds.to_bytes(PROTOBUF), len(creds.to_bytes(PROTOBUF))),
        ("token URL string: encode", token.encode_url, len(token.to_bytes())),
        ("token URL string: decode", lambda: Token.decode_url(token.encode_url()), 0),
        ("identifier: decode", lambda: DelegationTokenIdentifier.decode(ident.encode()), 0),
    ]:
        n, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds:
            for _ in range(100):
                fn()
            n += 100
        rate = n / (time.perf_counter() - began)
        mb = f", {rate * size / 1e6:6.1f} MB/s" if size else ""
        print(f"  {name:<40} {rate:12,.0f} ops/s{mb}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="repetitions per measurement (default 7)")
    args = parser.parse_args()
    bench_codec()
    byte_compile()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp:
        bed = Testbed(Path(tmp), components={"kdc", "hdfs"})
        bed.start()
        try:
            bench_fetch(bed, args.rounds)
        finally:
            bed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
