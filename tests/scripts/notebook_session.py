"""A notebook-style session (client mode, this process is the driver): configure, drop the ticket cache,
then read and write secure HDFS with the delegation token alone. Prints the lines read."""

import os
import sys

from pyspark.sql import SparkSession

from submit_steps.notebook import configure

namenode, path = sys.argv[1], sys.argv[2]
builder = SparkSession.builder.master("local[2]").appName("notebook")
setup = configure(builder, {"spark.secrets.hadoop.filesystems": namenode, "spark.secrets.renewer": "spark-renewer"})
os.environ["KRB5CCNAME"] = "FILE:/nonexistent/no-ticket-here"  # the JVM gets no Kerberos ticket
spark = builder.getOrCreate()
spark.createDataFrame([("written by a notebook with a token only",)], ["line"]).write.mode("overwrite").text(path)
for row in spark.read.text(path).collect():
    print("READ:", row.value)
spark.stop()
setup.close()
print("TOKEN-FILE-REMOVED:", not setup.token_file.exists())
