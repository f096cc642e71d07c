"""Compile small Java helpers (tests', benchmarks') against the test bed's Hadoop jars."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import hadoop_lib, java_home


def compile_java(sources: Sequence[Path], dest: Path, classpath: Sequence[Path] = ()) -> Path:
    """``javac`` the ``sources`` into ``dest`` (a class directory) and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    cp = ":".join([*map(str, classpath), f"{hadoop_lib()}/*"])
    proc = subprocess.run([str(java_home() / "bin" / "javac"), "-nowarn", "-cp", cp, "-d", str(dest),
                           *map(str, sources)], capture_output=True, text=True)
    if proc.returncode:
        raise TestbedError("javac failed", proc.stderr.strip()[-1000:])
    return dest
