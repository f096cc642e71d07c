"""The JVM refresher plugin on the real test bed: PySpark jobs on the HA cluster (tokens live 20 s,
at most 40 s) outlive the max lifetime while the test swaps the token file kubelet-style; the same
job without the plugin fails; bad files keep the job running; swaps never give a torn read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from spark_secrets.fetcher import obtain_tokens
from spark_secrets.plugin import jar_path
from spark_secrets.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.jvm import compile_java
from spark_secrets.testbed.projection import SecretVolume

from sparkjobs import KEY, MAX_LIFETIME_S, Projector, ha_fetch, run_job

pytestmark = pytest.mark.testbed


@pytest.fixture(scope="module")
def plugin_jar() -> Path:
    return jar_path()


@pytest.fixture(scope="module")
def harness(testbed: Testbed, plugin_jar: Path) -> Path:
    """tests/jvm/plugin: drives the plugin's refresher in a plain Hadoop JVM."""
    sources = sorted((Path(__file__).parent / "jvm" / "plugin").glob("*.java"))
    return compile_java(sources, testbed.dir / "plugin-harness", classpath=[plugin_jar])


@pytest.mark.parametrize("master", ["local[2]", "local-cluster[1,1,1024]"])
def test_job_outlives_the_token_max_lifetime_with_the_plugin(testbed: Testbed, ha_hdfs: SecureHdfs, alice_ccache: Path,
                                                             tmp_path: Path, plugin_jar: Path, master: str) -> None:
    volume = SecretVolume(tmp_path / "secret-volume")
    with Projector(volume, ha_fetch(ha_hdfs)) as projector:
        run = run_job(testbed, ha_hdfs, tmp_path, volume, plugin=plugin_jar, master=master)
    assert run.returncode == 0, run.stdout[-1500:] + run.stderr[-3000:]
    assert run.seconds > MAX_LIFETIME_S + 5 and run.rounds >= 8
    assert volume.updates >= 6
    assert run.stderr.count("driver now uses") >= 4, run.stderr[-3000:]
    if master.startswith("local-cluster"):
        # A separate executor JVM refreshed its own tokens.
        assert len(re.findall(r"executor \d+ now uses", run.executor_logs)) >= 4, run.executor_logs[-3000:]
    for form in projector.secret_forms():
        assert form not in run.stderr.encode() and form not in run.executor_logs.encode()


def test_without_the_plugin_the_job_fails_once_its_token_expires(testbed: Testbed, ha_hdfs: SecureHdfs,
                                                                 alice_ccache: Path, tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "secret-volume")
    with Projector(volume, ha_fetch(ha_hdfs)):
        run = run_job(testbed, ha_hdfs, tmp_path, volume, plugin=None)
    assert run.returncode == 1 and "FAILED at" in run.stdout, run.stdout[-1500:]
    assert "has expired" in run.stderr  # the NameNode's InvalidToken for the job's first token
    assert run.seconds < MAX_LIFETIME_S


def test_spark_35_job_survives_a_corrupt_then_missing_token_file(testbed: Testbed, ha_hdfs: SecureHdfs,
                                                                  alice_ccache: Path, tmp_path: Path,
                                                                  plugin_jar: Path) -> None:
    """Java 8 bytecode on Spark 3.5; garbage and a removed key keep the current tokens."""
    volume = SecretVolume(tmp_path / "secret-volume")
    bad = [(9.0, {KEY: b"HDTS\x00\x02garbage"}), (13.0, {"unrelated": b"x"})]
    with Projector(volume, ha_fetch(ha_hdfs), special=bad):
        run = run_job(testbed, ha_hdfs, tmp_path, volume, plugin=plugin_jar, line="3.5")
    assert run.returncode == 0, run.stdout[-1500:] + run.stderr[-3000:]
    assert "Spark version 3.5" in run.stderr or "version 3.5" in run.stderr
    assert run.seconds > MAX_LIFETIME_S + 5
    assert "is not a complete Hadoop token file" in run.stderr and "is missing" in run.stderr
    assert "keeps its current tokens and retries" in run.stderr
    assert run.stderr.count("driver now uses") >= 4


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
    (tmp_path / "plugin.jar").write_bytes(jar_bytes)
    with zipfile.ZipFile(tmp_path / "plugin.jar") as jar:
        names = jar.namelist()
        cls = jar.read("io/sparksecrets/plugin/TokenRefreshPlugin.class")
    assert "io/sparksecrets/plugin/TokenFileRefresher.class" in names
    assert cls[:4] == b"\xca\xfe\xba\xbe" and int.from_bytes(cls[6:8], "big") == 52  # Java 8 class files
    cli = subprocess.run([sys.executable, "-m", "spark_secrets", "jar"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0 and Path(cli.stdout.strip()).is_file()
