"""Spark as pyspark ships it: ``spark-submit`` in cluster mode against the test-bed API server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import INSTALL_HINT, java_home

#: The main resource of a cluster-mode job; ``local://`` means "inside the image", never read here.
EXAMPLE_JAR = "local:///opt/spark/examples/jars/spark-examples.jar"
EXAMPLE_CLASS = "org.apache.spark.examples.SparkPi"
#: Pods stay Pending (no kubelet), so the image is never pulled; any valid reference does.
PLACEHOLDER_IMAGE = "apache/spark:4.0.0"


def spark_home() -> Path:
    """pyspark's own Spark distribution (bin/spark-submit, jars/)."""
    try:
        import pyspark
    except ImportError:
        raise TestbedError("pyspark is not installed", INSTALL_HINT) from None
    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-submit").exists():
        raise TestbedError(f"pyspark at {home} has no bin/spark-submit", "reinstall pyspark")
    return home


def spark_version() -> str:
    import pyspark

    return str(pyspark.__version__)


def spark_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    env["SPARK_HOME"] = str(spark_home())
    env["JAVA_HOME"] = str(java_home())
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    return env


def cluster_submit_argv(master: str, namespace: str, name: str, conf: Mapping[str, str] | None = None,
                        main_class: str = EXAMPLE_CLASS, resource: str = EXAMPLE_JAR,
                        args: Sequence[str] = ()) -> list[str]:
    """``spark-submit --deploy-mode cluster`` that returns once the driver pod is created."""
    settings = {
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.container.image": PLACEHOLDER_IMAGE,
        "spark.kubernetes.submission.waitAppCompletion": "false",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        **(conf or {}),
    }
    argv = [str(spark_home() / "bin" / "spark-submit"), "--master", f"k8s://{master}", "--deploy-mode", "cluster",
            "--name", name, "--class", main_class]
    for key, value in settings.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, resource, *args]


def run_spark_submit(argv: Sequence[str], env: Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=spark_env(env), capture_output=True, text=True, timeout=timeout)
