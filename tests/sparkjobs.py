"""Helpers for tests that run PySpark jobs against the HA test cluster while token files change."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spark_secrets.credentials import Credentials
from spark_secrets.fetcher import obtain_tokens
from spark_secrets.hadoopconf import HadoopConf
from spark_secrets.plugin import PLUGIN_CLASS
from spark_secrets.spnego import SpnegoAuth
from spark_secrets.testbed.bed import Testbed
from spark_secrets.testbed.hadoop import SecureHdfs
from spark_secrets.testbed.paths import cache_dir
from spark_secrets.testbed.projection import SecretVolume
from spark_secrets.testbed.spark import private_spark_home, spark_env

from conftest import HA_LIFETIMES

MAX_LIFETIME_S = HA_LIFETIMES.max_lifetime_ms / 1000
JOB = Path(__file__).parent / "scripts" / "refresh_job.py"
KEY = "hadoop-tokens"


@dataclass
class Projector:
    """Plays the renew service and kubelet: puts fresh tokens into the volume on a schedule."""

    volume: SecretVolume
    fetch: Callable[[], Credentials]
    every: float = 8.0
    #: (seconds after start, data) pairs that replace a regular update, to inject bad content.
    special: Sequence[tuple[float, dict[str, bytes]]] = ()
    issued: list[Credentials] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def publish(self) -> None:
        creds = self.fetch()
        self.issued.append(creds)
        self.volume.update({KEY: creds.to_bytes()})

    def __enter__(self) -> Projector:
        self.publish()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._began = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        pending = sorted(self.special)
        next_regular = self.every
        while not self._stop.is_set():
            now = time.monotonic() - self._began
            if pending and pending[0][0] <= now:
                self.volume.update(pending.pop(0)[1])
            elif now >= next_regular:
                self.publish()
                next_regular += self.every
            self._stop.wait(0.1)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def secret_forms(self) -> list[bytes]:
        return [form for creds in self.issued for t in creds
                for form in (t.password.hex().encode(), t.encode_url().encode())]


def ha_fetch(ha_hdfs: SecureHdfs) -> Callable[[], Credentials]:
    conf = HadoopConf.load(ha_hdfs.client_conf_dir())
    return lambda: obtain_tokens(["hdfs://ns1"], "alice", SpnegoAuth(), conf=conf)


@dataclass
class JobRun:
    returncode: int
    stdout: str
    stderr: str
    executor_logs: str

    @property
    def seconds(self) -> float:
        match = re.search(r"DONE \d+ rounds in ([\d.]+)s", self.stdout)
        assert match, self.stdout
        return float(match.group(1))

    @property
    def rounds(self) -> int:
        return int(re.search(r"DONE (\d+) rounds", self.stdout).group(1))  # type: ignore[union-attr]


def run_job(testbed: Testbed, ha_hdfs: SecureHdfs, tmp_path: Path, volume: SecretVolume, *, plugin: Path | None,
             master: str = "local[2]", seconds: float = MAX_LIFETIME_S + 15, line: str = "4") -> JobRun:
    env = testbed.env("alice", tmp_path / "no-ticket-cache")
    env["HADOOP_CONF_DIR"] = str(ha_hdfs.client_conf_dir())
    env["HADOOP_TOKEN_FILE_LOCATION"] = str(volume.path(KEY))
    if line == "3.5":
        env["PYTHONPATH"] = str(cache_dir() / "spark-3.5")
    java_opts = " ".join(testbed.kdc_required().java_options())
    home = private_spark_home(tmp_path / "spark-home", line)
    argv = [str(home / "bin" / "spark-submit"), "--master", master,
            "--conf", "spark.ui.enabled=false",
            # Close idle NameNode connections after 1 s (default 10 s): an open connection stays
            # authenticated, so only a new one shows whether the JVM holds a valid token.
            "--conf", "spark.hadoop.ipc.client.connection.maxidletime=1000",
            "--conf", f"spark.executor.extraJavaOptions={java_opts}",
            "--conf", f"spark.executorEnv.HADOOP_TOKEN_FILE_LOCATION={volume.path(KEY)}",
            "--conf", "spark.executor.memory=768m"]
    if plugin is not None:
        argv += ["--jars", str(plugin), "--conf", f"spark.plugins={PLUGIN_CLASS}",
                 "--conf", "spark.secrets.refresh.pollInterval=5s"]
    argv += [str(JOB), f"hdfs://ns1/user/alice/refresh-{time.time_ns()}", str(seconds), "2.5"]
    proc = subprocess.run(argv, env=spark_env(env, line, home), capture_output=True, text=True, timeout=seconds + 240)
    logs = "".join(p.read_text(errors="replace") for p in sorted((home / "work").rglob("stderr")))
    return JobRun(proc.returncode, proc.stdout, proc.stderr, logs)
