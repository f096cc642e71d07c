"""A PySpark job (local mode) that writes a Parquet dataset to secure HDFS with whatever tokens its JVM
holds, then prints its row count and the sum of ``id`` as Spark reads them back.

Usage: parquet_job.py TARGET_DIR ROWS"""

import sys

from pyspark.sql import SparkSession

target, rows = sys.argv[1], int(sys.argv[2])
spark = SparkSession.builder.master("local[2]").appName("parquet-job").getOrCreate()
spark.range(rows, numPartitions=4).selectExpr("id", "id * 2 as twice", "concat('row ', id) as name") \
    .write.mode("overwrite").parquet(target)
back = spark.read.parquet(target)
print(f"WROTE {back.count()} rows, sum {back.groupBy().sum('id').collect()[0][0]}", flush=True)
spark.stop()
