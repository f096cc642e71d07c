"""Benchmark: Python reading secure HDFS with the job's token (spark_secrets.runtime) against the JVM
readers, in the same run, on the test bed's HDFS, holding only a token file (no ticket cache).

    python3 benchmarks/runtime.py [--gib 1.0] [--rounds 2]

1. A Parquet dataset of about ``--gib`` GiB (random doubles and hex strings, so it does not shrink),
   written by Spark (JVM, local mode), is read whole through ``arrow_filesystem()`` with
   ``pyarrow.dataset`` (batches, as a pandas UDF streams them) and by Spark's own Parquet reader
   (``write.format("noop")`` forces every column of every row); ratio = Spark's time / Python's.
2. A plain file of the same size (random bytes, put by Hadoop's own ``hdfs dfs -put``) is read by
   ``hdfs_client().read()`` (HdfsCLI, WebHDFS) and by ``hdfs dfs -cat`` (the JVM client over RPC);
   the JVM's start is measured on a tiny file and shown apart.
The best of ``--rounds`` rounds is printed for each, with MiB/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow.dataset as ds  # noqa: E402

from spark_secrets.tokens.fetcher import obtain_tokens  # noqa: E402
from spark_secrets.hadoop.conf import HadoopConf  # noqa: E402
from spark_secrets.login.kerberos import current_ticket_cache  # noqa: E402
from spark_secrets.runtime import arrow_filesystem, hdfs_client  # noqa: E402
from spark_secrets.login.spnego import SpnegoAuth  # noqa: E402
from spark_secrets.testbed.bed import RENEWER, Testbed  # noqa: E402
from spark_secrets.testbed.spark import spark_env  # noqa: E402

MIB = 1 << 20
#: Bytes per row of the dataset on disk (measured: a long, a double and a 64-character hex string).
ROW_BYTES = 78

SPARK_JOB = textwrap.dedent("""
    import sys, time
    from pyspark.sql import SparkSession
    mode, path, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spark = SparkSession.builder.master("local[2]").appName("runtime-bench").getOrCreate()
    if mode == "write":
        spark.range(0, rows, numPartitions=8).selectExpr(
            "id", "rand() as d", "sha2(cast(id * rand() as string), 256) as s").write.mode("overwrite").parquet(path)
    else:
        spark.read.parquet(path).count()  # warm: the JVM's classes and the HDFS client, not the data
        began = time.perf_counter()
        spark.read.parquet(path).write.format("noop").mode("overwrite").save()
        print("SECONDS", time.perf_counter() - began, flush=True)
    spark.stop()
""")


def _spark(bed: Testbed, env: dict[str, str], *args: str) -> float:
    proc = subprocess.run([sys.executable, "-c", SPARK_JOB, *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"Spark {args[0]} failed:\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SECONDS ")]
    return float(lines[0].split()[1]) if lines else 0.0


def _java(bed: Testbed, tokens: Path, *args: str) -> float:
    assert bed.hdfs is not None
    argv = bed.hdfs.java_argv("org.apache.hadoop.fs.FsShell", *args, conf_dir=bed.hdfs.client_conf_dir(), heap="512m")
    began = time.perf_counter()
    subprocess.run(argv, env=bed.hdfs.java_env(None, tokens), stdout=subprocess.DEVNULL, check=True, timeout=1800)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0, help="size of the dataset and of the file (default 1)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each read; the best is printed")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_SECRETS_TESTBED_QUIET", "1")
    size = int(args.gib * (1 << 30))
    with tempfile.TemporaryDirectory(prefix="spark-secrets-bench-") as tmp, \
            Testbed(Path(tmp), components=("kdc", "hdfs")) as bed:
        hdfs = bed.hdfs
        assert hdfs is not None
        alice = current_ticket_cache(f"FILE:{bed.ticket_cache('alice')}")
        tokens = obtain_tokens([hdfs.uri], RENEWER, SpnegoAuth(alice.credentials),
                               conf=HadoopConf.load(hdfs.client_conf_dir())).save(Path(tmp) / "job.tokens")
        # From here on, only the token file: the ticket cache is gone for every reader.
        os.environ.update(KRB5CCNAME=f"FILE:{tmp}/no-such-ccache", HADOOP_TOKEN_FILE_LOCATION=str(tokens),
                          HADOOP_CONF_DIR=str(hdfs.client_conf_dir()))
        env = spark_env({**bed.env(None, Path(tmp) / "no-such-ccache"), "HADOOP_TOKEN_FILE_LOCATION": str(tokens)})
        dataset, plain = f"{hdfs.uri}/user/alice/bench-parquet", "/user/alice/bench-plain.bin"

        began = time.perf_counter()
        _spark(bed, env, "write", dataset, str(size // ROW_BYTES))
        fs = arrow_filesystem(hdfs.uri)
        on_disk = sum(f.size for f in fs.get_file_info(ds.dataset("/user/alice/bench-parquet", filesystem=fs,
                                                                        format="parquet").files))
        print(f"Parquet dataset written by Spark: {on_disk / MIB:.0f} MiB in {time.perf_counter() - began:.0f} s",
              flush=True)
        local = Path(tmp) / "plain.bin"
        with local.open("wb") as out:
            for _ in range(size // (64 * MIB)):
                out.write(os.urandom(64 * MIB))
        _java(bed, tokens, "-put", "-f", str(local), plain)
        local.unlink()
        (Path(tmp) / "tiny").write_bytes(b"x")
        _java(bed, tokens, "-put", "-f", str(Path(tmp) / "tiny"), "/user/alice/bench-tiny")

        arrow, spark, cli, cat, start = [], [], [], [], []
        for _ in range(args.rounds):
            began = time.perf_counter()
            rows = sum(b.num_rows for b in ds.dataset("/user/alice/bench-parquet", filesystem=fs,
                                                      format="parquet").to_batches())
            arrow.append(time.perf_counter() - began)
            spark.append(_spark(bed, env, "read", dataset, "0"))
            client, began, read = hdfs_client(hdfs.uri), time.perf_counter(), 0
            with client.read(plain, chunk_size=4 * MIB) as reader:
                for chunk in reader:
                    read += len(chunk)
            cli.append(time.perf_counter() - began)
            assert read == size // (64 * MIB) * 64 * MIB, read
            cat.append(_java(bed, tokens, "-cat", plain))
            start.append(_java(bed, tokens, "-cat", "/user/alice/bench-tiny"))
        mib = on_disk / MIB
        print(f"Parquet, {rows} rows, {mib:.0f} MiB: arrow_filesystem() + pyarrow.dataset {min(arrow):.1f} s "
              f"({mib / min(arrow):.0f} MiB/s); Spark's JVM reader (local[2]) {min(spark):.1f} s "
              f"({mib / min(spark):.0f} MiB/s); Spark/Python = x{min(spark) / min(arrow):.2f}")
        plain_mib = read / MIB
        jvm = max(min(cat) - min(start), 1e-3)
        print(f"plain file, {plain_mib:.0f} MiB: hdfs_client().read() {min(cli):.1f} s ({plain_mib / min(cli):.0f} MiB/s); "
              f"hdfs dfs -cat {min(cat):.1f} s with its JVM start ({min(start):.1f} s on a 1-byte file), "
              f"{jvm:.1f} s without ({plain_mib / jvm:.0f} MiB/s); JVM/Python = x{jvm / min(cli):.2f} "
              f"(x{min(cat) / min(cli):.2f} with the JVM's start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
