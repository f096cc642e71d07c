"""`spark-secrets doctor`'s verdicts that need no server: the report, the renewer comparison, the token
refresher, the duration, and every registered kind of token checked through the provider interface
(the checks against real servers are in tests/test_doctor.py and tests/test_kafka.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import spark_secrets.check.examination as examination
import spark_secrets.tokens.kafkaclient as kafkaclient
import spark_secrets.tokens.metastore
from kafka_support import DAY, NOW, FakeKafka
from spark_secrets.check import FAIL, OK, WARN, Check, Report, examine
from spark_secrets.check.lifetimes import Lifetimes
from spark_secrets.check.job import check_duration, check_plugin
from spark_secrets.check.providers import check_provider
from spark_secrets.check.renewservice import RenewServiceView, check_renewer
from spark_secrets.errors import KafkaTokenNotFound, KafkaUnavailable, KubernetesError, SparkSecretsError
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.tokens.kafka import KafkaProvider, clusters
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext
from spark_secrets.tokens.registry import cancel_any, for_kind, register, unregister

ROOT = Path(__file__).resolve().parent.parent


def _service(principal: str | None = "spark-renewer/localhost@EXAMPLE.TEST") -> RenewServiceView:
    return RenewServiceView(lease="ns/l", holder="pod-1", renewed_ago_s=2, term_s=15, principal=principal,
                            user="system:serviceaccount:ns:r", groups=(), namespaces=None)


def test_a_report_fails_only_on_a_failure_and_speaks_json() -> None:
    report = Report([Check("a", OK, "fine"), Check("b", WARN, "hm", "do x")])
    assert report.exit_status == 0 and report.summary() == "nothing would fail (2 checks, 1 warnings)"
    report.add(Check("c", FAIL, "broken", "fix it"))
    assert report.exit_status == 1 and report.summary() == "1 of 3 checks failed"
    assert [c.line() for c in report.checks] == ["✔ a: fine", "! b: hm\n    fix: do x", "✗ c: broken\n    fix: fix it"]
    assert json.loads(report.to_json())["checks"][2] == {"name": "c", "status": "fail", "detail": "broken",
                                                         "fix": "fix it"}


@pytest.mark.parametrize(("would_name", "configured", "service", "status", "text"), [
    ("spark-renewer", "spark-renewer", _service(), OK, "the renew service's principal"),
    ("spark-renewer/other@EXAMPLE.TEST", "spark-renewer/other@EXAMPLE.TEST", _service(), OK, "principal"),
    ("alice", None, _service(), FAIL, "spark.secrets.renewer unset: yourself"),
    ("bob", "bob", _service(), FAIL, "but the renew service is spark-renewer/localhost@EXAMPLE.TEST"),
    ("alice", None, None, WARN, "only you can renew them"),
    ("spark-renewer", "spark-renewer", _service(None), OK, "principal is unknown here"),
])
def test_the_renewer_the_tokens_would_name_against_the_service(would_name: str, configured: str | None,
                                                               service: RenewServiceView | None, status: str,
                                                               text: str) -> None:
    check = check_renewer(would_name, configured, service)
    assert check.status == status and text in check.detail
    if status == FAIL:
        assert check.fix == "--conf spark.secrets.renewer=spark-renewer"


@pytest.mark.parametrize(("mode", "master", "jar", "refresh", "status"), [
    ("cluster", "k8s://https://api:6443", None, True, FAIL),
    ("cluster", "k8s://https://api:6443", "/opt/spark/jars/p.jar", True, OK),
    ("cluster", "k8s://https://api:6443", "none", True, WARN),
    ("cluster", "k8s://https://api:6443", "/opt/p.jar", False, WARN),
    (None, "k8s://https://api:6443", None, True, WARN),  # client mode: executors in pods have none
    ("client", "k8s://https://api:6443", "/opt/p.jar", True, OK),
    (None, "local[2]", None, True, OK),
])
def test_the_token_refresher(mode: str | None, master: str, jar: str | None, refresh: bool, status: str) -> None:
    assert check_plugin(mode, master, jar, refresh).status == status


def test_the_duration_against_the_token_lifetimes() -> None:
    day, lifetimes = dt.timedelta(days=1), Lifetimes(renew_ms=3_600_000, max_ms=7 * 86_400_000)
    assert check_duration(day, None, True).status == WARN  # without --probe nothing is known
    assert check_duration(day, lifetimes, True).status == OK
    failed = check_duration(day, lifetimes, False)
    assert failed.status == FAIL and "a 1d job outlives its tokens (1h without renewal)" in failed.detail
    assert check_duration(dt.timedelta(minutes=30), lifetimes, False).status == OK


def test_a_bad_setting_is_a_failed_check_and_nothing_is_asked() -> None:
    asked: list[str] = []

    def kube():  # type: ignore[no-untyped-def]
        asked.append("kube")
        raise AssertionError("not to be called")

    report = examine({"spark.secrets.layout": "sideways"}, kube)
    assert [(c.name, c.status) for c in report.checks] == [("settings", FAIL)]
    assert "spark.secrets.layout='sideways' is not a layout" in report.checks[0].detail and asked == []


def test_the_cli_exits_2_on_bad_input_and_1_on_a_failed_check(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "spark_secrets", "doctor"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "KUBECONFIG": str(tmp_path / "none"),
           "KRB5CCNAME": f"FILE:{tmp_path / 'cc'}", "HOME": str(tmp_path)}
    bad = subprocess.run([*run, "--duration", "soon", "--"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "spark-secrets: error: --duration='soon' is not a duration: write it like 90s, 30min, 12h or 7d"]
    failed = subprocess.run([*run, "--json", "--", "--conf", "spark.secrets.hadoop.filesystems=hdfs://nn:8020"],
                            capture_output=True, text=True, env=env)
    verdict = json.loads(failed.stdout)
    assert failed.returncode == 1 and not verdict["ok"]
    assert {c["name"]: c["status"] for c in verdict["checks"]}["ticket"] == FAIL


# -- every registered kind, through the provider interface ------------------------------------------------
HOUR, DAY_MS = 3_600_000, 86_400_000
JOB = {"spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": "hdfs://nn.example:8020",
       "spark.secrets.renewer": "spark-renewer"}


class StreamProvider:
    """A new kind, as its module would add it: doctor checks it with no edit to spark_secrets/check/.
    Its token's identifier is opaque (not Hadoop's), so its dates come from the provider alone."""

    kind = "stream"
    title = "stream broker"
    consequence = "the stream will fail"
    essential = False
    token_kinds: tuple[str, ...] = ("STREAM_TOKEN",)
    check_name = "stream"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.down: SparkSecretsError | None = None
        self.issued_ms = 0

    def required(self, job: JobSettings) -> tuple[str, ...]:
        servers = job.get("spark.stream.servers")
        return (servers,) if servers else ()

    def owns_target(self, target: str) -> bool:
        return target.startswith("stream://")

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        self.calls.append(("obtain", *targets, ctx.user or "", ctx.renewer or ""))
        self.issued_ms = int(time.time() * 1000)
        creds.add(Token(b"stream-1", b"secret", "STREAM_TOKEN", targets[0]))
        return self.issued_ms + 2 * HOUR

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        return None

    def renew(self, token: Token, ctx: TokenContext) -> int:
        self.calls.append(("renew", token.service))
        return int(time.time() * 1000) + 2 * HOUR  # the server's renew interval: 2h from now

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        self.calls.append(("cancel", token.service))

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        self.calls.append(("reach", *targets))
        if self.down is not None:
            raise self.down
        return "stream broker 1.2"

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        return TokenFacts("alice", self.issued_ms, self.issued_ms + 3 * DAY_MS)


class FakeTicket:
    principal, short_name, credentials = "alice@EXAMPLE.COM", "alice", None
    remaining = dt.timedelta(hours=10)


@pytest.fixture
def bed(monkeypatch: pytest.MonkeyPatch) -> Iterator[StreamProvider]:
    """A ticket and a healthy filesystem without servers; the provider registered for the test only."""
    monkeypatch.setattr(examination, "current_ticket_cache", lambda min_lifetime: FakeTicket)
    monkeypatch.setattr(examination, "check_filesystem",
                        lambda uri, *a: Check(f"filesystem {uri}", OK, "active NameNode"))
    provider = StreamProvider()
    register(provider)
    try:
        yield provider
    finally:
        unregister(provider.kind)


def no_kube() -> Any:
    raise KubernetesError("no cluster here", "none needed")


def doctor(conf: dict[str, str], **kwargs: Any) -> dict[str, Check]:
    return {c.name: c for c in examine({**JOB, **conf}, no_kube, **kwargs).checks}


def test_a_registered_kind_is_checked_with_a_login_that_changes_nothing(bed: StreamProvider) -> None:
    checks = doctor({"spark.stream.servers": "stream://b1:9000"})
    check = checks["stream stream://b1:9000"]
    assert (check.status, check.detail) == (OK, "stream broker 1.2 accepts your Kerberos login")
    assert bed.calls == [("reach", "stream://b1:9000")]
    assert not any(name.startswith("stream") for name in doctor({}))  # a job that needs none: no check


def test_a_registered_kind_that_refuses_is_a_failure_with_its_fix(bed: StreamProvider) -> None:
    bed.down = KafkaUnavailable("no broker of stream://b1:9000 answered", "start the brokers")
    checks = doctor({"spark.stream.servers": "stream://b1:9000"}, probe_tokens=True)
    check = checks["stream stream://b1:9000"]
    assert (check.status, check.detail, check.fix) == (FAIL, "no broker of stream://b1:9000 answered",
                                                       "start the brokers")
    assert check.line() == "✗ stream stream://b1:9000: no broker of stream://b1:9000 answered\n    fix: start the brokers"
    assert [c[0] for c in bed.calls] == ["reach"]  # nothing obtained


def test_a_registered_kind_probed_its_lifetimes_weighed_and_nothing_left(bed: StreamProvider) -> None:
    checks = doctor({"spark.stream.servers": "stream://b1:9000"}, probe_tokens=True, duration=dt.timedelta(days=1))
    check = checks["stream stream://b1:9000"]
    assert check.status == OK, check
    assert check.detail == ("stream broker 1.2 accepts your Kerberos login; obtained, renewed and cancelled a token: "
                            "it lives 2h after each renewal, 3d at most")
    # Obtained with you as renewer (so you may renew and cancel it), renewed once, cancelled.
    assert bed.calls == [("reach", "stream://b1:9000"), ("obtain", "stream://b1:9000", "alice", "alice"),
                         ("renew", "stream://b1:9000"), ("cancel", "stream://b1:9000")]
    # Its lifetimes are the job's: without a renew service a 1d job outlives its 2h tokens.
    duration = checks["duration"]
    assert duration.status == FAIL and "(2h without renewal)" in duration.detail, duration


def test_without_a_ticket_a_registered_kind_is_not_checked(bed: StreamProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_ticket(min_lifetime: dt.timedelta) -> None:
        raise SparkSecretsError("no ticket", "kinit")

    monkeypatch.setattr(examination, "current_ticket_cache", no_ticket)
    check = doctor({"spark.stream.servers": "stream://b1:9000"})["stream stream://b1:9000"]
    assert (check.status, check.detail) == (WARN, "not checked without a usable ticket") and bed.calls == []


class FakeMetastore:
    """The metastore's Thrift client: a version, and tokens that live 1h after each renewal, 7d at most."""

    calls: list[str] = []

    def __init__(self, uri: str, principal: str, credentials: object) -> None:
        self.where = f"metastore {uri}"
        self.principal = principal

    def get_version(self) -> str:
        if self.principal.startswith("nohive/"):
            raise SparkSecretsError(f"the KDC knows no principal {self.principal}")
        self.calls.append("version")
        return "4.0.1"

    def get_delegation_token(self, owner: str, renewer: str) -> Token:
        self.calls.append(f"obtain {owner} {renewer}")
        now = int(time.time() * 1000)
        ident = DelegationTokenIdentifier(owner, renewer, owner, now, now + 7 * DAY_MS, 1, 1)
        return Token(ident.encode(), b"p" * 20, "HIVE_DELEGATION_TOKEN", "")

    def renew_delegation_token(self, token: Token) -> int:
        self.calls.append("renew")
        return int(time.time() * 1000) + HOUR

    def cancel_delegation_token(self, token: Token) -> None:
        self.calls.append("cancel")


