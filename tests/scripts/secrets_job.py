"""A PySpark job whose driver and executor Python code (tasks in the executors' Python workers) read the
job's secrets: files through spark_secrets.runtime, env vars from os.environ. Prints only SHA-256 digests
(``SECRETS`` JSON lines), then its own event log (what the UI's environment page shows), ``EVENTLOG`` lines.

Usage: secrets_job.py EXECUTORS EVENT_DIR"""

import glob
import hashlib
import json
import os
import stat
import sys

from executors import wait_for_executors
from pyspark.sql import SparkSession


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def probe(role):
    from spark_secrets.runtime import secret, secret_path

    path = secret_path("db-password")
    return json.dumps({
        "role": role, "pod": os.environ.get("SPARK_EXECUTOR_POD_NAME", "driver"),
        "file": digest(secret("db-password")), "env": digest(os.environ.get("API_KEY", "")),
        "k8s_file": digest(secret("ca.pem")), "k8s_env": digest(os.environ.get("TLS_KEY", "")),
        "dir": os.environ.get("SPARK_SECRETS_DIR"), "path": str(path), "mode": oct(stat.S_IMODE(path.stat().st_mode)),
        "uid": os.getuid()})


wanted, event_dir = int(sys.argv[1]), sys.argv[2]
os.makedirs(event_dir, exist_ok=True)
spark = SparkSession.builder.appName("secrets-pods").getOrCreate()
wait_for_executors(spark, wanted)
print("SECRETS " + probe("driver"), flush=True)
for line in spark.sparkContext.parallelize(range(8), 8).map(lambda _: probe("executor")).collect():
    print("SECRETS " + line, flush=True)
spark.stop()
for path in glob.glob(f"{event_dir}/*"):
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            print("EVENTLOG " + line.rstrip("\n"), flush=True)
