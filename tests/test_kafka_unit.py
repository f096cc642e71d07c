"""Kafka delegation tokens without a broker: the four messages against bytes built by hand from
Kafka's message definitions, Spark's storage format and settings, errors in one line with no HMAC,
and the provider through the registry with an injected broker."""

from __future__ import annotations

import base64
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

import spark_secrets.tokens.kafkaclient as kafkaclient
from kafka_support import DAY, NOW, VERSIONS, FakeKafka
from spark_secrets.errors import (
    ConfigError, HdfsPermissionError, InvalidTokenError, KafkaAuthorizationError, KafkaError, KafkaTokenExpired,
    KafkaTokenNotFound, KafkaUnavailable, KerberosError, ServerUnavailable, TokenExpiredError, UnusableSecret,
)
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.renew.kinds import default_kinds
from spark_secrets.testbed.daemon import free_port
from spark_secrets.tokens import kafkamessages as m
from spark_secrets.tokens import kafkaproto as proto
from spark_secrets.tokens.kafka import KafkaCluster, KafkaProvider, clusters, conf_of_targets, spark_token
from spark_secrets.tokens.kafkaclient import BrokerSettings, KafkaTokenClient
from spark_secrets.tokens.kafkaproto import TokenInfo
from spark_secrets.tokens.provider import TokenContext
from spark_secrets.tokens.registry import cancel_any, for_kind, for_token, renew_any

HMAC = bytes(range(250, 256)) + b"\xfb\xff" * 13  # its Base64 has '+' and '/': the standard alphabet


# -- the wire format, by hand (Kafka's protocol guide: int16/32/64 big-endian; STRING int16 length;
#    BYTES int32 length; ARRAY int32 count; flexible versions: unsigned varint length+1, tagged fields) ----
def i16(v: int) -> bytes: return struct.pack(">h", v)
def i32(v: int) -> bytes: return struct.pack(">i", v)
def i64(v: int) -> bytes: return struct.pack(">q", v)
def s(v: str) -> bytes: return i16(len(v.encode())) + v.encode()
def b(v: bytes) -> bytes: return i32(len(v)) + v
def arr(items: list[bytes]) -> bytes: return i32(len(items)) + b"".join(items)


