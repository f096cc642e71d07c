"""Spark as pyspark ships it: ``spark-submit`` in cluster mode against the test-bed API server."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, java_home

#: The main resource of a cluster-mode job; ``local://`` means "inside the image", never read here.
EXAMPLE_JAR = "local:///opt/spark/examples/jars/spark-examples.jar"
EXAMPLE_CLASS = "org.apache.spark.examples.SparkPi"
#: For tests that only read pod specs: an image no node has, never pulled (pull policy Never), so its
#: pods stay waiting on a node too and nothing is fetched from outside.
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
                        main_class: str | None = EXAMPLE_CLASS, resource: str = EXAMPLE_JAR,
                        args: Sequence[str] = (), line: str = "4") -> list[str]:
    """``spark-submit --deploy-mode cluster`` that returns once the driver pod is created."""
    settings = {
        "spark.kubernetes.namespace": namespace,
        "spark.kubernetes.container.image": PLACEHOLDER_IMAGE,
        "spark.kubernetes.container.image.pullPolicy": "Never",
        "spark.kubernetes.submission.waitAppCompletion": "false",
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        **(conf or {}),
    }
    argv = [str(spark_home(line) / "bin" / "spark-submit"), "--master", f"k8s://{master}", "--deploy-mode", "cluster",
            "--name", name, *(["--class", main_class] if main_class else [])]
    for key, value in settings.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, resource, *args]


def run_spark_submit(argv: Sequence[str], env: Mapping[str, str], timeout: float = 300,
                     line: str = "4") -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=spark_env(env, line), capture_output=True, text=True, timeout=timeout)


# -- jobs that run in pods on the test bed's node --------------------------------------------------
#: Where the test bed's Spark image carries the refresher plugin jar (``spark.secrets.plugin.jar``).
IMAGE_PLUGIN_JAR = "/opt/spark-secrets/spark-secrets-plugin.jar"
#: Where job scripts from the ``testbed-jobs`` ConfigMap appear in Spark pods.
JOBS_DIR = "/opt/jobs"
JOBS_CONFIG_MAP = "testbed-jobs"
HADOOP_CONF_MOUNT = "/opt/hadoop-conf"


def node_pod_template(dest: Path, krb5_config_map: str, jobs_config_map: str | None = JOBS_CONFIG_MAP,
                      hadoop_config_map: str | None = None) -> Path:
    """A pod template for Spark pods on the node: host network (the KDC, NameNodes and API server
    listen on the host's loopback under the names in their principals), cluster DNS still used for
    the driver's Service name, the realm's ``/etc/krb5.conf``, and the job scripts. In client mode
    nothing ships the Hadoop configuration to executors: ``hadoop_config_map`` mounts one."""
    mounts = [{"name": "krb5", "mountPath": "/etc/krb5.conf", "subPath": "krb5.conf"}]
    volumes: list[dict[str, object]] = [{"name": "krb5", "configMap": {"name": krb5_config_map}}]
    env: list[dict[str, str]] = []
    if jobs_config_map:
        mounts.append({"name": "jobs", "mountPath": JOBS_DIR})
        volumes.append({"name": "jobs", "configMap": {"name": jobs_config_map}})
    if hadoop_config_map:
        mounts.append({"name": "hadoop-conf", "mountPath": HADOOP_CONF_MOUNT})
        volumes.append({"name": "hadoop-conf", "configMap": {"name": hadoop_config_map}})
        env.append({"name": "HADOOP_CONF_DIR", "value": HADOOP_CONF_MOUNT})
    container: dict[str, object] = {"name": "spark", "volumeMounts": mounts}
    if env:
        container["env"] = env
    template = {"apiVersion": "v1", "kind": "Pod",
                "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
                         "containers": [container], "volumes": volumes}}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(template, indent=1))
    return dest


def node_job_conf(image: str, api_server: str, template: Path, *, executors: int = 2,
                  wait: bool = True) -> dict[str, str]:
    """Spark settings for a cluster-mode job whose driver and executors run as pods on the node.

    Requests are small (the node has 2 cores); the driver talks to the API server at its host
    address, as a host-network pod must without kube-proxy."""
    return {
        "spark.kubernetes.container.image": image,
        "spark.kubernetes.container.image.pullPolicy": "Never",
        "spark.kubernetes.driver.podTemplateFile": str(template),
        "spark.kubernetes.executor.podTemplateFile": str(template),
        "spark.kubernetes.driver.master": api_server,
        "spark.kubernetes.authenticate.driver.serviceAccountName": "spark",
        "spark.kubernetes.driver.request.cores": "100m",
        "spark.kubernetes.executor.request.cores": "100m",
        "spark.driver.memory": "768m",
        "spark.executor.memory": "768m",
        "spark.executor.instances": str(executors),
        "spark.kubernetes.submission.waitAppCompletion": "true" if wait else "false",
        "spark.kubernetes.report.interval": "2s",
        "spark.ui.enabled": "false",
        # Host-network pods turn declared container ports into host ports: executors pick free
        # ports (0, not a declared 7079 that would clash between pods); the driver keeps its own.
        "spark.blockManager.port": "0",
        "spark.driver.blockManager.port": "7079",
        # Host-network executors share one IP, so Spark would take them for one host and read each
        # other's shuffle files from a local disk that is in fact another container's.
        "spark.shuffle.readHostLocalDisk": "false",
    }
