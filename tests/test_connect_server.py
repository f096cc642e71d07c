"""The Connect server's driver program (spark_secrets.connect.server) under a real spark-submit, local mode on
this host: Spark's Connect service with its pre-shared token, reached by a client process that has only
pyspark's Connect client and the bearer channel; wrong and missing tokens refused by the server; a query longer
than the idle timeout keeps it up; once idle for the timeout it ends by itself."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spark_secrets.testbed.daemon import free_port
from spark_secrets.testbed.spark import spark_env, spark_home

pytestmark = pytest.mark.testbed
pytest.importorskip("grpc", reason="the Connect client's packages (the connect extra)")

SERVER = Path(__file__).resolve().parent.parent / "spark_secrets" / "connect" / "server.py"
TOKEN = "connect-test-3c9e71d0"
IDLE_S = 10
CLIENT = """
import sys, time
from pyspark.sql.connect.session import SparkSession
from spark_secrets.connect.channel import BearerChannelBuilder
port, token, sleep = sys.argv[1], sys.argv[2], float(sys.argv[3])
url = f"sc://127.0.0.1:{port}"
builder = SparkSession.builder.remote(url) if token == "-" else SparkSession.builder.channelBuilder(
    BearerChannelBuilder(url, token))
spark = builder.getOrCreate()
try:
    if sleep:  # a query that runs for that long on the server
        print("ROWS", len(spark.sql(f"SELECT java_method('java.lang.Thread', 'sleep', {int(sleep * 1000)}L)").collect()))
    else:
        print("ROWS", spark.range(7).count())
except Exception as exc:
    print("REFUSED", str(exc).replace(chr(10), " ")[:600])
from pyspark import SparkContext
print("NO JVM" if SparkContext._gateway is None else "JVM")  # pyspark's Connect client starts none
"""


def _client(port: int, token: str, sleep: float = 0) -> str:
    done = subprocess.run([sys.executable, "-c", CLIENT, str(port), token, str(sleep)], capture_output=True,
                          text=True, timeout=90, env={k: v for k, v in spark_env().items()
                                                       if k != "SPARK_CONNECT_AUTHENTICATE_TOKEN"})
    return done.stdout + done.stderr[-2000:]


def test_only_the_token_holder_runs_queries_and_the_server_ends_once_idle(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    argv = [str(spark_home() / "bin" / "spark-submit"), "--master", "local[2]",
            "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.ui.enabled=false",
            str(SERVER), str(IDLE_S)]
    server = subprocess.Popen(argv, env={**spark_env(), "SPARK_CONNECT_AUTHENTICATE_TOKEN": TOKEN},
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while f"Connect server on port {port}" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)

        ours = _client(port, TOKEN)
        assert "ROWS 7" in ours and "NO JVM" in ours, ours
        wrong = _client(port, "not-" + TOKEN)
        assert "REFUSED" in wrong and "Invalid authentication token" in wrong, wrong
        anonymous = _client(port, "-")  # pyspark's own channel, no token
        assert "REFUSED" in anonymous and "No authentication token provided" in anonymous, anonymous
        # The control for the refusal: the same call with the token is the one above that ran.
        # A query longer than the idle timeout: the server stays up through it and after it.
        slow = _client(port, TOKEN, sleep=IDLE_S * 1.5)
        last_call = time.time()
        assert "ROWS 1" in slow, slow
        assert server.poll() is None, log.read_text()[-3000:]
        server.wait(IDLE_S * 4)
        ended = time.time()
    finally:
        if server.poll() is None:
            server.kill()
    text = log.read_text()
    assert server.returncode == 0, text[-3000:]
    said = re.search(r"idle for (\d+) s: stopping the Connect server", text)
    assert said and int(said.group(1)) >= IDLE_S, text[-3000:]
    assert ended - last_call >= IDLE_S - 1, (ended - last_call)
    assert TOKEN not in text
