"""The demo's job: a small ETL on secure HDFS with only the delegation tokens the pods mount.

Usage: etl_job.py TARGET_DIR"""

import os
import sys

from pyspark.sql import SparkSession

target = sys.argv[1]
spark = SparkSession.builder.appName("demo-etl").getOrCreate()
orders = spark.range(0, 100_000, numPartitions=8).selectExpr("id", "id % 97 as customer", "id * 3 % 1000 as amount")
orders.write.mode("overwrite").parquet(f"{target}/orders")
totals = spark.read.parquet(f"{target}/orders").groupBy("customer").sum("amount")
totals.write.mode("overwrite").parquet(f"{target}/totals")
rows = spark.read.parquet(f"{target}/totals").count()
pods = sorted(set(spark.sparkContext.parallelize(range(8), 8)
                  .map(lambda _: os.environ.get("SPARK_EXECUTOR_POD_NAME", "")).collect()))
print(f"DEMO wrote {orders.count()} orders and {rows} customer totals to {target} "
      f"from executor pods {', '.join(pods)}", flush=True)
spark.stop()
