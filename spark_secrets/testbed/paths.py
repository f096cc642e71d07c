"""Where the installed test-bed components live (read at call time, never at import)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from spark_secrets.errors import TestbedError

INSTALL_HINT = "run tests/testbed/install.sh (idempotent; it installs and caches every component)"


def cache_dir() -> Path:
    """``$SPARK_SECRETS_CACHE`` or ``~/.cache/spark-secrets``: downloads and builds that outlive a run."""
    return Path(os.environ.get("SPARK_SECRETS_CACHE") or Path.home() / ".cache" / "spark-secrets")


def hadoop_lib() -> Path:
    lib = cache_dir() / "hadoop" / "lib"
    if not any(lib.glob("hadoop-hdfs-[0-9]*.jar")):
        raise TestbedError(f"Hadoop jars not found in {lib}", INSTALL_HINT)
    return lib


def hive_lib() -> Path:
    """The Hive standalone metastore's jars (without the Hadoop ones: :func:`hadoop_lib` goes beside them)."""
    lib = cache_dir() / "hive" / "lib"
    if not any(lib.glob("hive-standalone-metastore-server-*.jar")):
        raise TestbedError(f"Hive metastore jars not found in {lib}", INSTALL_HINT)
    return lib


def hive_client_lib() -> Path:
    """The Hive 4.0 client jars Spark loads for a Hive 4.0 metastore (Hadoop's go beside them)."""
    lib = cache_dir() / "hive-client" / "lib"
    if not any(lib.glob("hive-exec-*.jar")):
        raise TestbedError(f"Hive client jars not found in {lib}", INSTALL_HINT)
    return lib


def hive_client_jars(hive: Path | None = None, hadoop: Path | None = None) -> str:
    """``spark.sql.hive.metastore.jars.path`` for a Hive 4.0 metastore: the Hive client jars and Hadoop's
    (here, or where a pod mounts them)."""
    return f"file://{hive or hive_client_lib()}/*.jar,file://{hadoop or hadoop_lib()}/*.jar"


def notebook_python() -> Path:
    """A notebook's Python: a venv with this project (no extras) and ``pyspark-client`` only (no Spark jars)."""
    python = cache_dir() / "notebook-venv" / "bin" / "python"
    if not python.exists():
        raise TestbedError(f"{python} not found", INSTALL_HINT)
    return python


def kube_binary(name: str) -> Path:
    path = cache_dir() / "kube" / "bin" / name
    if not os.access(path, os.X_OK):
        raise TestbedError(f"{name} not found at {path}", INSTALL_HINT)
    return path


def system_binary(name: str, package: str) -> Path:
    for prefix in ("/usr/sbin", "/usr/bin", "/sbin"):
        candidate = Path(prefix) / name
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise TestbedError(f"{name} not found (Debian package {package})", INSTALL_HINT)
    return Path(found)


def java_home() -> Path:
    """A Java 17 home: ``$JAVA_HOME`` if it is one, else Debian's OpenJDK 17."""
    candidates = [os.environ.get("JAVA_HOME", ""), "/usr/lib/jvm/java-17-openjdk-amd64"]
    candidates += [str(p) for p in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))]
    for candidate in candidates:
        release = Path(candidate) / "release"
        if candidate and release.is_file() and 'JAVA_VERSION="17' in release.read_text():
            return Path(candidate)
    raise TestbedError("no Java 17 found", "install Debian's openjdk-17-jdk-headless or set JAVA_HOME")


def monitoring_crds() -> list[Path]:
    """The prometheus-operator's ServiceMonitor and PrometheusRule CRDs (made by controller-gen in install.sh)."""
    crds = sorted((cache_dir() / "monitoring-crds" / "crds").glob("*.yaml"))
    if len(crds) != 2:
        raise TestbedError(f"monitoring CRDs not found in {cache_dir() / 'monitoring-crds'}", INSTALL_HINT)
    return crds
