"""A PySpark job whose pandas UDF (mapInPandas, in Python workers) reads a Parquet dataset from secure
HDFS through spark_secrets.runtime.arrow_filesystem(), made on the driver and pickled into the UDF;
each worker also writes one file through it. Prints one line per worker result.

Usage: udf_job.py MASTER FILESYSTEM DATASET_PATH OUT_DIR"""

import os
import sys

from pyspark.sql import SparkSession

from spark_secrets.runtime import arrow_filesystem

master, fs_uri, dataset_path, out_dir = sys.argv[1:5]
spark = SparkSession.builder.master(master).appName("runtime-udf").getOrCreate()
fs = arrow_filesystem(fs_uri)  # driver side: HADOOP_TOKEN_FILE_LOCATION and HADOOP_CONF_DIR


def read_in_worker(batches):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    for batch in batches:
        for part in batch["id"]:
            table = ds.dataset(dataset_path, filesystem=fs, format="parquet").to_table()
            pq.write_table(pa.table({"part": [int(part)]}), f"{out_dir}/part-{int(part)}.parquet", filesystem=fs)
            yield pd.DataFrame({"part": [int(part)], "rows": [table.num_rows], "pid": [os.getpid()]})


for row in spark.range(2, numPartitions=2).mapInPandas(read_in_worker, "part long, rows long, pid long").collect():
    print(f"UDF part {row.part} read {row.rows} rows in worker {row.pid} (driver {os.getpid()})", flush=True)
spark.stop()
