"""A PySpark job whose driver and executor Python code (tasks in the executors' Python workers) read the
job's secrets: files through spark_secrets.runtime, env vars from os.environ. Prints only SHA-256 digests
(``SECRETS`` JSON lines), then its own event log (what the UI's environment page shows), ``EVENTLOG`` lines.

Then it waits for the file secret to be rotated (its new digest given), seen through ``fresh()`` in the
driver, and reads it again in the executors: ``ROTATED`` lines.

It logs in to PostgreSQL with the leased credentials (files ``db-user`` and ``db-pass``, read anew each
time) once at its start (the submission's lease), and last every few seconds until well past that
lease's max TTL, in the driver and then in the executors: ``DBLOGIN`` lines.

Usage: secrets_job.py EXECUTORS EVENT_DIR NEW_DIGEST DB_PORT LEASE_MAX_TTL"""

import glob
import hashlib
import json
import os
import stat
import sys
import time

from executors import wait_for_executors
from pyspark.sql import SparkSession


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def probe(role):
    from spark_secrets.runtime import secret, secret_path

    path = secret_path("db-password")
    return json.dumps({
        "role": role, "pod": os.environ.get("SPARK_EXECUTOR_POD_NAME", "driver"),
        "file": digest(secret("db-password")), "env": digest(os.environ.get("API_KEY", "")),
        "k8s_file": digest(secret("ca.pem")), "k8s_env": digest(os.environ.get("TLS_KEY", "")),
        "dir": os.environ.get("SPARK_SECRETS_DIR"), "path": str(path), "mode": oct(stat.S_IMODE(path.stat().st_mode)),
        "gid": path.stat().st_gid, "k8s_mode": oct(stat.S_IMODE(secret_path("ca.pem").stat().st_mode)),
        "uid": os.getuid(), "groups": sorted(os.getgroups())})


wanted, event_dir, new_digest = int(sys.argv[1]), sys.argv[2], sys.argv[3]
db_port, lease_max_ttl = int(sys.argv[4]), float(sys.argv[5])
started = time.monotonic()


def db_login(role):
    import pg8000.native
    from spark_secrets.runtime import secret

    user = secret("db-user")
    try:
        conn = pg8000.native.Connection(user, host="127.0.0.1", port=db_port, password=secret("db-pass"),
                                        database="postgres", timeout=10)
        (who,), = conn.run("select current_user")
        conn.close()
        return json.dumps({"role": role, "t": round(time.monotonic() - started, 1), "user": user, "ok": who == user})
    except Exception as exc:  # noqa: BLE001 - reported, and the test decides
        return json.dumps({"role": role, "t": round(time.monotonic() - started, 1), "user": user, "ok": False,
                           "error": type(exc).__name__})
os.makedirs(event_dir, exist_ok=True)
print("DBLOGIN " + db_login("driver"), flush=True)  # at once: with the submission's lease, before any rotation
spark = SparkSession.builder.appName("secrets-pods").getOrCreate()
wait_for_executors(spark, wanted)
print("SECRETS " + probe("driver"), flush=True)
for line in spark.sparkContext.parallelize(range(8), 8).map(lambda _: probe("executor")).collect():
    print("SECRETS " + line, flush=True)

from spark_secrets.runtime import fresh  # noqa: E402

view = fresh("db-password")
print("WAITING-FOR-ROTATION", flush=True)
began = time.monotonic()
while digest(view.value) != new_digest:
    if time.monotonic() - began > 240:
        sys.exit("the rotated value never arrived")
    time.sleep(0.5)
print(f"ROTATION-SEEN driver after {time.monotonic() - began:.1f} s", flush=True)


def rotated_probe(_):
    """In an executor: kubelet projects each pod's copy on its own schedule, so wait for it here."""
    from spark_secrets.runtime import fresh as fresh_view

    mine, waited = fresh_view("db-password"), time.monotonic()
    while digest(mine.value) != new_digest and time.monotonic() - waited < 90:
        time.sleep(0.5)
    return probe("executor")


for line in spark.sparkContext.parallelize(range(4), 4).map(rotated_probe).collect():
    print("ROTATED " + line, flush=True)
while time.monotonic() - started < lease_max_ttl + 15:
    print("DBLOGIN " + db_login("driver"), flush=True)
    time.sleep(3)
for line in spark.sparkContext.parallelize(range(4), 4).map(lambda _: db_login("executor")).collect():
    print("DBLOGIN " + line, flush=True)
spark.stop()
for path in sorted(p for p in glob.glob(f"{event_dir}/**", recursive=True) if os.path.isfile(p)):
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            print("EVENTLOG " + line.rstrip("\n"), flush=True)
