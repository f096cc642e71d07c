"""The test bed's Apache Kafka broker (issue 30): real KRaft broker, real KDC, Kafka's own tools.

Everything here goes through Kafka's command-line tools (``DelegationTokenCommand``, ``AclCommand``,
``TopicCommand``, the console producer and consumer): what the broker allows and refuses, not what
this project's code thinks it does (tests/test_kafka.py drives tokens with this project's client and
checks them with the same tools). Needs only the KDC of the test bed
(``SPARK_SECRETS_TESTBED_COMPONENTS=kdc`` is enough) and starts the broker on first use.
"""

from __future__ import annotations

import time

import pytest

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.kafka import TOPIC_COMMAND, DelegationToken, KafkaBroker

from conftest import KAFKA_TOKEN_EXPIRY_MS, KAFKA_TOKEN_MAX_LIFETIME_MS

pytestmark = pytest.mark.testbed


def list_topics(kafka: KafkaBroker, token: DelegationToken) -> tuple[int, str]:
    """``TopicCommand --list`` on a session authenticated by ``token`` (SCRAM): exit code and output."""
    proc = kafka.tool(TOPIC_COMMAND, ["--bootstrap-server", kafka.bootstrap, "--list"],
                      kafka.token_client_config(token.token_id, token.hmac), check=False, timeout=90)
    return proc.returncode, proc.stdout + proc.stderr


def test_kerberos_clients_read_and_write_what_acls_allow(testbed: Testbed, kafka: KafkaBroker) -> None:
    alice = kafka.kerberos_client_config(testbed.ticket_cache("alice"))
    kafka.create_topic("acl-events")
    kafka.grant_client("alice", "acl-events", group="acl-readers")
    kafka.produce("acl-events", ["one", "two", "three"], alice)
    assert kafka.consume("acl-events", 3, alice, group="acl-readers") == ["one", "two", "three"]
    # bob has a ticket, and no ACL: the broker refuses him (allow.everyone.if.no.acl.found=false).
    bob = kafka.kerberos_client_config(testbed.ticket_cache("bob"))
    with pytest.raises(TestbedError, match="TopicAuthorization"):
        kafka.produce("acl-events", ["intruder"], bob)


def test_a_token_session_may_not_ask_for_tokens(testbed: Testbed, kafka: KafkaBroker) -> None:
    """Kafka's rule: token requests only on a channel authenticated otherwise than by a token."""
    token = kafka.create_token(kafka.kerberos_client_config(testbed.ticket_cache("alice")), renewers=[RENEWER])
    proc = kafka.create_token_command(kafka.token_client_config(token.token_id, token.hmac))
    assert proc.returncode != 0
    assert "Created delegation token" not in proc.stdout
    assert "UnsupportedByAuthenticationException: Delegation Token requests are not allowed" in proc.stderr, \
        proc.stderr[-1500:]


def test_an_unrenewed_token_dies_with_its_lifetime(testbed: Testbed, kafka: KafkaBroker) -> None:
    """A token asked for 5 s is gone (and refused) soon after, with no one expiring it: the broker's
    expiry check runs every second. The broker's own lifetimes are the fixture's."""
    assert (kafka.token_expiry_ms, kafka.token_max_lifetime_ms) == (KAFKA_TOKEN_EXPIRY_MS, KAFKA_TOKEN_MAX_LIFETIME_MS)
    alice_cc = testbed.ticket_cache("alice")
    token = kafka.create_token(kafka.kerberos_client_config(alice_cc), renewers=[RENEWER], max_lifetime_ms=5_000)
    born = time.monotonic()
    code, out = list_topics(kafka, token)
    if time.monotonic() - born < 4:  # the JVM started fast enough to use it while it lived
        assert code == 0, out
    time.sleep(max(0.0, 8 - (time.monotonic() - born)))
    assert token.token_id not in {t.token_id for t in kafka.delegation_tokens(alice_cc, ["alice"])}
    code, out = list_topics(kafka, token)
    assert code != 0 and "Authentication failed" in out, out

