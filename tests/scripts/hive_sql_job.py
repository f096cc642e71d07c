"""A PySpark job (local mode, Hive support) on a Kerberized metastore with whatever tokens its JVM holds:
creates a database and a table, inserts rows, and prints what a query reads back.

With READ_ALSO=<hdfs URI> in the environment it also reads that text file and prints it; with
PLUGIN_JAR=<jar> the token refresher plugin re-reads HADOOP_TOKEN_FILE_LOCATION as it changes.

Run as a script it is a local-mode job; under spark-submit (a driver pod) it uses the submit's master.

Usage: hive_sql_job.py METASTORE_URI METASTORE_PRINCIPAL DATABASE [HIVE_VERSION JARS_PATH]
(the metastore client Spark loads for that metastore version, from those jars, as a user of a newer
metastore than Spark's built-in 2.3 client configures)"""

import os
import sys

from pyspark.sql import SparkSession

uri, principal, database = sys.argv[1:4]
builder = SparkSession.builder
if len(sys.argv) > 5:
    builder = (builder.config("spark.sql.hive.metastore.version", sys.argv[4])
               .config("spark.sql.hive.metastore.jars", "path")
               .config("spark.sql.hive.metastore.jars.path", sys.argv[5]))
if os.environ.get("PLUGIN_JAR"):
    builder = (builder.config("spark.jars", os.environ["PLUGIN_JAR"])
               .config("spark.plugins", "io.sparksecrets.plugin.TokenRefreshPlugin"))
if "PYSPARK_GATEWAY_PORT" not in os.environ:  # run as a plain script: local mode (else spark-submit's master)
    builder = builder.master("local[2]")
spark = (builder.appName("hive-sql-job")
         .config("spark.hadoop.hive.metastore.uris", uri)
         .config("spark.hadoop.hive.metastore.sasl.enabled", "true")
         .config("spark.hadoop.hive.metastore.kerberos.principal", principal)
         .config("spark.sql.catalogImplementation", "hive")
         # Fail fast when the metastore refuses the login (Hive's defaults retry for minutes).
         .config("spark.hadoop.hive.metastore.connect.retries", "1")
         .config("spark.hadoop.hive.metastore.failure.retries", "1")
         .enableHiveSupport().getOrCreate())
spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
spark.sql(f"CREATE TABLE IF NOT EXISTS {database}.events (id INT, name STRING) STORED AS PARQUET")
spark.sql(f"INSERT INTO {database}.events VALUES (1, 'one'), (2, 'two'), (3, 'three')")
rows = spark.sql(f"SELECT count(*), sum(id) FROM {database}.events").collect()[0]
tables = [t.name for t in spark.catalog.listTables(database)]
print(f"HIVE count={rows[0]} sum={rows[1]} tables={tables}", flush=True)
if os.environ.get("READ_ALSO"):  # a file on secure HDFS (in an encryption zone: HDFS and KMS tokens)
    text = "".join(r.value + "\n" for r in spark.read.text(os.environ["READ_ALSO"]).collect())
    print(f"READ {text!r}", flush=True)
spark.stop()