def uv(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def cs(v: str | None) -> bytes: return uv(0) if v is None else uv(len(v.encode()) + 1) + v.encode()
def cb(v: bytes) -> bytes: return uv(len(v) + 1) + v
def carr(items: list[bytes]) -> bytes: return uv(len(items) + 1) + b"".join(items)
TAGS = b"\x00"  # no tagged fields


def test_create_request_v1_and_v3_with_an_owner() -> None:
    request, need = proto.create_request(["spark-renewer"], 604_800_000)
    assert need == 0
    assert request.encode(version=1) == arr([s("User") + s("spark-renewer")]) + i64(604_800_000)
    request, need = proto.create_request(["User:spark-renewer"], -1, owner="bob")
    assert need == 3
    assert request.encode(version=3) == (cs("User") + cs("bob") + carr([cs("User") + cs("spark-renewer") + TAGS])
                                         + i64(-1) + TAGS)
    request, _ = proto.create_request([], -1)
    assert request.encode(version=3) == cs(None) + cs(None) + carr([]) + i64(-1) + TAGS


def test_request_header_and_frame() -> None:
    request = proto.renew_request(HMAC, -1)
    request.with_header(correlation_id=9, client_id="spark-secrets")
    body = b(HMAC) + i64(-1)
    header = i16(39) + i16(1) + i32(9) + s("spark-secrets")  # request header v1
    assert request.encode(version=1, header=True, framed=True) == i32(len(header + body)) + header + body
    flexible = i16(39) + i16(2) + i32(9) + s("spark-secrets") + TAGS  # v2: client id stays a STRING
    body = cb(HMAC) + i64(-1) + TAGS
    assert request.encode(version=2, header=True, framed=True) == i32(len(flexible + body)) + flexible + body


def test_expire_and_describe_requests() -> None:
    assert proto.expire_request(HMAC).encode(version=1) == b(HMAC) + i64(-1)
    assert proto.expire_request(HMAC, 5).encode(version=2) == cb(HMAC) + i64(5) + TAGS
    assert proto.describe_request(None).encode(version=1) == i32(-1)
    assert proto.describe_request(None).encode(version=3) == uv(0) + TAGS
    assert proto.describe_request(["alice"]).encode(version=1) == arr([s("User") + s("alice")])
    assert proto.describe_request(["User:alice"]).encode(version=2) == carr([cs("User") + cs("alice") + TAGS]) + TAGS


def test_create_response_v1_and_v3() -> None:
    body = (i16(0) + s("User") + s("alice") + i64(NOW) + i64(NOW + DAY) + i64(NOW + 7 * DAY) + s("tok-1") + b(HMAC)
            + i32(0))
    info = proto.created(m.CreateDelegationTokenResponse.decode(i32(4) + body, version=1, header=True), "c1")
    assert info == TokenInfo("tok-1", HMAC, "User:alice", "", (), NOW, NOW + DAY, NOW + 7 * DAY)
    body = (i16(0) + cs("User") + cs("bob") + cs("User") + cs("spark-renewer") + i64(NOW) + i64(NOW + DAY)
            + i64(NOW + 7 * DAY) + cs("tok-2") + cb(HMAC) + i32(0) + TAGS)
    response = m.CreateDelegationTokenResponse.decode(i32(5) + TAGS + body, version=3, header=True)  # header v1
    assert response.header.correlation_id == 5
    info = proto.created(response, "c1")
    assert (info.owner, info.requester, info.token_id, info.hmac) == ("User:bob", "User:spark-renewer", "tok-2", HMAC)


def test_renew_expire_and_describe_responses() -> None:
    for cls, key in ((m.RenewDelegationTokenResponse, proto.RENEW), (m.ExpireDelegationTokenResponse, proto.EXPIRE)):
        assert proto.expiry(cls.decode(i16(0) + i64(NOW + DAY) + i32(0), version=1), key, "c1") == NOW + DAY
        assert proto.expiry(cls.decode(i16(0) + i64(NOW) + i32(7) + TAGS, version=2), key, "c1") == NOW
    token = (s("User") + s("alice") + i64(NOW) + i64(NOW + DAY) + i64(NOW + 7 * DAY) + s("tok-1") + b(HMAC)
             + arr([s("User") + s("spark-renewer")]))
    infos = proto.described(m.DescribeDelegationTokenResponse.decode(i16(0) + arr([token]) + i32(0), version=1), "c1")
    assert infos == [TokenInfo("tok-1", HMAC, "User:alice", "", ("User:spark-renewer",), NOW, NOW + DAY,
                               NOW + 7 * DAY)]
    token = (cs("User") + cs("alice") + cs("User") + cs("alice") + i64(NOW) + i64(NOW + DAY) + i64(NOW + 7 * DAY)
             + cs("tok-1") + cb(HMAC) + carr([cs("User") + cs("r") + TAGS]) + TAGS)
    [info] = proto.described(m.DescribeDelegationTokenResponse.decode(i16(0) + carr([token]) + i32(0) + TAGS,
                                                                      version=3), "c1")
    assert (info.requester, info.renewers) == ("User:alice", ("User:r",))


def test_versions_are_negotiated_and_an_owner_needs_kafka_3_3() -> None:
    request, need = proto.create_request(["r"], owner="bob")
    assert proto.negotiate(request, {38: (1, 3)}, need, "c1") == 3
    assert proto.negotiate(proto.renew_request(HMAC), {39: (1, 9)}, 0, "c1") == 2  # ours is the limit
    with pytest.raises(KafkaError, match=r"^c1 cannot create tokens for another owner \(CreateDelegationToken v2, "
                                         r"v3 needed\): upgrade the brokers to Kafka 3.3 or later$"):
        proto.negotiate(request, {38: (0, 2)}, need, "c1")
    with pytest.raises(KafkaError, match="does not offer RenewDelegationToken"):
        proto.negotiate(proto.renew_request(HMAC), {}, 0, "c1")


# -- Spark's storage format and settings ---------------------------------------------------------------
def test_a_token_is_stored_as_sparks_kafka_token_util_stores_it() -> None:
    info = TokenInfo("3KxWNm1xS0e0rS1x", HMAC, "User:alice", "User:alice", (), NOW, NOW + DAY, NOW + 7 * DAY)
    token = spark_token(info, "c1")
    # KafkaTokenUtil: Token(tokenId.getBytes, hmacAsBase64String.getBytes, TOKEN_KIND, getTokenService(id)),
    # hmacAsBase64String = java.util.Base64.getEncoder (standard alphabet, padded).
    assert token.kind == "KAFKA_DELEGATION_TOKEN" and token.service == "kafka.server.delegation.token.c1"
    assert token.identifier == b"3KxWNm1xS0e0rS1x"
    assert token.password == base64.standard_b64encode(HMAC) and b"+" in token.password and b"/" in token.password
    creds = Credentials()
    creds.add(token)  # the alias is the service, as Spark's creds.addToken(token.getService, token)
    again = Credentials.from_bytes(creds.to_bytes())
    assert list(again.tokens) == ["kafka.server.delegation.token.c1"] and again.tokens[token.service] == token


CONF = {"spark.kafka.clusters.c1.auth.bootstrap.servers": "b1:9093,b2:9093",
        "spark.kafka.clusters.c1.target.bootstrap.servers.regex": "b.*:9093",
        "spark.kafka.clusters.c2.auth.bootstrap.servers": "k:9092",
        "spark.kafka.clusters.c2.security.protocol": "SASL_PLAINTEXT",
        "spark.kafka.clusters.c2.kafka.sasl.kerberos.service.name": "kfk",
        "spark.kafka.clusters.plain.auth.bootstrap.servers": "p:9092",
        "spark.kafka.clusters.plain.security.protocol": "PLAINTEXT",
        "spark.kafka.clusters.noservers.security.protocol": "SASL_SSL"}


def test_clusters_in_sparks_vocabulary() -> None:
    found = {c.cluster: c for c in clusters(CONF)}
    assert sorted(found) == ["c1", "c2"]  # PLAINTEXT needs no token; no auth servers, no token (as Spark)
    c1, c2 = found["c1"], found["c2"]
    assert (c1.protocol, c1.get("sasl.kerberos.service.name"), c1.get("sasl.token.mechanism")) == (
        "SASL_SSL", "kafka", "SCRAM-SHA-512")  # KafkaTokenSparkConf's defaults
    assert c2.get("sasl.kerberos.service.name") == "kfk"  # kafka.<param> wins, as Spark's specifiedKafkaParams
    assert c1.target == "kafka://b1:9093,b2:9093/c1"
    assert c2.target == "kafka://k:9092/c2?security.protocol=SASL_PLAINTEXT&sasl.kerberos.service.name=kfk"
    assert KafkaCluster.parse(c2.target).broker_settings(TokenContext()) == BrokerSettings(
        "c2", ("k:9092",), "SASL_PLAINTEXT", "kfk", True, prefix="spark.kafka.clusters.c2.")
    assert conf_of_targets([c1.target, c2.target, "hdfs://ns1"]) == {
        "spark.kafka.clusters.c1.auth.bootstrap.servers": "b1:9093,b2:9093",
        "spark.kafka.clusters.c2.auth.bootstrap.servers": "k:9092",
        "spark.kafka.clusters.c2.security.protocol": "SASL_PLAINTEXT",
        "spark.kafka.clusters.c2.sasl.kerberos.service.name": "kfk"}
    assert clusters({**CONF, "spark.security.credentials.kafka.enabled": "false"}) == []
    with pytest.raises(ConfigError, match="is not a Kafka target"):
        KafkaCluster.parse("kafka://c1")


# -- the provider through the registry, with an injected broker ------------------------------------------
class Job:
    filesystems: tuple[str, ...] = ()
    hive_metastore = None
    conf = CONF

    def get(self, key: str) -> str | None:
        return CONF.get(key)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKafka]:
    fake = FakeKafka()
    monkeypatch.setattr(kafkaclient, "open_channel", fake.connect)
    yield fake


