"""Container images for the test bed's Kubernetes node, built with no registry and no Docker engine.

Three images, each a single-layer OCI archive (:mod:`.oci`) that ``ctr images import`` loads into
containerd:

* the sandbox ("pause") image: a static C program that sleeps until SIGTERM;
* a Spark image: Debian bookworm (:mod:`.debian`) with Java 17, Python 3, the MIT Kerberos tools and
  tini; the host's pyspark; this project's plugin jar and Python packages; and
  ``docker/spark-entrypoint.sh`` as the entry point Spark's Kubernetes backend expects (also with
  Spark 3.5 in place of pyspark, built on first use);
* the renew service's image.

Builds are cached under ``cache_dir()/images`` (:mod:`.imagecache`) in stages keyed by what each is
made of. The Debian root filesystem (the slow part) and the pyspark tree are kept as directories, so a
change to the project's own files only re-packs the final archive. Building the Debian stage needs root.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.plugin.jar import jar_path
from spark_secrets.testbed import oci
from spark_secrets.testbed.debian import (FALLBACK_MIRROR, PACKAGES, SPARK_UID, SUITE, WORK_DIR, debian_sources,
                                         debian_stage)
from spark_secrets.testbed.imagecache import (Progress, digest, host_version, images_dir, locked, mib, pip_stage, prune,
                                              run)
from spark_secrets.testbed.oci import ARCH, import_image, oci_archive
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, system_binary

__all__ = ["PAUSE_IMAGE", "SPARK_REPOSITORY", "RENEWER_REPOSITORY", "JOB_PACKAGES", "SUITE", "PACKAGES",
           "FALLBACK_MIRROR", "SPARK_UID", "WORK_DIR", "pause_archive", "spark_image_archive", "spark35_image_archive",
           "renewer_image_archive", "operator_image_archive", "import_image", "oci_archive", "debian_sources", "Progress"]

PAUSE_IMAGE = "localhost/spark-secrets/pause:1"
#: The Spark image's repository; its tag is ``<pyspark version>-<content hash>``.
SPARK_REPOSITORY = "localhost/spark-secrets/spark"

PYTHON_DIR = "/opt/spark-python"
SPARK_HOME = f"{PYTHON_DIR}/pyspark"
PLUGIN_JAR = "/opt/spark-secrets/spark-secrets-plugin.jar"
ENTRYPOINT = "/opt/entrypoint.sh"

_JAVA_HOME = f"/usr/lib/jvm/java-17-openjdk-{ARCH}"
_PROJECT = Path(__file__).resolve().parents[2]
_PROJECT_PACKAGES = ("spark_secrets", "submit_steps")
#: The modules whose source decides an image's bytes beyond its stages' content: its configuration and
#: files (this one) and the archive's format (:mod:`.oci`). Each stage's own key covers the rest.
_IMAGE_SOURCES = (Path(__file__), Path(oci.__file__))

_PAUSE_C = r"""/* A pod's sandbox process: holds the pod's namespaces and sleeps until told to stop. */
#include <signal.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = stop;  /* as PID 1, a signal without a handler is ignored */
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    for (;;)
        pause();
}
"""


# -- the images -----------------------------------------------------------------------------------


def pause_archive() -> Path:
    """The archive of :data:`PAUSE_IMAGE` (entry point ``/pause``), compiled once and cached."""
    images = images_dir()
    archive = images / f"pause-{digest(_PAUSE_C, PAUSE_IMAGE, Path(oci.__file__).read_text())}.tar"
    if archive.is_file():
        return archive
    gcc = system_binary("gcc", "gcc")
    with locked(images), tempfile.TemporaryDirectory(dir=images, prefix=".pause-") as tmp:
        if archive.is_file():
            return archive
        source, root = Path(tmp) / "pause.c", Path(tmp) / "rootfs"
        source.write_text(_PAUSE_C)
        root.mkdir()
        run([gcc, "-static", "-Os", "-s", "-o", root / "pause", source], "compile the pause program")
        (root / "pause").chmod(0o755)
        prune(images, "pause-", keep=archive.name)
        return oci_archive(root, archive, PAUSE_IMAGE, {"Entrypoint": ["/pause"]})


def spark_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The Spark image's reference and archive: Debian + Java 17 + the host's pyspark, pandas, pyarrow and HdfsCLI
    (what a job's Python code uses) + this project.

    The first build takes a few minutes (debootstrap, apt, pip); later calls reuse the stages whose
    inputs did not change. The reference's tag changes with the content, so a node never runs a
    stale image under an old name.
    """
    version = re.sub(r"[^\w.-]", "_", host_version("pyspark"))  # a tag allows no "+"
    return _image("spark-", lambda key: f"{SPARK_REPOSITORY}:{version}-{key[:12]}", _pyspark_stage, _spark_config(),
                  progress, extra=_spark_kafka_jars())


