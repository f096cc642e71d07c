"""The one token-provider interface: every registered kind obtains, renews and cancels through an
injected transport; a provider registered here is asked by the submission step and the renew service
with no other edit; NameNode failover remembers the last active NameNode per set."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import spark_secrets.tokens.hdfs
import spark_secrets.tokens.kafkaclient
import spark_secrets.tokens.kms
import spark_secrets.tokens.metastore
from spark_secrets.errors import NameNodeUnavailable, UnusableSecret
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.renew.kinds import default_kinds
from spark_secrets.tokens.metastore import Metastore
from spark_secrets.tokens.namenodes import Failover
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext
from spark_secrets.tokens.registry import cancel_any, for_kind, for_token, providers, register, renew_any, unregister
from kafka_support import FakeKafka
from steps_support import BASE, Ticket, creds
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.tokens import DelegationTokenStep

KMS_URI = "kms://http@127.0.0.2:9600/kms"
KAFKA = {"spark.kafka.clusters.k1.auth.bootstrap.servers": "127.0.0.3:9092",
         "spark.kafka.clusters.k1.security.protocol": "SASL_PLAINTEXT"}
METASTORE = Metastore(("thrift://ms1.example:9083",), "hive/_HOST@EXAMPLE.COM")


def _token(kind: str = "", service: str = "", sequence: int = 7) -> Token:
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", 1_795_000_000_000, 1_795_604_800_000, sequence, 1)
    return Token(ident.encode(), b"s" * 20, kind, service)


class FakeServer:
    """Any token server's client (WebHDFS, KMS, metastore): answers each call and records it."""

    calls: list[tuple[str, str]] = []

    def __init__(self, url: str, *args: Any, **kwargs: Any) -> None:
        self.url = url
        self.host = url.split("://", 1)[-1]
        self.where = f"metastore {self.host}"

    def get_delegation_token(self, *args: Any, **kwargs: Any) -> Token:
        self.calls.append(("obtain", self.url))
        return _token(service="127.0.0.1:8020", sequence=len(self.calls))  # one identifier per server

    def renew_delegation_token(self, token: Token) -> int:
        self.calls.append(("renew", self.url))
        return 1_795_086_400_000

    def cancel_delegation_token(self, token: Token) -> None:
        self.calls.append(("cancel", self.url))

    def key_provider_uri(self) -> str:
        return KMS_URI


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(FakeServer, "calls", calls)
    monkeypatch.setattr(spark_secrets.tokens.hdfs, "WebHdfsClient", FakeServer)
    monkeypatch.setattr(spark_secrets.tokens.kms, "KmsClient", FakeServer)
    monkeypatch.setattr(spark_secrets.tokens.metastore, "MetastoreClient", FakeServer)
    kafka = FakeKafka(caller="User:alice")
    kafka.record = lambda op, server: calls.append((op, server))
    monkeypatch.setattr(spark_secrets.tokens.kafkaclient, "open_channel", kafka.connect)
    yield calls


class Job:
    """A job's wishes as a provider reads them (``submit_steps.Settings`` is the real one)."""

    filesystems = ("http://127.0.0.1:9870",)
    hive_metastore = METASTORE
    conf = KAFKA

    def get(self, key: str) -> str | None:
        return {"spark.test.servers": "test://broker:9092"}.get(key)


def test_every_registered_kind_obtains_renews_and_cancels(servers: list[tuple[str, str]]) -> None:
    job: JobSettings = Job()
    ctx = TokenContext(hadoop=HadoopConf({}), renewer="spark-renewer", user="alice", metastore=METASTORE, conf=KAFKA)
    creds = Credentials()
    shortfalls: list[Shortfall] = []
    for provider in providers():
        provider.obtain(provider.required(job), ctx, creds, shortfalls=shortfalls)
    assert shortfalls == []
    for provider in providers():  # each kind's tokens are in, and each goes back to its own provider
        mine = [t for t in creds if t.kind in provider.token_kinds]
        assert mine, provider.kind
        assert all(for_token(t) is provider for t in mine)
    # One per identifier, the (S)WebHDFS twin of an HDFS token first: its service is the NameNode's HTTP address.
    distinct = {t.identifier + t.kind.encode(): t for t in sorted(creds, key=lambda t: "WEBHDFS" in t.kind)}.values()
    distinct = list({t.identifier: t for t in distinct}.values())
    for token in distinct:
        assert renew_any(token, ctx) == 1_795_086_400_000
        cancel_any(token, ctx)
    asked = {url for _, url in servers}
    assert asked == {"http://127.0.0.1:9870", "http://127.0.0.2:9600/kms", "thrift://ms1.example:9083", "127.0.0.3:9092"}
    assert len(distinct) == 4
    assert sorted(servers) == sorted((op, url) for url in asked for op in ("obtain", "renew", "cancel"))


