"""A Structured Streaming job: Kafka topic IN to topic OUT and to Parquet files, with whatever delegation
tokens its JVMs hold (Spark's Kafka source and sink pick a token by the cluster's bootstrap servers; nothing
here names a credential). Runs SECONDS, then stops the queries; prints one line per finished batch and, at a
query's failure, the first line of its error; exits 1 then.

Usage: kafka_stream_job.py BOOTSTRAP IN OUT PARQUET_DIR CHECKPOINT_DIR SECONDS"""

import sys
import time

from pyspark.sql import SparkSession

bootstrap, source, sink, parquet, checkpoints, seconds = sys.argv[1:6] + [float(sys.argv[6])]
spark = SparkSession.builder.appName("kafka-stream-job").getOrCreate()
began = time.monotonic()
records = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
           .option("subscribe", source).option("startingOffsets", "earliest").load()
           .selectExpr("CAST(value AS STRING) AS value"))
queries = [
    records.writeStream.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", sink)
    .option("checkpointLocation", f"{checkpoints}/kafka").trigger(processingTime="2 seconds").start(),
    records.writeStream.format("parquet").option("path", parquet)
    .option("checkpointLocation", f"{checkpoints}/parquet").trigger(processingTime="2 seconds").start(),
]
batches = 0
try:
    while time.monotonic() - began < seconds:
        for query in queries:
            if query.exception() is not None:
                raise RuntimeError(str(query.exception()))
        done = sum(q.lastProgress["batchId"] + 1 for q in queries if q.lastProgress)
        if done != batches:
            batches = done
            print(f"BATCHES {batches} at {time.monotonic() - began:.1f}s", flush=True)
        time.sleep(1)
    for query in queries:
        query.processAllAvailable()  # what the producer wrote up to now reaches both sinks
        query.stop()
        if query.exception() is not None:
            raise RuntimeError(str(query.exception()))
except Exception as exc:  # noqa: BLE001 - the test reads this line
    text = str(exc).strip()
    first = next((line for line in text.splitlines() if "Exception" in line), text.splitlines()[0] if text else "")
    print(f"FAILED at {time.monotonic() - began:.1f}s (epoch {time.time():.1f}) after {batches} batches: "
          f"{first[:400]}", flush=True)
    sys.exit(1)
finally:
    print(f"DONE {batches} batches in {time.monotonic() - began:.1f}s", flush=True)
spark.stop()
