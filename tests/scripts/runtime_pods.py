"""A PySpark job for executor pods whose Python code reads secure HDFS with the job's token only:
Spark (JVM) writes a Parquet dataset; a pandas UDF (mapInPandas, in the executors' Python workers)
reads it through spark_secrets.runtime with pyarrow.dataset and pandas, lists it with HdfsCLI, and
writes one file per task; Spark (JVM) reads those back. One ``UDF`` JSON line per task.

Usage: runtime_pods.py FILESYSTEM BASE_DIR EXECUTORS"""

import json
import os
import subprocess
import sys

from executors import wait_for_executors
from pyspark.sql import SparkSession

fs_uri, base, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
spark = SparkSession.builder.appName("runtime-pods").getOrCreate()
wait_for_executors(spark, wanted)

spark.range(0, 20_000, numPartitions=4).selectExpr("id", "id * 2 as twice").write.mode("overwrite").parquet(
    f"{fs_uri}{base}/jvm")


def in_worker(batches):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from spark_secrets.runtime import arrow_filesystem, hdfs_client

    fs = arrow_filesystem(fs_uri)  # the executor's HADOOP_TOKEN_FILE_LOCATION and HADOOP_CONF_DIR
    for batch in batches:
        for part in batch["id"]:
            table = ds.dataset(f"{base}/jvm", filesystem=fs, format="parquet").to_table()
            frame = pd.read_parquet(f"{base}/jvm", filesystem=fs)
            pq.write_table(pa.table({"part": [int(part)], "pod": [os.environ.get("SPARK_EXECUTOR_POD_NAME", "")]}),
                           f"{base}/py/part-{int(part)}.parquet", filesystem=fs)
            files = [n for n in hdfs_client(fs_uri).list(f"{base}/jvm") if n.endswith(".parquet")]
            klist = subprocess.run(["klist"], capture_output=True, text=True)
            yield pd.DataFrame({"line": [json.dumps({
                "part": int(part), "pod": os.environ.get("SPARK_EXECUTOR_POD_NAME", ""),
                "rows_arrow": table.num_rows, "rows_pandas": len(frame), "twice": int(frame["twice"].sum()),
                "files": len(files), "token_file": os.environ.get("HADOOP_TOKEN_FILE_LOCATION", ""),
                "klist_rc": klist.returncode, "klist": (klist.stderr or klist.stdout).strip()[:160]})]})


for row in spark.range(8, numPartitions=8).mapInPandas(in_worker, "line string").collect():
    print("UDF", row.line, flush=True)
back = spark.read.parquet(f"{fs_uri}{base}/py")
print("JVM READ BACK", json.dumps(sorted(r.part for r in back.select("part").collect())), flush=True)
spark.stop()
