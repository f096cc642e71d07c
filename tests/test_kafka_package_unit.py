"""kafka-python's protocol modules without its package's ``__init__`` (:func:`spark_secrets.tokens.kafkaproto.load`):
a cold submission with a Kafka cluster does not import kafka-python's clients, and a job's own ``import kafka`` in
the same process still gets the whole package. Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("kafka")

CLIENTS = ("kafka.admin", "kafka.consumer", "kafka.producer")

OURS_THEN_THE_JOBS = """
import json, sys
from spark_secrets.tokens import kafkaproto
messages = kafkaproto.messages()
kafkaproto.load("kafka.protocol.sasl"); kafkaproto.load("kafka.protocol.metadata"); errors = kafkaproto.load("kafka.errors")
before = sorted(m for m in sys.modules if m.startswith(CLIENTS))
import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
import kafka.protocol.api_message
print(json.dumps({"before": before, "version": kafka.__version__, "consumer": KafkaConsumer.__name__,
                  "one_copy": kafka.errors is errors and messages.ApiMessage is kafka.protocol.api_message.ApiMessage,
                  "missing": not hasattr(kafka, "no_such_name")}))
"""

PLAIN = """
import json, sys
import kafka.protocol.api_message
print(json.dumps({"before": sorted(m for m in sys.modules if m.startswith(CLIENTS))}))
"""


def _run(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", f"CLIENTS = {CLIENTS!r}\n{code}"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_the_protocol_comes_without_the_clients_and_the_jobs_import_kafka_gets_the_whole_package() -> None:
    """Control: importing the same protocol module plainly runs the package's ``__init__``, which loads the clients."""
    ours = _run(OURS_THEN_THE_JOBS)
    assert ours["before"] == []
    assert ours["consumer"] == "KafkaConsumer" and ours["version"] and ours["one_copy"] and ours["missing"]
    assert set(_run(PLAIN)["before"]) >= set(CLIENTS)