def test_every_hadoop_kind_dates_a_token_by_its_identifier() -> None:
    """``doctor --probe`` weighs a token by the dates its provider gives, the renew service binds its owner:
    Hadoop's identifier's for these, without asking a server."""
    for kind in ("hdfs", "kms", "hive"):
        facts = for_kind(kind).facts(_token("HDFS_DELEGATION_TOKEN"), TokenContext())
        assert facts is not None and (facts.issue_ms, facts.max_ms) == (1_795_000_000_000, 1_795_604_800_000)
    assert for_kind("hdfs").reach(("hdfs://ns1",), TokenContext()) == "1 filesystem(s)"  # doctor checks NameNodes


def test_a_token_no_provider_knows_is_unusable() -> None:
    with pytest.raises(UnusableSecret, match="no token kind renews kafka"):
        renew_any(_token("kafka"), TokenContext())


class BrokerProvider:
    """A new kind, as a module would add it: nothing but this class and its registration."""

    kind = "test"
    title = "test broker"
    consequence = "the test stream will fail"
    essential = False
    token_kinds: tuple[str, ...] = ("TEST_TOKEN",)
    check_name = "test"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def required(self, job: JobSettings) -> tuple[str, ...]:
        servers = job.get("spark.test.servers")
        return (servers,) if servers else ()

    def owns_target(self, target: str) -> bool:
        return target.startswith("test://")

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        self.calls.append(("obtain", *targets, owner or ctx.user or "", ctx.renewer or ""))
        creds.add(_token("TEST_TOKEN", targets[0]))
        return None

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        return "the test broker" if any(t.kind == "TEST_TOKEN" for t in creds) else None

    def renew(self, token: Token, ctx: TokenContext) -> int:
        self.calls.append(("renew", token.service))
        return 5

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        self.calls.append(("cancel", token.service))

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        return "the test broker"

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        return None


@pytest.fixture
def registered() -> Iterator[BrokerProvider]:
    provider = BrokerProvider()
    register(provider)
    try:
        yield provider
    finally:
        unregister(provider.kind)


def test_a_registered_provider_is_asked_by_the_submission_step(registered: BrokerProvider) -> None:
    settings = Settings({**BASE, "spark.test.servers": "test://broker:9092"})
    step = DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds())  # type: ignore[arg-type]
    spec = step.apply(SubmissionSpec(conf=settings.conf))
    assert registered.calls == [("obtain", "test://broker:9092", "alice", "spark-renewer")]
    assert spec.credentials is not None and {t.kind for t in spec.credentials} == {"HDFS_DELEGATION_TOKEN", "TEST_TOKEN"}
    assert "from 1 filesystem(s) and the test broker" in " ".join(spec.notes)


def test_a_registered_provider_that_fails_is_a_warning(registered: BrokerProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> None:
        raise NameNodeUnavailable("broker down")

    monkeypatch.setattr(registered, "obtain", down)
    settings = Settings({**BASE, "spark.test.servers": "test://broker:9092"})
    spec = DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds()).apply(  # type: ignore[arg-type]
        SubmissionSpec(conf=settings.conf))
    assert [n for n in spec.notes if n.startswith("warning:")] == [
        "warning: no test broker token, so the test stream will fail: broker down"]


def test_an_essential_provider_that_fails_stops_the_submission_and_the_tokens_obtained_are_cancelled(
        registered: BrokerProvider) -> None:
    """Kafka's provider is essential (a job names a cluster only to use it): when it fails, nothing is left behind."""

    class Stream(BrokerProvider):
        kind, essential, token_kinds = "stream", True, ("STREAM_TOKEN",)

        def required(self, job: JobSettings) -> tuple[str, ...]:
            return ("stream://down:1",)

        def obtain(self, *args: Any, **kwargs: Any) -> int | None:
            raise NameNodeUnavailable("stream brokers down")

    register(Stream())
    try:
        settings = Settings({**BASE, "spark.test.servers": "test://broker:9092"})
        with pytest.raises(NameNodeUnavailable, match="stream brokers down"):
            DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds()).apply(  # type: ignore[arg-type]
                SubmissionSpec(conf=settings.conf))
    finally:
        unregister("stream")
    assert registered.calls[0][0] == "obtain" and ("cancel", "test://broker:9092") in registered.calls
    # The control: the same failure in a provider that is not essential is a warning; nothing is cancelled.
    registered.calls.clear()
    spec = DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds()).apply(  # type: ignore[arg-type]
        SubmissionSpec(conf=settings.conf))
    assert [c[0] for c in registered.calls] == ["obtain"] and spec.credentials is not None