def test_obtain_renew_cancel_through_the_registry(broker: FakeKafka, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = for_kind("kafka")
    targets = provider.required(Job())
    assert targets == ("kafka://b1:9093,b2:9093/c1",
                       "kafka://k:9092/c2?security.protocol=SASL_PLAINTEXT&sasl.kerberos.service.name=kfk")
    ctx = TokenContext(renewer="spark-renewer", user="alice", conf=CONF)
    broker.caller = "User:alice"
    creds = Credentials()
    assert provider.obtain(targets, ctx, creds) == NOW + DAY
    assert sorted(creds.tokens) == ["kafka.server.delegation.token.c1", "kafka.server.delegation.token.c2"]
    assert broker.calls == [("create", "b1:9093", "User:alice", "User:spark-renewer"),
                            ("create", "k:9092", "User:alice", "User:spark-renewer")]
    assert provider.summary(targets, creds) == "2 Kafka cluster(s)"
    token = creds.tokens["kafka.server.delegation.token.c1"]
    assert for_token(token) is provider
    broker.caller = "User:spark-renewer"  # the renew service, a renewer
    assert renew_any(token, ctx) == NOW + DAY
    info = provider.describe(token, ctx)  # type: ignore[attr-defined]
    assert info is not None and info.renewers == ("User:spark-renewer",) and info.owner == "User:alice"
    cancel_any(token, ctx)
    assert provider.describe(token, ctx) is None  # type: ignore[attr-defined]
    with pytest.raises(KafkaTokenNotFound, match=r"does not know the token \(DELEGATION_TOKEN_NOT_FOUND"):
        renew_any(token, ctx)
    secrets = [base64.b64encode(t.password).decode() for t in creds] + [t.password.decode() for t in creds]
    secrets += [base64.b64decode(t.password).hex() for t in creds] + [repr(base64.b64decode(t.password)) for t in creds]
    assert not any(secret in caplog.text or secret in repr(creds) for secret in secrets)


def test_the_renew_service_reissues_for_the_owner_only_at_the_clusters_it_was_configured_with(
        broker: FakeKafka) -> None:
    served = conf_of_targets(["kafka://k:9092/c2?security.protocol=SASL_PLAINTEXT"])  # renewer --kafka-cluster
    kinds = {k.name: k for k in default_kinds(lambda: None, "spark-renewer", spark_conf=served)}  # type: ignore[arg-type,return-value]
    # A Secret's target is its writer's input: other servers or another service name for c2 are not followed.
    fresh = kinds["kafka"].obtain(["kafka://evil:9092/c2?sasl.kerberos.service.name=HTTP"], "bob")
    assert broker.calls == [("create", "k:9092", "User:bob", "User:spark-renewer")]
    [token] = list(fresh)
    assert token.service == "kafka.server.delegation.token.c2"
    assert kinds["kafka"].renew(token) > 0 and broker.calls[-1][:2] == ("renew", "k:9092")
    facts = kinds["kafka"].facts(token)
    assert facts is not None and facts.owner == "bob"  # from the create answer: what the broker said
    calls = len(broker.calls)
    with pytest.raises(UnusableSecret, match=r"^no bootstrap servers are configured for Kafka cluster c9: give "
                                             r"spark.kafka.clusters.c9.auth.bootstrap.servers \(to the renew service: "
                                             r"--kafka-cluster kafka://<host:port>/c9\)$"):
        kinds["kafka"].obtain(["kafka://k:9092/c9"], "bob")  # a cluster the service does not serve
    assert len(broker.calls) == calls  # control above: the configured one was asked; this one asked nothing
    broker.versions = {**VERSIONS, 38: (0, 2)}  # Kafka before 3.3
    with pytest.raises(KafkaError, match="upgrade the brokers to Kafka 3.3 or later"):
        kinds["kafka"].obtain(["kafka://k:9092/c2"], "bob")


def test_a_down_broker_is_skipped_and_none_answering_is_one_line(broker: FakeKafka) -> None:
    broker.down = {"b1:9093"}
    provider, ctx = KafkaProvider(), TokenContext(renewer="r", user="alice", conf=CONF)
    creds = Credentials()
    provider.obtain(["kafka://b1:9093,b2:9093/c1"], ctx, creds)
    assert broker.calls[0][:2] == ("create", "b2:9093")
    broker.down = {"b1:9093", "b2:9093"}
    with pytest.raises(KafkaUnavailable) as caught:
        provider.obtain(["kafka://b1:9093,b2:9093/c1"], ctx, Credentials())
    assert str(caught.value) == (
        "no broker of Kafka cluster c1 (b1:9093,b2:9093) answered (cannot connect to Kafka broker b1:9093 "
        "(Connection refused); cannot connect to Kafka broker b2:9093 (Connection refused)): check "
        "spark.kafka.clusters.c1.auth.bootstrap.servers and that the brokers run")
    assert isinstance(caught.value, ServerUnavailable)


@pytest.mark.parametrize("code, kind, text", [
    (61, KafkaError, "delegation tokens are disabled on Kafka cluster c1 (k:9092) (DELEGATION_TOKEN_AUTH_DISABLED): "
                     "set delegation.token.secret.key on every broker and controller"),
    (65, KafkaAuthorizationError, "Kafka cluster c1 (k:9092) does not let this service create tokens for User:bob "
                                  "(DELEGATION_TOKEN_AUTHORIZATION_FAILED): grant it: kafka-acls.sh --add "
                                  "--allow-principal User:<service> --operation CreateTokens --user-principal User:bob"),
    (64, KafkaError, "Kafka cluster c1 (k:9092) refused CreateDelegationToken on this connection "
                     "(DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: tokens are asked for over Kerberos, not over PLAINTEXT, "
                     "SSL or a token login): name a SASL_PLAINTEXT or SASL_SSL listener with GSSAPI in "
                     "auth.bootstrap.servers"),
    (35, KafkaError, "Kafka cluster c1 (k:9092) does not support CreateDelegationToken (UNSUPPORTED_VERSION; in "
                     "KRaft, metadata.version 3.6 or later is needed): upgrade the brokers and run kafka-features.sh "
                     "upgrade"),
])
def test_broker_refusals_are_one_line(broker: FakeKafka, code: int, kind: type, text: str) -> None:
    broker.fail[38] = code
    with pytest.raises(kind) as caught:
        KafkaProvider().obtain(["kafka://k:9092/c1"], TokenContext(renewer="r", user="alice"), Credentials(),
                               owner="bob")
    assert str(caught.value) == text and "\n" not in text


def test_renewal_refusals_are_the_kinds_the_renew_service_reacts_to() -> None:
    assert isinstance(proto.refusal(62, 39, "c1"), InvalidTokenError)  # re-issue
    assert isinstance(proto.refusal(66, 39, "c1"), KafkaTokenExpired)
    assert isinstance(proto.refusal(66, 39, "c1"), TokenExpiredError)
    assert isinstance(proto.refusal(63, 39, "c1"), HdfsPermissionError)  # not genuine / not a renewer
    assert str(proto.refusal(63, 39, "c1")) == (
        "c1 refused RenewDelegationToken: the caller is neither the token's owner nor one of its renewers "
        "(DELEGATION_TOKEN_OWNER_MISMATCH): renew and cancel as a renewer named at creation")
    assert str(proto.refusal(999, 41, "c1")) == "c1 refused DescribeDelegationToken (error code 999)"


def test_no_hmac_in_repr() -> None:
    info = TokenInfo("tok-1", HMAC, "User:alice", "", (), NOW, NOW, NOW)
    token = spark_token(info, "c1")
    for text in (repr(info), str(info), repr(token), repr(KafkaTokenClient(BrokerSettings("c1", ("k:1",))))):
        assert HMAC.hex() not in text and repr(HMAC) not in text and token.password.decode() not in text


# -- the real channel against sockets (no Kerberos, no broker) -------------------------------------------
def test_unreachable_brokers_are_one_line() -> None:
    port = free_port()
    client = KafkaTokenClient(BrokerSettings("c1", (f"127.0.0.1:{port}",), "SASL_PLAINTEXT",
                                             prefix="spark.kafka.clusters.c1."))
    with pytest.raises(KafkaUnavailable, match=rf"^no broker of Kafka cluster c1 \(127.0.0.1:{port}\) answered "
                                               rf"\(cannot connect to Kafka broker 127.0.0.1:{port} \(Connection "
                                               r"refused\)\): check spark.kafka.clusters.c1.auth.bootstrap.servers"):
        client.login()


class TinyBroker:
    """Answers ApiVersions v3 and SaslHandshake v1 (bytes by hand); ``mechanisms`` are those it offers."""

    def __init__(self, mechanisms: list[str], error: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.server = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.mechanisms, self.error = mechanisms, error
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            try:
                while True:
                    size = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))[0]
                    if not 0 < size < 65536:  # not a Kafka request (a TLS ClientHello): hang up, as brokers do
                        return
                    frame = conn.recv(size, socket.MSG_WAITALL)
                    key, _, correlation = struct.unpack(">hhi", frame[:8])
                    if key == 18:  # ApiVersions v3 body, header v0
                        keys = [(k, lo, hi) for k, (lo, hi) in VERSIONS.items()]
                        body = i16(0) + carr([i16(k) + i16(lo) + i16(hi) + TAGS for k, lo, hi in keys]) + i32(0) + TAGS
                    else:  # SaslHandshake v1
                        body = i16(self.error) + arr([s(x) for x in self.mechanisms])
                    conn.sendall(i32(4 + len(body)) + i32(correlation) + body)
            except (OSError, struct.error):
                return


