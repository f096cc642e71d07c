"""Compile the refresher plugin (``src/``) into a jar: javac ``--release 8`` against pyspark's jars.

Standard library only, so that ``setup.py`` can run it while building a wheel, before the package
is importable. Bytecode 52 runs on Java 8, 11 and 17 and later, under Spark 3.5 and 4.x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

SOURCES = Path(__file__).parent / "src"
JAR_NAME = "spark-secrets-plugin.jar"
_MANIFEST = "Manifest-Version: 1.0\r\nCreated-By: spark-secrets\r\nImplementation-Title: spark-secrets plugin\r\n\r\n"


class BuildError(Exception):
    """The jar cannot be built here (no JDK, no Spark jars, or javac failed)."""


def javac() -> str:
    """``$JAVA_HOME/bin/javac`` or the one on PATH."""
    candidates = [os.path.join(os.environ["JAVA_HOME"], "bin", "javac")] if os.environ.get("JAVA_HOME") else []
    candidates.append(shutil.which("javac") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise BuildError("no javac found: install a JDK (8 or later) or set JAVA_HOME")


def spark_jars() -> Path:
    """Spark's jars (Spark's and Hadoop's public API): ``$SPARK_HOME/jars``, else the installed pyspark's."""
    if os.environ.get("SPARK_HOME") and any((Path(os.environ["SPARK_HOME"]) / "jars").glob("spark-core_*.jar")):
        return Path(os.environ["SPARK_HOME"]) / "jars"
    try:
        import pyspark  # noqa: PLC0415 - optional at build time
    except ImportError:
        raise BuildError("neither SPARK_HOME nor pyspark gives Spark's jars to compile against") from None
    jars = Path(pyspark.__file__).parent / "jars"
    if not any(jars.glob("spark-core_*.jar")):
        raise BuildError(f"no spark-core jar in {jars}")
    return jars


def sources(root: Path = SOURCES) -> list[Path]:
    return sorted(root.rglob("*.java"))


def build_jar(dest: Path, classpath: Path | None = None) -> Path:
    """Compile every source under ``src/`` and write the jar to ``dest`` (atomically)."""
    files = sources()
    if not files:
        raise BuildError(f"no plugin sources under {SOURCES}")
    cp = classpath or spark_jars()
    with tempfile.TemporaryDirectory(prefix="spark-secrets-plugin-") as tmp:
        classes = Path(tmp) / "classes"
        classes.mkdir()
        proc = subprocess.run([javac(), "--release", "8", "-Xlint:-options", "-encoding", "UTF-8",
                               "-cp", f"{cp}/*", "-d", str(classes), *map(str, files)],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise BuildError(f"javac failed:\n{proc.stdout}{proc.stderr}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", _MANIFEST)
            for cls in sorted(classes.rglob("*.class")):
                jar.write(cls, cls.relative_to(classes).as_posix())
        os.replace(partial, dest)
    return dest
