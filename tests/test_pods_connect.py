"""Notebooks on their users' own Spark Connect servers in real pods (issue 32): the run in connectjobs.py
(started by the Kafka streaming test when the whole suite runs, else here), judged here."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND
from spark_secrets.hadoop.token import Token
from spark_secrets.testbed.bed import Testbed
from spark_secrets.testbed.hadoop import SecureHdfs

from connectjobs import IDLE_S, MAX_S, ROUNDS, SECRET_FILES, ConnectRun, lines
from renewers import assert_cancelled

pytestmark = pytest.mark.testbed
pytest.importorskip("grpc", reason="the Connect client's packages (the connect extra)")

#: What the NameNode answers for a token past its max date: Hadoop's InvalidToken, whose message says the token has
#: expired or (once removed) cannot be found in its cache.
NAMENODE_REFUSAL = ("InvalidToken", "can't be found in cache", "is expired", "has expired")


def _hdfs(run: ConnectRun, user: str) -> list[tuple[float, Token]]:
    """The server's HDFS token in each token file its Secret held, with when it was seen."""
    return [(seen, next(t for t in creds if t.kind == "HDFS_DELEGATION_TOKEN")) for seen, creds in run.tokens(user)]


@pytest.mark.timeout(2700)  # run alone, it waits for the whole run (about 15 min, more on a busy node)
def test_notebooks_query_their_own_servers_across_an_idle_gap_and_three_max_lifetimes(
        testbed: Testbed, pod_hdfs: SecureHdfs, connect_run: ConnectRun, tmp_path: Path) -> None:
    run = connect_run.start()  # started by the Kafka streaming test when the whole suite runs
    run.join(2400)
    alice, bob, again = run.out["alice"], run.out["bob"], run.out["again"]

    # alice: every round ran, on her own server, from a process with pyspark-client alone (no Spark jars), no Java,
    # no JVM child and, once connect() returned, no ticket cache.
    (connected,) = lines(alice.stdout, "CONNECTED")
    (done,) = lines(alice.stdout, "DONE")
    assert done == {"children": [], "java": None, "java_home": None, "kerberos": False, "spark_jars": False,
                    "pyspark": ["pyspark-client"]}, done
    rounds = lines(alice.stdout, "ROUND")
    assert [r.get("ok") for r in rounds] == [True] * len(ROUNDS), alice.stdout[-3000:] + alice.stderr[-3000:]
    assert "started your Connect server at sc://" in alice.stderr, alice.stderr[-2000:]
    assert rounds[3]["began"] - rounds[2]["at"] > MAX_S, "the idle gap is not longer than one max lifetime"
    issued = {t.decode_identifier().sequence_number: t.decode_identifier() for _, t in _hdfs(run, "alice")}
    first = min(issued.values(), key=lambda i: i.issue_date)
    assert rounds[-1]["at"] - first.issue_date / 1000 > 3 * MAX_S, (rounds[-1]["at"], first.issue_date)
    # The server's tokens were re-issued (each a new sequence number, all hers) and reached its pods through kubelet.
    assert len(issued) >= 3, sorted(issued)
    assert {i.owner.split("@")[0] for i in issued.values()} == {"alice"}
    # Each round also added a row to a Hive table on the Kerberized metastore and counted them (its 40 s tokens
    # renewed and re-issued in the same Secret).
    assert [r["hive"] for r in rounds] == [{"n": i + 1, "m": i} for i in range(len(ROUNDS))], rounds
    hive = {t.identifier for _, creds in run.tokens("alice") for t in creds if t.kind == HIVE_DELEGATION_KIND}
    assert len(hive) >= 3, len(hive)
    # Everything her queries wrote is hers: the NameNode took every token her server used as alice's, never bob's.
    listing = pod_hdfs.fs("-ls", "-R", connected["target"], ccache=testbed.ticket_cache("alice"))
    entries = [line.split() for line in listing.stdout.decode().splitlines() if line[:1] in ("d", "-")]
    assert listing.returncode == 0 and len(entries) >= 2 * len(ROUNDS), listing
    assert {entry[2] for entry in entries} == {"alice"}, listing.stdout.decode()[-2000:]
    # Her job secrets (a local file's value copied into her server's Secret, a key of a Secret of her namespace)
    # were files in her server's pods, read there by Spark in her first and last rounds and by the reusing notebook.
    secrets = {SECRET_FILES[name]: hashlib.sha256(value.encode()).hexdigest() for name, value in run.secrets.items()}
    assert rounds[0]["secrets"] == rounds[-1]["secrets"] == secrets, (rounds[0], rounds[-1])

    # bob's server without the plugin (the control): its queries run until its first token passes its max date (on
    # a busy node that can be during its first query: the token is made before the server starts), after the
    # Secret's first re-issue; the query that fails fails with the NameNode's refusal, the ones before succeeded.
    control = lines(bob.stdout, "ROUND")
    failed = next((r for r in control if "error" in r), None)
    assert failed is not None, "bob's server without the plugin never failed: " + bob.stdout[-2000:]
    assert all(r.get("ok") for r in control[:control.index(failed)]), control
    assert any(word in failed["error"] for word in NAMENODE_REFUSAL), failed["error"]
    bob_tokens = _hdfs(run, "bob")
    first_max = bob_tokens[0][1].decode_identifier().max_date / 1000
    assert len(bob_tokens) >= 2 and bob_tokens[1][0] < failed["at"], (bob_tokens, failed["at"])
    assert failed["at"] >= first_max, (failed, first_max)  # not before the token it holds was past its max date
    assert {t.decode_identifier().owner.split("@")[0] for _, t in bob_tokens} == {"bob"}

    # alice's client on bob's server: refused by the server without a token and with her own server's token.
    assert "missing" not in run.knocks, run.knocks
    assert "REFUSED" in run.knocks["none"] and "No authentication token provided" in run.knocks["none"], run.knocks
    assert "REFUSED" in run.knocks["alice's"] and "Invalid authentication token" in run.knocks["alice's"], run.knocks
    # From a pod inside the cluster, connect()'s `auto` address is her server's Service by name (the cluster's DNS),
    # and a query with her bearer token runs there.
    (inside,) = lines(run.knocks["in-cluster"], "IN-CLUSTER")
    assert inside["host"].endswith("-driver-svc.alice-nb.svc") and inside.get("count") == 3, inside

    # Meanwhile alice's status showed her server beside its tokens, and doctor --connect found it answering.
    status, doctor = run.cli["status"], run.cli["doctor"]
    assert re.search(rf"Connect server of alice: pod connect-alice-\S+-driver, up .+, stops after {IDLE_S} s idle",
                     status.stdout), status.stdout + status.stderr[-2000:]
    assert re.search(r"✔ connect server: connect-alice-\S+-driver answers at \S+", doctor.stdout), doctor.stdout
    assert "✔ connect client: pyspark-client 4." in doctor.stdout, doctor.stdout

    # A second connect() of alice's reused her server; idle for its timeout, it went, and its tokens with it.
    assert "reusing your Connect server at " in again.stderr, again.stderr[-2000:]
    assert [r.get("ok") for r in lines(again.stdout, "ROUND")] == [True], again.stdout + again.stderr[-2000:]
    assert lines(again.stdout, "ROUND")[0]["secrets"] == secrets
    assert run.gone_after is not None and IDLE_S - 20 < run.gone_after < IDLE_S + 120, run.gone_after
    assert run.service is not None
    (_, last), = _hdfs(run, "alice")[-1:]
    assert_cancelled(testbed, pod_hdfs, last, run.service, tmp_path)

    # alice's bearer token and job secrets are in no pod spec, ConfigMap, driver log or notebook output (read while
    # her server ran).
    token = run.bearers["alice"]
    texts = [json.dumps(run.api.api_client.sanitize_for_serialization(p)) for p in run.servers.values()]
    texts += [json.dumps(run.config_maps), run.logs["alice"], alice.stdout + alice.stderr, again.stdout + again.stderr,
              bob.stdout + bob.stderr, json.dumps(run.knocks)]
    assert any("spark_secrets.connect.server" in text for text in texts)  # the ConfigMaps were read
    for text in texts:
        for value in (token, *run.secrets.values()):
            assert value not in text and base64.b64encode(value.encode()).decode() not in text
