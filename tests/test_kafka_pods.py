"""A Structured Streaming job on Kerberized Kafka in real pods on the node, with only the mounted token Secret
(issue 30): Spark 4.3 in cluster mode, a driver and two executor pods, Kafka topic to Kafka topic and to Parquet
on secure HDFS, for three times the Kafka token's max lifetime, while the renew service (on the host) is
SIGKILLed and restarted at random. The same job without the refresher plugin is the control: it fails with
Kafka's own authentication error once the token it started with reaches its max lifetime. Beside them, bob's
genuine token planted by alice in a Secret labelled hers is refused by every run of the service (the brokers
name its owner) and never renewed. Every judgement is a real part's: the broker's (Kafka's own tools and
SCRAM sessions), the NameNode's (WebHDFS), the API server's."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
import signal
import subprocess
import threading
import time
from io import BytesIO
from pathlib import Path

import hdfs
import pyarrow.parquet as pq
import pytest
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.kafka import KafkaBroker
from spark_secrets.testbed.spark import IMAGE_PLUGIN_JAR
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, DEFAULT_TOKEN_KEY, KIND_HADOOP_TOKENS,
                                               LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY)
from spark_secrets.tokens.kafka import KAFKA_DELEGATION_KIND, KafkaCluster, KafkaProvider

from conftest import KAFKA_TOKEN_MAX_LIFETIME_MS
from connectjobs import ConnectRun
from renewers import RenewerProcess, wait_until
from test_kafka import ccache_credentials, context, spark_conf
from podjobs import admin_api, driver_ports, job_pods, submit_as_alice
from test_pods import pod_template  # noqa: F401 - a fixture

pytestmark = pytest.mark.testbed
PROVIDER = KafkaProvider()

IN, OUT, CONTROL_OUT = "stream-in", "stream-out", "stream-control-out"
MAX_S = KAFKA_TOKEN_MAX_LIFETIME_MS / 1000
#: Kafka's own words when a SCRAM login presents a token the broker no longer has.
AUTH_ERROR = ("SaslAuthenticationException: Authentication failed during authentication due to invalid "
              "credentials with SASL mechanism SCRAM-SHA-512")


class Killer:
    """The renew service on the host, SIGKILLed every 15-35 s and started again 1-5 s later (seeded)."""

    def __init__(self, bed: Testbed, workdir: Path, extra: tuple[str, ...], seed: int) -> None:
        self.bed, self.workdir, self.extra, self.rng = bed, workdir, extra, random.Random(seed)
        self.services = [self._start()]
        self.kills: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _start(self) -> RenewerProcess:
        assert self.bed.hdfs is not None
        return RenewerProcess(self.bed, self.bed.hdfs, self.workdir / f"run-{len(getattr(self, 'services', []))}",
                              reissue_before=f"{MAX_S / 2:.0f}s", extra=self.extra)

    def _run(self) -> None:
        while not self.stopping.wait(self.rng.uniform(15, 35)):
            self.services[-1].proc.send_signal(signal.SIGKILL)
            self.services[-1].proc.wait()
            self.kills.append(time.monotonic())
            if self.stopping.wait(self.rng.uniform(1, 5)):
                break
            self.services.append(self._start())

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()

    def log(self) -> str:
        return "".join(s.log.read_text() for s in self.services)


def _kafka_tokens(data: bytes) -> list[Token]:
    return [t for t in Credentials.from_bytes(data) if t.kind == KAFKA_DELEGATION_KIND]


def _committed_parquet(client: hdfs.Client, path: str) -> list[str]:
    """The values in the Parquet files the file sink committed (its ``_spark_metadata`` log, compacted or not)."""
    files: set[str] = set()
    for name in client.list(f"{path}/_spark_metadata"):
        with client.read(f"{path}/_spark_metadata/{name}", encoding="utf-8") as reader:
            files |= {json.loads(line)["path"] for line in reader.read().splitlines()[1:] if line.startswith("{")}
    values: list[str] = []
    for file in sorted(files):
        with client.read(re.sub(r"^hdfs://[^/]+", "", file)) as reader:
            values += [str(v) for v in pq.read_table(BytesIO(reader.read())).column("value").to_pylist()]
    return values


# test_pods.py's Spark 3.5 job runs beside this one: both wait for token lifetimes, on one bed.
@pytest.mark.usefixtures("spark35_job")
def test_a_streaming_job_in_pods_reads_and_writes_kafka_for_three_max_lifetimes_while_the_renew_service_is_killed(
        testbed: Testbed, kafka: KafkaBroker, pod_template: Path, renewer_rbac: None, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, connect_run: ConnectRun) -> None:
    # test_pods_connect.py's notebooks wait for token lifetimes too: they start beside this test once the Spark 3.5
    # job's driver runs (started together, the node was so busy that its driver began after its token's max date).
    connect_run.start(delay=150)
    assert testbed.hdfs is not None and testbed.kube is not None
    api = admin_api(testbed)
    alice_cc = testbed.ticket_cache("alice")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{alice_cc}")
    for topic in (IN, OUT, CONTROL_OUT):
        kafka.create_topic(topic)
        kafka.grant_client("alice", topic)
    kafka.acl("alice", ("Read", "Describe"), group="stream-", prefixed=True)  # the checks' consumer group
    kafka.grant_create_tokens(RENEWER, "alice")
    conf = spark_conf(kafka)
    cluster = KafkaCluster.from_conf(conf, "c1")
    assert cluster is not None
    seconds = 3 * MAX_S + 10
    base = {**conf, "spark.secrets.hadoop.filesystems": testbed.hdfs.uri, "spark.secrets.renewer": RENEWER,
            "spark.kubernetes.executor.deleteOnTermination": "false"}
    fs = testbed.hdfs.uri
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    as_alice = context(ccache_credentials(alice_cc), "alice", conf)

    # bob's own token (the service its renewer), planted by alice in a Secret she labels as hers.
    bob_creds = Credentials()
    PROVIDER.obtain([cluster.target], context(ccache_credentials(testbed.ticket_cache("bob")), "bob", conf), bob_creds)
    (bob_token,) = _kafka_tokens(bob_creds.to_bytes())
    alice_api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(testbed.kube.kubeconfig("alice", namespace="alice"))))
    alice_api.create_namespaced_secret("alice", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "planted-kafka", "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS,
                                                         LABEL_OWNER: "alice"},
                     "annotations": {ANNOTATION_FILESYSTEMS: cluster.target}},
        "data": {DEFAULT_TOKEN_KEY: base64.b64encode(bob_creds.to_bytes()).decode()}})

    def submit(name: str, settings: dict[str, str], out: str, executors: int) -> None:
        runs[name] = submit_as_alice(testbed, f"stream-{name}", pod_template,
                             {**base, **settings, "spark.executor.instances": str(executors)}, "kafka_stream_job.py",
                             kafka.bootstrap, IN, out, f"{fs}/user/alice/stream-{name}/out",
                             f"{fs}/user/alice/stream-{name}/checkpoints", str(seconds))

    seed = int(time.time_ns() % 1_000_000)
    print(f"\nkill seed {seed}")
    killer = Killer(testbed, tmp_path / "renewer", ("--kafka-cluster", cluster.target, "--ratio", "0.5"), seed)
    producer = kafka.producer(IN, kafka.kerberos_client_config(alice_cc), tmp_path / "producer.log")
    assert producer.stdin is not None
    produced: list[str] = []
    jobs = [threading.Thread(target=submit, args=("plugin", {"spark.secrets.plugin.jar": IMAGE_PLUGIN_JAR,
                                                             "spark.task.maxFailures": "1"}, OUT, 2)),
            threading.Thread(target=submit, args=("control", {"spark.secrets.plugin.jar": "none",
                                                              **driver_ports(7188)}, CONTROL_OUT, 1))]
    secrets: dict[str, list[bytes]] = {"stream-plugin": [], "stream-control": []}
    changed: dict[str, list[float]] = {"stream-plugin": [], "stream-control": []}  # when each file was first seen
    names: dict[str, str] = {}
    max_ms: dict[bytes, int] = {}  # each Kafka token's max date, as the brokers say it
    producing_until = None  # the producer stops 15 s before the job does (its clock starts with the driver)
    try:
        for job in jobs:
            job.start()
        killer.thread.start()
        while jobs[0].is_alive():
            if producing_until is None and any(p.status.phase == "Running" for p in job_pods(api, "stream-plugin", "driver")):
                producing_until = time.monotonic() + seconds - 15
            if producing_until is None or time.monotonic() < producing_until:  # all of it must arrive
                produced.append(f"record-{len(produced)}")
                producer.stdin.write(produced[-1] + "\n")
                producer.stdin.flush()
            elif not producer.stdin.closed:
                producer.stdin.close()
            with contextlib.suppress(Exception):  # the token files the two Secrets hold, as they change
                for s in api.list_namespaced_secret("alice", label_selector="spark-secrets.io/app-name").items:
                    app = s.metadata.labels["spark-secrets.io/app-name"]
                    if app not in secrets or "hadoop-tokens" not in (s.data or {}):
                        continue  # not this test's job's (an earlier job's may hold anything)
                    data = base64.b64decode(s.data["hadoop-tokens"])
                    if not secrets[app] or secrets[app][-1] != data:
                        secrets[app].append(data)
                        changed[app].append(time.time())
                        names[app] = s.metadata.name
                for token in _kafka_tokens(secrets["stream-control"][-1]) if secrets["stream-control"] else ():
                    if token.identifier not in max_ms and (facts := PROVIDER.facts(token, as_alice)) is not None:
                        max_ms[token.identifier] = facts.max_ms
            time.sleep(0.5)
        jobs[1].join()
    finally:
        killer.stop()
        if not producer.stdin.closed:
            producer.stdin.close()
        producer.wait(60)
        with contextlib.suppress(Exception):
            api.delete_namespaced_secret("planted-kafka", "alice")
    producer_err = (tmp_path / "producer.log").read_text()
    log = killer.log()
    print(f"renew service killed {len(killer.kills)} times; {len(killer.services)} runs")
    assert "Error when sending" not in producer_err, producer_err[-2000:]
    assert len(killer.kills) >= 3, killer.kills

    outcome = {}
    for name in ("plugin", "control"):
        (driver,) = job_pods(api, f"stream-{name}", "driver")
        outcome[name] = api.read_namespaced_pod_log(driver.metadata.name, "alice")
        outcome[name + "-phase"] = api.read_namespaced_pod(driver.metadata.name, "alice").status.phase
    plugin_log = outcome["plugin"]
    assert runs["plugin"].returncode == 0 and outcome["plugin-phase"] == "Succeeded", plugin_log[-4000:]
    assert "FAILED" not in plugin_log and "Lost task" not in plugin_log, plugin_log[-4000:]  # no failed batch
    done = re.search(r"DONE (\d+) batches in ([\d.]+)s", plugin_log)
    assert done and float(done.group(2)) >= 3 * MAX_S, plugin_log[-2000:]
    assert "token refresher" in plugin_log

    # The tokens: the first and at least three re-issued Kafka tokens reached the job's Secret, all alice's.
    ids = {t.identifier for data in secrets["stream-plugin"] for t in _kafka_tokens(data)}
    assert len(ids) >= 4, len(ids)
    assert log.count("re-issued alice/stream-plugin") >= 3, log[-3000:]

    # No keytab or ticket cache in any pod: only the token Secret is mounted, nothing Kerberos but krb5.conf.
    (driver,) = job_pods(api, "stream-plugin", "driver")
    executors = job_pods(api, "stream-plugin", "executor")
    assert len(executors) == 2
    for pod in [driver, *executors]:
        mounted = {v.secret.secret_name for v in pod.spec.volumes if v.secret is not None}
        assert mounted == {names["stream-plugin"]}, (pod.metadata.name, mounted)
        text = json.dumps(api.api_client.sanitize_for_serialization(pod.spec)).lower()
        assert "keytab" not in text and "krb5cc" not in text and "krb5ccname" not in text

    # Every record arrived exactly once: in the Parquet sink (committed files) and in the output topic.
    session = requests.Session()
    session.auth = SpnegoAuth(ccache_credentials(alice_cc))
    client = hdfs.Client(testbed.hdfs.webhdfs_url, session=session)
    parquet = _committed_parquet(client, "/user/alice/stream-plugin/out")
    assert sorted(parquet) == sorted(produced), (len(parquet), len(produced))
    topic = kafka.consume(OUT, len(produced) + 1, kafka.kerberos_client_config(alice_cc), group="stream-check",
                          timeout_ms=20_000, check=False)
    assert sorted(topic) == sorted(produced), (len(topic), len(produced))
    print(f"{len(produced)} records, each once in the Parquet sink and the output topic; {len(ids)} Kafka tokens "
          f"reached the job's Secret; the job ran {float(done.group(2)):.0f} s")

    # The control: no plugin, the same Secret service; Kafka refuses its first token at its max lifetime.
    assert outcome["control-phase"] == "Failed", outcome["control"][-3000:]
    assert runs["control"].returncode == 1, runs["control"].stderr[-2000:]
    assert AUTH_ERROR in outcome["control"], outcome["control"][-3000:]
    failed = re.search(r"FAILED at ([\d.]+)s \(epoch ([\d.]+)\) after (\d+) batches", outcome["control"])
    assert failed, outcome["control"][-3000:]
    # It failed when a token it could hold reached its max date: not before the first one's (until then the renew
    # service kept it alive), and within 20 s of the last one's it could have read (sessions re-authenticate every
    # 10 s): the JVM reads the file once, between its container's start (less kubelet's projection delay) and its
    # job's clock starting, and which version it read is not visible from outside.
    (control_driver,) = job_pods(api, "stream-control", "driver")
    started = control_driver.status.container_statuses[0].state.terminated.started_at.timestamp()
    failed_epoch = float(failed.group(2))
    job_began = failed_epoch - float(failed.group(1))
    times = changed["stream-control"]
    readable = [i for i, when in enumerate(times)
                if when <= job_began and (i + 1 == len(times) or times[i + 1] >= started - 15)]
    candidates = [m for i in readable for t in _kafka_tokens(secrets["stream-control"][i])
                  if (m := max_ms.get(t.identifier))]
    assert candidates, (times, started, job_began)
    assert min(candidates) - 1_000 <= failed_epoch * 1000 <= max(candidates) + 20_000, (candidates, failed.group(0))

    # bob's planted token: refused by the service (each run says why once) and never renewed, so gone by now.
    refusals = [e.message for e in api.list_namespaced_event("alice", field_selector="involvedObject.name=planted-kafka").items
                if e.reason == "TokenRefused"]
    # (once bob's token has lapsed, a run that sees the Secret anew says the brokers no longer show it)
    assert any("holds tokens of bob, but its owner is alice" in m for m in refusals), refusals
    assert PROVIDER.describe(bob_token, context(ccache_credentials(testbed.ticket_cache("bob")), "bob", conf)) is None
    assert "renewed alice/planted-kafka" not in log

    # The job ends: its driver pod goes, its Secret with it, and the renew service expires the last token.
    last = _kafka_tokens(secrets["stream-plugin"][-1])[0]
    service = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer-end", extra=killer.extra)
    try:
        api.delete_namespaced_pod(driver.metadata.name, "alice")
        wait_until("the last Kafka token was not expired", lambda: PROVIDER.describe(last, as_alice) is None,
                   120, service)
    finally:
        service.stop()
        for pod in api.list_namespaced_pod("alice", label_selector="spark-app-name").items:
            if pod.metadata.labels.get("spark-app-name", "").startswith("stream-"):
                api.delete_namespaced_pod(pod.metadata.name, "alice", grace_period_seconds=0)
    log += service.log.read_text()
    for data in secrets["stream-plugin"]:  # no HMAC in any form in the service's output
        for token in _kafka_tokens(data):
            assert token.password.decode() not in log and base64.b64decode(token.password).hex() not in log
