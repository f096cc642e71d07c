"""A PySpark job for executor pods: waits for its executors, writes and reads a Parquet dataset on
secure HDFS across them, and reports from the driver and every executor what Kerberos state the
container has (``klist``) and which token file it reads. One ``PROBE`` JSON line per task.

Usage: pod_job.py TARGET_DIR EXECUTORS"""

import json
import os
import subprocess
import sys

from executors import wait_for_executors
from pyspark.sql import SparkSession

target, wanted = sys.argv[1], int(sys.argv[2])
spark = SparkSession.builder.appName("pod-job").getOrCreate()
sc = spark.sparkContext
wait_for_executors(spark, wanted)


def probe(index, _rows):
    klist = subprocess.run(["klist"], capture_output=True, text=True)
    yield json.dumps({"task": index, "pod": os.environ.get("SPARK_EXECUTOR_POD_NAME", ""),
                      "token_file": os.environ.get("HADOOP_TOKEN_FILE_LOCATION", ""),
                      "token_file_exists": os.path.exists(os.environ.get("HADOOP_TOKEN_FILE_LOCATION", "/none")),
                      "klist_rc": klist.returncode, "klist": (klist.stderr or klist.stdout).strip()[:160]})


spark.range(0, 10_000, numPartitions=6).selectExpr("id", "id * 2 as twice").write.mode("overwrite").parquet(target)
back = spark.read.parquet(target)
count, total = back.count(), back.selectExpr("sum(twice)").first()[0]
assert (count, total) == (10_000, 2 * sum(range(10_000))), (count, total)
print(f"WROTE AND READ {count} rows at {target}", flush=True)
for line in sc.parallelize(range(12), 12).mapPartitionsWithIndex(probe).collect():
    print("PROBE", line, flush=True)
klist = subprocess.run(["klist"], capture_output=True, text=True)
print("DRIVER", json.dumps({"token_file": os.environ.get("HADOOP_TOKEN_FILE_LOCATION", ""),
                            "klist_rc": klist.returncode, "klist": (klist.stderr or klist.stdout).strip()[:160]}),
      flush=True)
spark.stop()
