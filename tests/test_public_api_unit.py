"""What users import: the curated names resolve, and importing the packages stays cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import spark_secrets
import submit_steps

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", [spark_secrets, submit_steps], ids=lambda p: p.__name__)
def test_every_exported_name_resolves(package: object) -> None:
    names = getattr(package, "__all__")
    assert names and all(getattr(package, name) is not None for name in names)
    with pytest.raises(AttributeError):
        getattr(package, "not_exported")  # control: an unknown name is an error, not None


def test_importing_the_packages_loads_neither_kubernetes_nor_gssapi() -> None:
    code = ("import sys, spark_secrets, submit_steps; spark_secrets.Credentials; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'gssapi', 'pyspark')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
