"""A notebook-style session in client mode on Kubernetes: this process on the host is the driver,
executors run in pods. configure() makes the token Secret the executors mount and a private token
file for the driver; the ticket cache is then taken away. Writes and reads secure HDFS across the
executors and prints which executor pods ran the tasks. A job secret (``nb-secret``, from this process's
``NB_SECRET``) is read by the driver and the executors: ``NB-SECRET`` lines with its digest and, in the
executors, its file's mode and group.

Usage: notebook_pods.py FILESYSTEM TARGET CONF_JSON"""

import hashlib
import json
import os
import stat
import sys

from executors import wait_for_executors
from pyspark.sql import SparkSession

from submit_steps.notebook import configure

filesystem, target, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
builder = SparkSession.builder.appName("notebook-pods")
for key, value in conf.items():
    builder = builder.config(key, value)
setup = configure(builder, {"spark.secrets.hadoop.filesystems": filesystem, "spark.secrets.renewer": "spark-renewer",
                            "spark.secrets.file.nb-secret": "env:NB_SECRET",
                            **{k: v for k, v in conf.items() if k.startswith(("spark.secrets.", "spark.kubernetes.namespace"))}})
os.environ["KRB5CCNAME"] = "FILE:/nonexistent/no-ticket-here"  # neither JVM nor executors get a ticket
spark = builder.getOrCreate()
sc = spark.sparkContext
wait_for_executors(spark, int(conf["spark.executor.instances"]))
spark.range(0, 5000, numPartitions=4).write.mode("overwrite").parquet(target)
print("COUNT", spark.read.parquet(target).count(), flush=True)
pods = sc.parallelize(range(8), 8).map(lambda _: os.environ.get("SPARK_EXECUTOR_POD_NAME", "")).distinct().collect()
print("EXECUTOR PODS", json.dumps(sorted(pods)), flush=True)


def nb_secret(role):
    from spark_secrets.runtime import secret, secret_path

    found = secret_path("nb-secret").stat()
    info = {"mode": oct(stat.S_IMODE(found.st_mode)), "gid": found.st_gid} if role == "executor" else {}
    return json.dumps({"role": role, "digest": hashlib.sha256(secret("nb-secret").encode()).hexdigest(), **info})


print("NB-SECRET", nb_secret("driver"), flush=True)
for line in sc.parallelize(range(4), 4).map(lambda _: nb_secret("executor")).collect():
    print("NB-SECRET", line, flush=True)
templates = setup.submission.template_dir
spark.stop()
setup.close()
print("TOKEN-FILE-REMOVED:", not setup.token_file.exists(), flush=True)
print("TEMPLATES-REMOVED:", templates is not None and not templates.exists(), flush=True)
