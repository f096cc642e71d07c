"""A PySpark job that writes and reads secure HDFS in a loop for a given time, with whatever tokens
its JVMs hold, pausing between rounds. Prints one line per round; exits 1 at the first failure.

With STOP_MARKER it also ends, successfully, at the first round that finds that file (through its own
Hadoop filesystem and tokens): for a test that ends it once it has shown what it wanted.

Usage: refresh_job.py TARGET_DIR SECONDS [PAUSE_SECONDS [STOP_MARKER]]"""

import sys
import time

from pyspark.sql import SparkSession

target, seconds = sys.argv[1], float(sys.argv[2])
pause = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
spark = SparkSession.builder.appName("refresh-job").getOrCreate()
marker = None
if len(sys.argv) > 4:
    marker = spark._jvm.org.apache.hadoop.fs.Path(sys.argv[4])
    marker_fs = marker.getFileSystem(spark._jsc.hadoopConfiguration())
began = time.monotonic()
rounds = 0
try:
    while time.monotonic() - began < seconds:
        path = f"{target}/round-{rounds % 3}"
        spark.range(rounds, rounds + 4, numPartitions=2).selectExpr("cast(id as string) as v") \
            .write.mode("overwrite").text(path)
        got = sorted(int(r.v) for r in spark.read.text(path).withColumnRenamed("value", "v").collect())
        assert got == list(range(rounds, rounds + 4)), got
        rounds += 1
        print(f"ROUND {rounds} ok at {time.monotonic() - began:.1f}s", flush=True)
        if marker is not None and marker_fs.exists(marker):
            print(f"STOP marker found at {time.monotonic() - began:.1f}s", flush=True)
            break
        time.sleep(pause)
except Exception as exc:  # noqa: BLE001 - the test reads this line
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"FAILED at {time.monotonic() - began:.1f}s (epoch {time.time():.1f}) after {rounds} rounds: {first[:300]}",
          flush=True)
    sys.exit(1)
finally:
    print(f"DONE {rounds} rounds in {time.monotonic() - began:.1f}s", flush=True)
spark.stop()