def _spark_kafka_jars() -> list[tuple[str, Path]]:
    """Spark's Kafka connector in Spark's own ``jars/``, as a user bakes it into an image (``tests/testbed/spark-kafka``)."""
    jars = sorted((cache_dir() / "spark-kafka" / "lib").glob("*.jar"))
    if not any(j.name.startswith("spark-sql-kafka") for j in jars):
        raise TestbedError(f"Spark's Kafka connector not found in {cache_dir() / 'spark-kafka' / 'lib'}", INSTALL_HINT)
    return [(f"{SPARK_HOME}/jars/{jar.name}", jar) for jar in jars]


def spark35_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The same Spark image with Spark 3.5 (the distribution ``install.sh`` keeps beside pyspark 4 in
    the cache) in place of the host's pyspark: for the plugin's compatibility test in pods."""
    version = _spark35_version()
    return _image("spark35-", lambda key: f"{SPARK_REPOSITORY}:{version}-{key[:12]}", _spark35_stage, _spark_config(),
                  progress)


#: The renew service's image (``docker/renewer.Dockerfile``'s recipe on the same Debian stage).
RENEWER_REPOSITORY = "localhost/spark-secrets/renewer"
RENEWER_DEPS_DIR = "/opt/renewer-deps"
RENEWER_UID = 65532
#: The extras of ``setup.cfg`` the renew service installs with the project (``kubernetes`` for the
#: controller layout's grants and exec-plugin kubeconfigs), as ``renewer.Dockerfile`` does.
RENEWER_EXTRAS = ("kube", "kafka")


def renewer_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The renew service's image: the Debian stage (Python 3, MIT Kerberos libraries), this project's
    runtime dependencies with :data:`RENEWER_EXTRAS` (built by the host's pip for the same CPython minor
    version) and its packages; entry point ``python3 -m spark_secrets renewer``, a non-root user, ``HOME=/tmp``."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "PYTHONPATH": f"{PYTHON_DIR}:{RENEWER_DEPS_DIR}", "HOME": "/tmp", "LANG": "C.UTF-8"}
    config = {"Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": "/tmp",
              "Entrypoint": ["python3", "-m", "spark_secrets", "renewer"], "User": f"{RENEWER_UID}:{RENEWER_UID}"}
    return _image("renewer-image-", lambda key: f"{RENEWER_REPOSITORY}:{key[:12]}", _renewer_deps_stage, config,
                  progress)


#: The kubeflow spark-operator's image: the Spark image (its controller runs ``spark-submit``) with the
#: operator built by install.sh, as upstream builds it on Spark's image.
OPERATOR_REPOSITORY = "localhost/spark-secrets/spark-operator"


def operator_image_archive(progress: Progress = print) -> tuple[str, Path]:
    binary = cache_dir() / "spark-operator" / "bin" / "spark-operator"
    if not binary.is_file():
        raise TestbedError(f"the spark-operator was not built ({binary})", INSTALL_HINT)
    config = {**_spark_config(), "Entrypoint": ["/usr/bin/spark-operator"]}
    # Without this project's files: the operator only runs spark-submit, so the image outlives code changes.
    return _image("operator-", lambda key: f"{OPERATOR_REPOSITORY}:{key[:12]}", _pyspark_stage, config, progress,
                  extra=[("/usr/bin/spark-operator", binary)], project=False)


def _image(prefix: str, ref_for: Callable[[str], str], stage: Callable[[Path, Progress], Path],
           config: dict[str, Any], progress: Progress, extra: list[tuple[str, Path]] | None = None,
           project: bool = True) -> tuple[str, Path]:
    """The Debian stage, one image-specific ``stage`` and (with ``project``) this project's files, packed once
    per content."""
    images = images_dir()
    with locked(images):
        debian = debian_stage(images, progress)
        middle = stage(images, progress)
        files = (_project_files() if project else []) + (extra or [])
        content = hashlib.sha256()
        for source in _IMAGE_SOURCES:
            content.update(source.read_bytes() + b"\0")
        content.update(f"\0{debian.name}\0{middle.name}".encode())
        for target, source in files:
            content.update(f"\0{target}\0".encode() + source.read_bytes())
        key = content.hexdigest()[:16]
        ref, archive = ref_for(key), images / f"{prefix}{key}.tar"
        if archive.is_file():
            return ref, archive
        started = time.monotonic()
        progress(f"images: packing {ref}")
        with tempfile.TemporaryDirectory(dir=images, prefix=".overlay-") as tmp:
            overlay = _overlay(Path(tmp), files)
            oci_archive([debian, middle, overlay], archive, ref, config)
        prune(images, prefix, keep=archive.name)
        progress(f"images: packed {archive.name} ({mib(archive)}) in {time.monotonic() - started:.1f} s")
        return ref, archive


def _spark_config() -> dict[str, Any]:
    env = {
        "PATH": f"{SPARK_HOME}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SPARK_HOME": SPARK_HOME,
        "JAVA_HOME": _JAVA_HOME,
        "PYTHONPATH": PYTHON_DIR,
        "PYSPARK_PYTHON": "python3",
        "HOME": WORK_DIR,  # not every runtime derives it from /etc/passwd
        "LANG": "C.UTF-8",
    }
    return {"Env": [f"{name}={value}" for name, value in env.items()], "Entrypoint": [ENTRYPOINT],
            "WorkingDir": WORK_DIR, "User": str(SPARK_UID)}


# -- the image-specific stages: Python packages at the host's versions, or Spark 3.5 --------------------


#: What a job's Python code uses besides pyspark: the ``runtime`` extra (HdfsCLI, pyarrow), pandas for
#: pandas UDFs and pg8000 (a pure-Python PostgreSQL client) for jobs using leased database credentials;
#: and Spark Connect's client packages, for a notebook pod in the cluster; at the host's versions.
JOB_PACKAGES = ("pandas", "pyarrow", "hdfs", "requests", "pg8000",
                "grpcio", "grpcio-status", "googleapis-common-protos", "protobuf", "zstandard")


def _pyspark_stage(images: Path, progress: Progress) -> Path:
    spark, py4j = host_version("pyspark"), host_version("py4j")
    pins = [f"{name}=={host_version(name)}" for name in JOB_PACKAGES]
    # The host's pip and its wheel cache: pyspark is an sdist only, built once already for the host.
    # The job packages bring their dependencies (numpy, ...); pyspark's only one is py4j, pinned here.
    return pip_stage(images, "pyspark-", digest(f"{spark}-py4j-{py4j}", sys.version.split()[0][:4], *pins),
                     PYTHON_DIR, [f"pyspark=={spark}", f"py4j=={py4j}", *pins], progress, with_deps=True)


def _renewer_deps_stage(images: Path, progress: Progress) -> Path:
    """The project's ``install_requires`` and :data:`RENEWER_EXTRAS` at the host's installed versions, in one
    directory."""
    cfg = configparser.ConfigParser()
    cfg.read(_PROJECT / "setup.cfg")
    lines = [cfg["options"]["install_requires"], *(cfg["options.extras_require"][extra] for extra in RENEWER_EXTRAS)]
    names = sorted({re.split(r"[<>=!~ ;\[]", line.strip())[0] for text in lines for line in text.splitlines()
                    if line.strip() and not line.strip().startswith("#")})
    pins = [f"{name}=={host_version(name)}" for name in names]
    return pip_stage(images, "renewer-deps-", digest(sys.version.split()[0][:4], *pins), RENEWER_DEPS_DIR, pins,
                     progress, with_deps=True)


def _spark35_version() -> str:
    stamp = cache_dir() / "spark-3.5" / "stamp"
    if not stamp.is_file():
        raise TestbedError(f"no Spark 3.5 in {stamp.parent}", INSTALL_HINT)
    return stamp.read_text().strip()


def _spark35_stage(images: Path, progress: Progress) -> Path:
    """Spark 3.5's pyspark tree (its own ``python/lib`` holds the py4j Spark puts on the path)."""
    source = cache_dir() / "spark-3.5" / "pyspark"
    tree = images / f"pyspark35-{_spark35_version()}"
    if tree.is_dir():
        return tree
    partial = tree.with_name(tree.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    progress(f"images: copying Spark {_spark35_version()} from {source}")
    shutil.copytree(source, partial / SPARK_HOME.lstrip("/"), symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "work"))
    partial.rename(tree)
    prune(images, "pyspark35-", keep=tree.name)
    return tree


# -- this project's files -------------------------------------------------------------------------


def _project_files() -> list[tuple[str, Path]]:
    """(path in the image, path here) of what the image takes from this checkout."""
    entrypoint = _PROJECT / "docker" / "spark-entrypoint.sh"
    if not entrypoint.is_file():
        raise TestbedError(f"{entrypoint} not found", "build the Spark image from a source checkout")
    files = [(ENTRYPOINT, entrypoint), (PLUGIN_JAR, jar_path())]
    for package in _PROJECT_PACKAGES:
        for path in sorted((_PROJECT / package).rglob("*")):
            rel = path.relative_to(_PROJECT)
            if path.is_file() and "__pycache__" not in rel.parts and rel.parts[:2] != ("spark_secrets", "testbed"):
                files.append((f"{PYTHON_DIR}/{rel.as_posix()}", path))
    return files


def _overlay(root: Path, files: Sequence[tuple[str, Path]]) -> Path:
    for target, source in files:
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        dest.chmod(0o755 if target == ENTRYPOINT or source.stat().st_mode & 0o111 else 0o644)
    for dirpath, _, _ in os.walk(root):
        Path(dirpath).chmod(0o755)
    return root
