"""Spark as pyspark ships it: ``spark-submit`` in cluster mode against the test-bed API server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, java_home

#: The main resource of a cluster-mode job; ``local://`` means "inside the image", never read here.
EXAMPLE_JAR = "local:///opt/spark/examples/jars/spark-examples.jar"
EXAMPLE_CLASS = "org.apache.spark.examples.SparkPi"
#: Pods stay Pending (no kubelet), so the image is never pulled; any valid reference does.
PLACEHOLDER_IMAGE = "apache/spark:4.0.0"


#: Spark lines the test bed has: the installed pyspark (4.x), and 3.5 installed beside it by install.sh.
SPARK_LINES = ("4", "3.5")


def spark_home(line: str = "4") -> Path:
    """A Spark distribution as pyspark ships it (bin/spark-submit, jars/): ``line`` "4" or "3.5"."""
    if line == "4":
        try:
            import pyspark
        except ImportError:
            raise TestbedError("pyspark is not installed", INSTALL_HINT) from None
        home = Path(pyspark.__file__).parent
    elif line == "3.5":
        home = cache_dir() / "spark-3.5" / "pyspark"
    else:
        raise TestbedError(f"no Spark {line} in the test bed", f"choose one of {SPARK_LINES}")
    if not (home / "bin" / "spark-submit").exists():
        raise TestbedError(f"no Spark {line} at {home} (bin/spark-submit missing)", INSTALL_HINT)
    return home


def spark_version(line: str = "4") -> str:
    """The version of a Spark line's distribution, read from its own files."""
    version_py = spark_home(line) / "version.py"
    for text in version_py.read_text().splitlines():
        if text.startswith("__version__"):
            return text.split("=", 1)[1].strip().strip("\"'")
    raise TestbedError(f"cannot tell the version of Spark at {spark_home(line)}")


def private_spark_home(dest: Path, line: str = "4") -> Path:
    """A Spark home of symlinks to a line's distribution, whose ``work/`` (where ``local-cluster``
    workers keep executor logs) is private to the caller instead of inside site-packages."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in spark_home(line).iterdir():
        if entry.name != "work" and not (dest / entry.name).exists():
            (dest / entry.name).symlink_to(entry)
    return dest


def spark_env(base: Mapping[str, str] | None = None, line: str = "4", home: Path | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    env["SPARK_HOME"] = str(home or spark_home(line))
    env["JAVA_HOME"] = str(java_home())
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    return env


def cluster_submit_argv(master: str, namespace: str, name: str, conf: Mapping[str, str] | None = None,
                        main_class: str = EXAMPLE_CLASS, resource: str = EXAMPLE_JAR,
                        args: Sequence[str] = (), line: str = "4") -> list[str]:
    """``spark-submit --deploy-mode cluster`` that returns once the driver pod is created."""
    settings = {
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.container.image": PLACEHOLDER_IMAGE,
        "spark.kubernetes.submission.waitAppCompletion": "false",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        **(conf or {}),
    }
    argv = [str(spark_home(line) / "bin" / "spark-submit"), "--master", f"k8s://{master}", "--deploy-mode", "cluster",
            "--name", name, "--class", main_class]
    for key, value in settings.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, resource, *args]


def run_spark_submit(argv: Sequence[str], env: Mapping[str, str], timeout: float = 300,
                     line: str = "4") -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=spark_env(env, line), capture_output=True, text=True, timeout=timeout)
