"""The renew service and Kafka delegation tokens (issue 30), on the real Kafka 4.4 broker, KDC and API server:
a submission's Kafka token renewed at first sight, re-issued for its owner before its max lifetime and
cancelled when the Secret goes; bob's genuine token planted in alice's Secret refused beside it (the brokers
name its owner), and a cluster the service was not configured with never asked. Every judgement of a token
is the broker's: Kafka's own ``DelegationTokenCommand`` and a SCRAM session of Kafka's own client."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_LAST_ACTION, DEFAULT_TOKEN_KEY,
                                               KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER,
                                               MANAGED_BY)
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.kafka import KafkaBroker
from spark_secrets.tokens.kafka import KAFKA_DELEGATION_KIND, KafkaCluster, KafkaProvider
from spark_secrets.tokens.provider import TokenContext

from conftest import KAFKA_TOKEN_MAX_LIFETIME_MS
from renewers import RenewerProcess, SubmittedJob, wait_until
from test_kafka import CLUSTER, ccache_credentials, context, list_topics, spark_conf, tool_tokens

pytestmark = pytest.mark.testbed


PROVIDER = KafkaProvider()


def _expiry(token: Token, ctx: TokenContext) -> int:
    """The token's expiry to the millisecond, as the brokers describe it to ``ctx``'s caller (a broker learns of
    a new token from the KRaft log a moment after the answer that created it)."""
    deadline = time.monotonic() + 10
    while (info := PROVIDER.describe(token, ctx)) is None:
        assert time.monotonic() < deadline, token
        time.sleep(0.2)
    return info.expiry_ms


def _kafka_token(data: bytes) -> Token:
    (token,) = [t for t in Credentials.from_bytes(data) if t.kind == KAFKA_DELEGATION_KIND]
    return token


def test_renewed_reissued_for_the_owner_and_cancelled_while_a_planted_token_of_bob_s_is_refused(
        testbed: Testbed, kafka: KafkaBroker, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kafka.grant_create_tokens(RENEWER, "alice")  # the re-issue: the service creates tokens owned by alice
    conf = spark_conf(kafka)
    alice_cc, bob_cc = testbed.ticket_cache("alice"), testbed.ticket_cache("bob")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{alice_cc}")
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)  # a Kafka-only job: no filesystem
    job = SubmittedJob(testbed, "stream", conf)  # the submission as alice: Kafka's token, renewer the service
    first = _kafka_token(job.current())
    first_id = first.identifier.decode()
    first_expiry = _expiry(first, context(ccache_credentials(alice_cc), "alice", conf))
    assert tool_tokens(kafka, alice_cc)[first_id].renewers == (f"User:{RENEWER}",)
    as_alice = context(ccache_credentials(alice_cc), "alice", conf)

    # bob's own genuine token (renewable by the service), planted by alice in a Secret she labels as hers.
    bob_creds = Credentials()
    ctx = context(ccache_credentials(bob_cc), "bob", conf)
    cluster = KafkaCluster.from_conf(conf, CLUSTER)
    assert cluster is not None
    target = cluster.target
    PROVIDER.obtain([target], ctx, bob_creds)
    bob_token = _kafka_token(bob_creds.to_bytes())
    bob_expiry = _expiry(bob_token, ctx)
    assert testbed.kube is not None
    admin = k8s.CoreV1Api(k8s_config.new_client_from_config(str(testbed.kube.kubeconfig("admin"))))
    alice_api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(testbed.kube.kubeconfig("alice", namespace="alice"))))
    alice_api.create_namespaced_secret("alice", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "planted-kafka", "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS,
                                                LABEL_OWNER: "alice"},
            "annotations": {ANNOTATION_FILESYSTEMS: target}},
        "data": {DEFAULT_TOKEN_KEY: base64.b64encode(bob_creds.to_bytes()).decode()}})

    # The service serves c1 only (its own configuration); a Secret's servers are not followed.
    service = RenewerProcess(testbed, None, tmp_path / "renewer", extra=("--kafka-cluster", target))
    try:
        def annotation(name: str) -> str:
            return (admin.read_namespaced_secret(name, "alice").metadata.annotations or {}).get(
                ANNOTATION_LAST_ACTION, "")

        def refused() -> list[str]:
            events = admin.list_namespaced_event("alice", field_selector="involvedObject.name=planted-kafka").items
            return [e.message for e in events if e.reason == "TokenRefused"]

        wait_until("the first-sight renewal of alice's Kafka token", lambda: annotation(job.name) == "renewed",
                   30, service)
        assert _kafka_token(job.current()).identifier == first.identifier  # renewed, not replaced, at first sight
        wait_until("the refusal of bob's planted token", lambda: bool(refused()), 30, service)
        assert "holds tokens of bob, but its owner is alice" in refused()[0], refused()
        assert annotation("planted-kafka") == ""  # nothing done to it ...
        assert _expiry(bob_token, ctx) == bob_expiry  # nor to it at the broker
        # ... while alice's, the control, was renewed at the broker (its expiry moved on from the first).
        assert _expiry(first, as_alice) > first_expiry

        # Before the max lifetime (60 s, 15 s ahead): a new token owned by alice, created by the service.
        wait_until("the re-issue for alice", lambda: _kafka_token(job.current()).identifier != first.identifier,
                   KAFKA_TOKEN_MAX_LIFETIME_MS / 1000 + 15, service)
        fresh = _kafka_token(job.current())
        described = tool_tokens(kafka, alice_cc)[fresh.identifier.decode()]
        assert (described.owner, described.requester) == ("User:alice", f"User:{RENEWER}")
        code, out = list_topics(kafka, fresh)  # it logs in with SCRAM as Spark's executors do
        assert code == 0, out[-2000:]
        assert "re-issued alice/" in service.log.read_text()
        m = service.metrics()
        for op in ("renew", "obtain"):
            assert m.get(f'token_operations_total{{kind="kafka",operation="{op}"}}', 0) >= 1, m

        # The job ends: its Secret goes, and the service expires the token it can no longer read.
        job.delete()
        wait_until("the cancel of the last token", lambda: fresh.identifier.decode() not in tool_tokens(kafka, alice_cc),
                   30, service)
        assert service.metrics().get('token_operations_total{kind="kafka",operation="cancel"}', 0) >= 1
        log = service.log.read_text()
    finally:
        service.stop()
        admin.delete_namespaced_secret("planted-kafka", "alice")
    for token in (first, fresh, bob_token):
        assert token.password.decode() not in log  # the HMACs never reach the log