def test_the_providers_are_asked_at_once_and_their_tokens_go_in_in_their_order(registered: BrokerProvider) -> None:
    """Each provider waits at a barrier for the other: asked one after the other, the first would wait alone and
    fail (the control: a barrier of three, which two providers never pass, fails the same way). The later-registered
    provider answers first, yet its tokens follow the earlier one's in the file."""
    import threading

    def make(kind: str, barrier: threading.Barrier, delay: float) -> BrokerProvider:
        class Waiting(BrokerProvider):
            essential = True

            def required(self, job: JobSettings) -> tuple[str, ...]:
                return (f"{kind}://server:1",)

            def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, **kwargs: Any) -> int | None:
                barrier.wait()
                threading.Event().wait(delay)
                creds.add(_token("TEST_TOKEN", targets[0]))
                return None

        provider = Waiting()
        provider.kind = kind
        return provider

    settings = Settings({**BASE, "spark.test.servers": "test://broker:9092"})
    unregister(registered.kind)
    for parties, passes in ((2, True), (3, False)):
        barrier = threading.Barrier(parties, timeout=2)
        register(make("slow", barrier, 0.3))
        register(make("fast", barrier, 0.0))
        try:
            step = DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds())  # type: ignore[arg-type]
            if passes:
                spec = step.apply(SubmissionSpec(conf=settings.conf))
                assert spec.credentials is not None
                services = [t.service for t in spec.credentials if t.kind == "TEST_TOKEN"]
                assert services == ["slow://server:1", "fast://server:1"]
            else:
                with pytest.raises(threading.BrokenBarrierError):
                    step.apply(SubmissionSpec(conf=settings.conf))
        finally:
            unregister("slow")
            unregister("fast")


def test_a_registered_provider_is_a_kind_of_the_renew_service(registered: BrokerProvider) -> None:
    kinds = {kind.name: kind for kind in default_kinds(lambda: None, "spark-renewer")}  # type: ignore[arg-type,return-value]
    assert list(kinds) == [p.kind for p in providers()] and "test" in kinds
    kind = kinds["test"]
    assert kind.owns_target("test://broker:9092") and kind.owns_token(_token("TEST_TOKEN"))
    fresh = kind.obtain(["test://broker:9092"], "bob")
    assert [t.kind for t in fresh] == ["TEST_TOKEN"] and kind.renew(_token("TEST_TOKEN", "b")) == 5
    kind.cancel(_token("TEST_TOKEN", "b"))
    assert registered.calls == [("obtain", "test://broker:9092", "bob", "spark-renewer"), ("renew", "b"),
                                ("cancel", "b")]
    assert for_kind("hdfs").owns_target("hdfs://ns1") and not kinds["kms"].owns_target("hdfs://ns1")


def test_failover_skips_the_standby_and_asks_the_active_first_afterwards() -> None:
    failover = Failover()
    urls = ("http://nn1:9870", "http://nn2:9870")
    asked: list[str] = []

    def attempt(url: str) -> str:
        asked.append(url)
        if url == urls[0]:
            raise NameNodeUnavailable("NameNode nn1:9870 refused RENEW: it is a standby NameNode")
        return "ok"

    assert failover.call(urls, "hdfs://ns1", "RENEW", attempt) == "ok"
    assert failover.call(urls, "hdfs://ns1", "RENEW", attempt) == "ok"
    assert asked == [urls[0], urls[1], urls[1]] and failover.last(urls) == urls[1]
    with pytest.raises(NameNodeUnavailable, match=r"no NameNode of hdfs://ns1 answered RENEW \(nn2:9870: down; nn1:9870: "
                                                  r"it is a standby NameNode\)"):
        failover.call(urls, "hdfs://ns1", "RENEW", lambda url: (_ for _ in ()).throw(
            NameNodeUnavailable(f"NameNode {url[7:]} refused RENEW: it is a standby NameNode") if url == urls[0]
            else NameNodeUnavailable("down")))
