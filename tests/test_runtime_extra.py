"""Issue 29's "must show": in a fresh venv with only ``pip install .`` (no extras), a job's code imports
``spark_secrets.runtime.secret``, and HdfsCLI is not there. Needs PyPI (install_requires), not the test bed.

The project is copied first (sources only), because pip builds a local directory in place and would
leave ``build/`` and ``*.egg-info`` in the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install 'spark-secrets[runtime]'"
_NOT_SOURCES = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
                                      ".pytest_cache", ".hypothesis", ".venv", ".ruff_cache")


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_secret_imports_in_a_venv_without_the_runtime_extra(tmp_path: Path) -> None:
    source, venv, work = tmp_path / "spark-secrets", tmp_path / "venv", tmp_path / "job"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    work.mkdir()
    (work / "secrets").mkdir()
    (work / "secrets" / "db-password").write_text("s3cret")
    # Nothing from this interpreter or checkout; no Spark, so the wheel skips the JVM plugin jar quickly.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "SPARK_HOME", "VIRTUAL_ENV")}
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120)
    assert made.returncode == 0, made.stderr
    python = str(venv / "bin" / "python")
    pip = _run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(source)], tmp_path, env,
               600)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]

    job = _run([python, "-c", "import spark_secrets; from spark_secrets.runtime import secret, fresh, on_change; "
                "print(spark_secrets.__file__); print(secret('db-password'))"],
               work, {**env, "SPARK_SECRETS_DIR": str(work / "secrets")}, 120)
    assert job.returncode == 0, job.stderr
    where, value = job.stdout.split()
    assert Path(where).is_relative_to(venv) and value == "s3cret"  # the installed package, not the checkout

    # Control: the extra is really absent there, and what needs it says which extra to install.
    absent = _run([python, "-c", "import hdfs"], work, env, 60)
    assert absent.returncode != 0 and "No module named 'hdfs'" in absent.stderr
    needs = _run([python, "-c", "from spark_secrets.runtime import hdfs_client; hdfs_client('hdfs://ns1')"], work, env,
                 60)
    assert needs.returncode != 0
    assert needs.stderr.strip().splitlines()[-1] == (
        "spark_secrets.errors.ConfigError: spark_secrets.runtime.hdfs_client() needs HdfsCLI (module hdfs), "
        f"which is not installed: {INSTALL}")
