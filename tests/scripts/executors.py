"""Shared by the pod jobs (the ConfigMap mounts this directory; a script's own directory is on sys.path)."""

import sys
import time


def wait_for_executors(spark, wanted, seconds=180):
    """Return once ``wanted`` executors have registered (the driver counts as one more)."""
    sc = spark.sparkContext
    deadline = time.monotonic() + seconds
    while sc._jsc.sc().getExecutorMemoryStatus().size() - 1 < wanted:
        if time.monotonic() > deadline:
            sys.exit(f"only {sc._jsc.sc().getExecutorMemoryStatus().size() - 1} of {wanted} executors registered")
        time.sleep(0.5)
