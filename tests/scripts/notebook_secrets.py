"""A notebook-style session in local mode (this process is the driver): configure() with job secrets from
OpenBao, then driver code and a task in a Python worker read them by name. Prints SHA-256 digests only.

Usage: notebook_secrets.py MOUNT_PATH"""

import hashlib
import json
import os
import stat
import sys

from pyspark.sql import SparkSession

from submit_steps.notebook import configure

location = sys.argv[1]
builder = SparkSession.builder.master("local[2]").appName("notebook-secrets")
configure(builder, {"spark.secrets.file.db-password": f"vault:{location}#password",
                    "spark.secrets.env.API_KEY": f"vault:{location}#api"})
spark = builder.getOrCreate()


def probe(role):
    from spark_secrets.runtime import secret, secret_path

    path = secret_path("db-password")
    return json.dumps({"role": role, "file": hashlib.sha256(secret("db-password").encode()).hexdigest(),
                       "env": hashlib.sha256(os.environ.get("API_KEY", "").encode()).hexdigest(),
                       "dir": str(path.parent), "dir_mode": oct(stat.S_IMODE(path.parent.stat().st_mode)),
                       "file_mode": oct(stat.S_IMODE(path.stat().st_mode))})


print("NOTEBOOK " + probe("driver"), flush=True)
for line in spark.sparkContext.parallelize(range(2), 2).map(lambda _: probe("worker")).collect():
    print("NOTEBOOK " + line, flush=True)
spark.stop()
