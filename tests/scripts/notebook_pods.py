"""A notebook-style session in client mode on Kubernetes: this process on the host is the driver,
executors run in pods. configure() makes the token Secret the executors mount and a private token
file for the driver; the ticket cache is then taken away. Writes and reads secure HDFS across the
executors and prints which executor pods ran the tasks.

Usage: notebook_pods.py FILESYSTEM TARGET CONF_JSON"""

import json
import os
import sys

from executors import wait_for_executors
from pyspark.sql import SparkSession

from submit_steps.notebook import configure

filesystem, target, conf = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
builder = SparkSession.builder.appName("notebook-pods")
for key, value in conf.items():
    builder = builder.config(key, value)
setup = configure(builder, {"spark.secrets.hadoop.filesystems": filesystem, "spark.secrets.renewer": "spark-renewer",
                            **{k: v for k, v in conf.items() if k.startswith(("spark.secrets.", "spark.kubernetes.namespace"))}})
os.environ["KRB5CCNAME"] = "FILE:/nonexistent/no-ticket-here"  # neither JVM nor executors get a ticket
spark = builder.getOrCreate()
sc = spark.sparkContext
wait_for_executors(spark, int(conf["spark.executor.instances"]))
spark.range(0, 5000, numPartitions=4).write.mode("overwrite").parquet(target)
print("COUNT", spark.read.parquet(target).count(), flush=True)
pods = sc.parallelize(range(8), 8).map(lambda _: os.environ.get("SPARK_EXECUTOR_POD_NAME", "")).distinct().collect()
print("EXECUTOR PODS", json.dumps(sorted(pods)), flush=True)
spark.stop()
setup.close()
print("TOKEN-FILE-REMOVED:", not setup.token_file.exists(), flush=True)
