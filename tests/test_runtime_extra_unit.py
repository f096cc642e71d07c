"""Issue 29: a job that only reads its secrets needs neither HdfsCLI nor pyarrow (the ``runtime`` extra).

Each probe runs in a fresh interpreter, since this one has both installed and imported: in the blocked
one a ``sys.meta_path`` finder makes ``hdfs`` and ``pyarrow`` fail to import as if they were absent.
``test_runtime_extra.py`` checks the same in a venv with only ``pip install .``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import spark_secrets.runtime as runtime
from spark_secrets.errors import ConfigError
from spark_secrets.runtime import _extra, client, filesystem

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install 'spark-secrets[runtime]'"

#: Installed before anything else in the child: ``hdfs`` and ``pyarrow`` (and their submodules) are absent.
BLOCKER = '''
import sys

class _Absent:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in ("hdfs", "pyarrow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Absent)
'''

#: What a secrets-only job does, then what needs the extra; prints a JSON report.
PROBE = '''
import json, sys
from spark_secrets.runtime import secret, fresh, on_change
out = {"secret": secret("db-password"), "fresh": fresh("db-password").value}
on_change("db-password", print, interval=60).stop()
out["loaded"] = sorted({m.split(".")[0] for m in sys.modules} & {"hdfs", "pyarrow"})
try:
    import hdfs  # noqa: F401
    out["hdfs importable"] = True
except ImportError:
    out["hdfs importable"] = False

from spark_secrets.errors import SparkSecretsError
from spark_secrets.runtime import arrow_filesystem, hdfs_client

def attempt(call):
    try:
        made = call()
        kind = made if isinstance(made, type) else type(made)
        return {"ok": kind.__module__ + "." + kind.__qualname__}
    except SparkSecretsError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}

out["hdfs_client"] = attempt(lambda: hdfs_client())
out["arrow_filesystem"] = attempt(lambda: arrow_filesystem())

def token_file_client():
    from spark_secrets.runtime import TokenFileClient
    return TokenFileClient

out["TokenFileClient"] = attempt(token_file_client)
print(json.dumps(out))
'''


def probe(tmp_path: Path, *, blocked: bool) -> dict[str, object]:
    secrets_dir, conf_dir = tmp_path / "secrets", tmp_path / "hadoop-conf"
    secrets_dir.mkdir()
    conf_dir.mkdir()  # no core-site.xml: no fs.defaultFS
    (secrets_dir / "db-password").write_text("s3cret")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "SPARK_SECRETS_DIR": str(secrets_dir),
           "HADOOP_CONF_DIR": str(conf_dir)}
    code = (BLOCKER if blocked else "") + PROBE
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    report: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


def test_job_secrets_import_and_read_without_hdfs_and_pyarrow(tmp_path: Path) -> None:
    report = probe(tmp_path, blocked=True)
    assert report["hdfs importable"] is False  # the blocker works
    assert report["secret"] == report["fresh"] == "s3cret"
    assert report["loaded"] == []
    needs = {"hdfs_client": "HdfsCLI (module hdfs)", "arrow_filesystem": "pyarrow",
             "TokenFileClient": "HdfsCLI (module hdfs)"}
    for name, missing in needs.items():
        error = report[name]
        assert isinstance(error, dict) and error["error"] == "ConfigError", (name, error)
        message = error["message"]
        assert "\n" not in message and message.endswith(f": {INSTALL}"), message
        assert missing in message and name in message, message


def test_with_the_extra_the_real_client_is_reached(tmp_path: Path) -> None:
    """Control: without the blocker, the same calls get past the import to the client's own checks."""
    report = probe(tmp_path, blocked=False)
    assert report["hdfs importable"] is True
    assert report["secret"] == "s3cret" and report["loaded"] == []  # still lazy with the extra installed
    assert report["TokenFileClient"] == {"ok": "spark_secrets.runtime.client.TokenFileClient"}
    for name in ("hdfs_client", "arrow_filesystem"):
        error = report[name]
        assert isinstance(error, dict) and error["error"] == "ConfigError", (name, error)
        assert "no filesystem given and no fs.defaultFS" in error["message"] and INSTALL not in error["message"]


def test_a_missing_pyarrow_alone_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(module: str) -> None:
        raise ModuleNotFoundError("No module named 'pyarrow.fs'", name="pyarrow.fs")

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(ConfigError) as caught:
        runtime.arrow_filesystem("hdfs://ns1")
    assert str(caught.value) == ("spark_secrets.runtime.arrow_filesystem() needs pyarrow, which is not installed: "
                                 f"{INSTALL}")


def test_other_import_failures_are_not_taken_for_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError, match="spark_secrets.runtime.no_such_module"):
        _extra.load("spark_secrets.runtime.no_such_module", "a test")


@pytest.mark.parametrize(("wrapper", "real"), [(runtime.hdfs_client, client.hdfs_client),
                                               (runtime.arrow_filesystem, filesystem.arrow_filesystem)],
                         ids=["hdfs_client", "arrow_filesystem"])
def test_the_package_functions_take_what_the_real_ones_take(wrapper: object, real: object) -> None:
    assert callable(wrapper) and callable(real)
    assert inspect.signature(wrapper).parameters == inspect.signature(real).parameters


def test_public_names_still_resolve() -> None:
    assert runtime.__all__ == ["FreshSecret", "MissingSecretError", "TokenFile", "TokenFileClient", "arrow_filesystem",
                               "fresh", "hdfs_client", "on_change", "secret", "secret_bytes", "secret_path"]
    assert all(getattr(runtime, name) is not None for name in runtime.__all__)
    assert runtime.TokenFileClient is client.TokenFileClient
    with pytest.raises(AttributeError):
        runtime.not_exported  # noqa: B018 - control: an unknown name is an error