def test_a_broker_without_gssapi_is_one_line() -> None:
    tiny = TinyBroker(["SCRAM-SHA-512"], error=33)
    client = KafkaTokenClient(BrokerSettings("c1", (tiny.server,), "SASL_PLAINTEXT", prefix="spark.kafka.clusters.c1."))
    with pytest.raises(KafkaError, match=rf"^Kafka broker {tiny.server} offers no SASL GSSAPI login "
                                         r"\(UNSUPPORTED_SASL_MECHANISM; it offers SCRAM-SHA-512\): name a listener "
                                         r"with GSSAPI in spark.kafka.clusters.c1.auth.bootstrap.servers$"):
        client.login()


def test_no_ticket_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path}/no-such-cache")
    tiny = TinyBroker(["GSSAPI"])
    client = KafkaTokenClient(BrokerSettings("c1", (tiny.server,), "SASL_PLAINTEXT"))
    with pytest.raises(KerberosError) as caught:
        client.login()
    assert "\n" not in str(caught.value) and "kafka/127.0.0.1" in str(caught.value)


def test_tls_to_a_plaintext_listener_is_one_line() -> None:
    tiny = TinyBroker(["GSSAPI"])
    client = KafkaTokenClient(BrokerSettings("c1", (tiny.server,), "SASL_SSL", timeout=5,
                                             prefix="spark.kafka.clusters.c1."))
    with pytest.raises(KafkaUnavailable) as caught:
        client.login()
    assert "\n" not in str(caught.value) and "SASL_SSL needs a TLS listener" in str(caught.value)
