"""The JVM refresher plugin at the unit level, on the real test bed's HDFS: the refresher in a plain
Hadoop JVM never gives a torn read while the token file is swapped thousands of times faster than
kubelet ever would (a volume without a node: ``testbed.projection``), and the jar is Java 8 bytecode
shipped in the wheel. Jobs with the plugin run in real pods: ``test_pods.py``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.plugin.jar import jar_path
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.jvm import compile_java
from spark_secrets.testbed.projection import SecretVolume

from conftest import KEY

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def plugin_jar() -> Path:
    return jar_path()


@pytest.fixture(scope="module")
def harness(testbed: Testbed, plugin_jar: Path) -> Path:
    """tests/jvm/plugin: drives the plugin's refresher in a plain Hadoop JVM."""
    sources = sorted((Path(__file__).parent / "jvm" / "plugin").glob("*.java"))
    return compile_java(sources, testbed.dir / "plugin-harness", classpath=[plugin_jar])


def test_swaps_during_reads_never_give_a_torn_read(testbed: Testbed, alice_ccache: Path, tmp_path: Path,
                                                  harness: Path, plugin_jar: Path) -> None:
    assert testbed.hdfs is not None
    contents = [obtain_tokens([testbed.hdfs.webhdfs_url], RENEWER, SpnegoAuth()).to_bytes() for _ in range(2)]
    volume = SecretVolume(tmp_path / "secret-volume")
    volume.update({KEY: contents[0]})
    log = tmp_path / "harness.log"  # thousands of INFO lines: a file, not a pipe that could fill up
    proc = subprocess.Popen(testbed.hdfs.java_argv("io.sparksecrets.plugin.RefresherHarness", "stress",
                                                   str(volume.path(KEY)), "6", conf_dir=testbed.hdfs.client_conf_dir(),
                                                   extra_classpath=[harness, plugin_jar]),
                            env=testbed.hdfs.java_env(), stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    swaps = 0
    while proc.poll() is None:
        volume.update({KEY: contents[swaps % 2]})
        swaps += 1
    out, _ = proc.communicate()
    err = log.read_text(errors="replace")
    match = re.search(r"READS (\d+) FAILED (\d+) REFRESHES (\d+)", out)
    assert match, out + err[-2000:]
    reads, failed, refreshes = map(int, match.groups())
    assert failed == 0 and reads > 1000 and refreshes > 100 and swaps > 500, (reads, failed, refreshes, swaps)


def test_plugin_jar_is_java8_bytecode_and_ships_in_the_wheel(tmp_path: Path, plugin_jar: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"  # a copy, so that setuptools' build/ directory stays out of the checkout
    shutil.copytree(root, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                ".pytest_cache", ".hypothesis"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("spark_secrets-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        jar_bytes = whl.read("spark_secrets/jvm/spark-secrets-plugin.jar")
        wheel_files = whl.namelist()
    # Development tools stay in the checkout: no test bed, no demo in what users install.
    assert not [n for n in wheel_files if n.startswith("spark_secrets/testbed/") or n.endswith("demo.py")]
    assert "spark_secrets/renew/service.py" in wheel_files and "submit_steps/notebook.py" in wheel_files
    (tmp_path / "plugin.jar").write_bytes(jar_bytes)
    with zipfile.ZipFile(tmp_path / "plugin.jar") as jar:
        names = jar.namelist()
        cls = jar.read("io/sparksecrets/plugin/TokenRefreshPlugin.class")
    assert "io/sparksecrets/plugin/TokenFileRefresher.class" in names
    assert cls[:4] == b"\xca\xfe\xba\xbe" and int.from_bytes(cls[6:8], "big") == 52  # Java 8 class files
    cli = subprocess.run([sys.executable, "-m", "spark_secrets", "jar"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0 and Path(cli.stdout.strip()).is_file()