def test_the_metastore_through_the_same_path(bed: StreamProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeMetastore, "calls", [])
    monkeypatch.setattr(spark_secrets.tokens.metastore, "MetastoreClient", FakeMetastore)
    hive = {"spark.secrets.hive.metastoreUris": "thrift://ms.example:9083",
            "spark.secrets.hive.principal": "hive/_HOST@EXAMPLE.COM"}
    check = doctor(hive, probe_tokens=True)["metastore thrift://ms.example:9083"]
    assert check.status == OK and check.detail == (
        "Hive metastore 4.0.1 accepts your Kerberos login; obtained, renewed and cancelled a token: it lives 1h "
        "after each renewal, 7d at most")
    assert FakeMetastore.calls == ["version", "obtain alice alice", "renew", "cancel"]
    wrong = doctor({**hive, "spark.secrets.hive.principal": "nohive/_HOST@EXAMPLE.COM"})
    check = wrong["metastore thrift://ms.example:9083"]
    assert check.status == FAIL and "nohive/ms.example@EXAMPLE.COM" in check.detail
    assert check.fix == "check spark.secrets.hive.metastoreUris"

KAFKA_CONF = {"spark.kafka.clusters.c1.auth.bootstrap.servers": "b1:9093,b2:9093",
              "spark.kafka.clusters.c2.auth.bootstrap.servers": "k:9092",
              "spark.kafka.clusters.c2.security.protocol": "SASL_PLAINTEXT"}


def test_kafka_reached_creating_nothing_and_a_probe_token_weighed(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``doctor`` asks of the Kafka provider: a login that changes nothing, then (``--probe``) a
    token's dates from its create answer, renewed and expired through the generic check."""
    broker = FakeKafka()
    monkeypatch.setattr(kafkaclient, "open_channel", broker.connect)
    provider, ctx = KafkaProvider(), TokenContext(renewer="alice", user="alice", conf=KAFKA_CONF)
    targets = tuple(cluster.target for cluster in clusters(KAFKA_CONF))
    assert provider.reach(targets, ctx) == "Kafka cluster c1 (b1:9093,b2:9093), Kafka cluster c2 (k:9092)"
    assert broker.calls == [] and broker.tokens == {}
    broker.caller = "User:alice"
    creds = Credentials()
    provider.obtain(targets[:1], ctx, creds)
    (token,) = creds
    assert provider.facts(token, ctx) == TokenFacts("alice", NOW, NOW + 7 * DAY)  # remembered from the create answer
    assert [c[0] for c in broker.calls] == ["create"]
    assert KafkaProvider().facts(token, ctx) == TokenFacts("alice", NOW, NOW + 7 * DAY)  # one that did not create it asks
    assert [c[0] for c in broker.calls] == ["create", "describe"]
    cancel_any(token, ctx)
    stranger = KafkaProvider()
    stranger.DESCRIBE_WAIT_S = 0.3
    assert stranger.facts(token, ctx) is None  # gone: nothing to describe

    registered = for_kind("kafka")
    found, lifetimes = check_provider(registered, targets[:1], ctx, probe=True)
    assert found.status == "ok", found
    assert found.name == "kafka kafka://b1:9093,b2:9093/c1"
    assert found.detail == ("Kafka cluster c1 (b1:9093,b2:9093) accepts your Kerberos login; obtained, renewed and "
                            "cancelled a token: it lives 1d after each renewal, 7d at most")
    assert lifetimes is not None and lifetimes.max_ms == 7 * DAY and abs(lifetimes.renew_ms - DAY) < 2000
    assert broker.tokens == {}  # expired: nothing left
    broker.down = {"k:9092"}
    failed, _ = check_provider(registered, targets[1:], ctx, probe=True)
    assert (failed.status, failed.fix) == ("fail", "check spark.kafka.clusters.c2.auth.bootstrap.servers and that "
                                                   "the brokers run")


def test_a_token_the_brokers_do_not_know_yet_is_renewed_again_while_it_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """KRaft: a broker learns of a token from the controller a moment after the answer that created it."""
    broker = FakeKafka(caller="User:alice")
    monkeypatch.setattr(kafkaclient, "open_channel", broker.connect)
    provider, ctx = KafkaProvider(), TokenContext(renewer="alice", user="alice", conf=KAFKA_CONF)
    creds = Credentials()
    provider.obtain(tuple(cluster.target for cluster in clusters(KAFKA_CONF))[1:], ctx, creds)
    (token,) = creds
    broker.fail[39] = 62  # DELEGATION_TOKEN_NOT_FOUND, twice
    answers = iter([None, None])
    original = broker.connect

    def lagging(*args: Any) -> Any:
        if next(answers, "known") == "known":
            broker.fail.pop(39, None)
        return original(*args)

    monkeypatch.setattr(kafkaclient, "open_channel", lagging)
    assert provider.renew(token, ctx) == NOW + DAY
    broker.fail[39] = 62
    monkeypatch.setattr(kafkaclient, "open_channel", original)
    stranger = KafkaProvider()  # did not create it: the brokers' answer stands
    with pytest.raises(KafkaTokenNotFound):
        stranger.renew(token, ctx)
