"""Kafka delegation tokens through the provider registry, on the test bed's real Kafka 4.4 broker and KDC
(issue 30): what this project's client does, checked with Kafka's own tools.

Everything this project does goes through ``for_kind("kafka")`` with a :class:`TokenContext`, as the
submission and the renew service call it; every check of what the broker holds is Kafka's own
``DelegationTokenCommand`` (describe), and every check that a token works is Kafka's own console
producer, consumer or ``TopicCommand`` logged in with SCRAM-SHA-512 as Spark's ``KafkaTokenUtil``
configures it. Needs only the KDC of the test bed (``SPARK_SECRETS_TESTBED_COMPONENTS=kdc``); the
broker's tokens live 30 s after creation or renewal, 60 s at most (the ``kafka`` fixture).
"""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gssapi
import pytest

from spark_secrets.check import FAIL, OK, Check, examine
from spark_secrets.errors import (
    KafkaAuthorizationError, KafkaUnavailable, KerberosError, KubernetesError, SparkSecretsError,
)
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.daemon import free_port
from spark_secrets.testbed.kafka import TOPIC_COMMAND, DelegationToken, KafkaBroker
from spark_secrets.tokens.kafka import KAFKA_DELEGATION_KIND, KafkaProvider, clusters, token_service
from spark_secrets.tokens.kafkaproto import TokenInfo
from spark_secrets.tokens.provider import TokenContext
from spark_secrets.tokens.registry import for_kind

from conftest import KAFKA_TOKEN_EXPIRY_MS, KAFKA_TOKEN_MAX_LIFETIME_MS

pytestmark = pytest.mark.testbed
ROOT = Path(__file__).resolve().parent.parent

CLUSTER = "c1"
PREFIX = f"spark.kafka.clusters.{CLUSTER}."
PROVIDER = for_kind("kafka")


# -- helpers -------------------------------------------------------------------------------------------
def spark_conf(kafka: KafkaBroker, servers: str | None = None, **settings: str) -> dict[str, str]:
    """A job's Spark settings for cluster ``c1`` (Spark's ``spark.kafka.clusters.<id>.*``)."""
    return {f"{PREFIX}auth.bootstrap.servers": servers or kafka.bootstrap,
            f"{PREFIX}security.protocol": "SASL_PLAINTEXT", **{PREFIX + k: v for k, v in settings.items()}}


def targets(conf: dict[str, str]) -> list[str]:
    """The targets the provider wants for a job with ``conf`` (what ``required`` gives)."""
    return [cluster.target for cluster in clusters(conf)]


def ccache_credentials(ccache: Path) -> gssapi.Credentials:
    """The Kerberos credentials of the ticket cache ``ccache`` (in-process, no KRB5CCNAME)."""
    return gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"})


def context(credentials: gssapi.Credentials | None, user: str, conf: dict[str, str]) -> TokenContext:
    """As the submission (the user) or the renew service (``user=RENEWER``) calls a provider."""
    return TokenContext(auth=lambda: SpnegoAuth(credentials), renewer=RENEWER, user=user, conf=conf)


def password_text(token: Token) -> str:
    return token.password.decode("ascii")


def tool_tokens(kafka: KafkaBroker, ccache: Path, owner: str = "alice") -> dict[str, DelegationToken]:
    """Kafka's own ``DelegationTokenCommand --describe`` of ``owner``'s tokens, by token id."""
    return {t.token_id: t for t in kafka.delegation_tokens(ccache, [owner])}


def scram(kafka: KafkaBroker, token: Token) -> dict[str, str]:
    """Kafka's client configuration for a SCRAM session with ``token`` as Spark stores it."""
    return kafka.token_client_config(token.identifier.decode(), token.password.decode())


def list_topics(kafka: KafkaBroker, token: Token) -> tuple[int, str]:
    proc = kafka.tool(TOPIC_COMMAND, ["--bootstrap-server", kafka.bootstrap, "--list"], scram(kafka, token),
                      check=False, timeout=90)
    return proc.returncode, proc.stdout + proc.stderr


def described_by_us(token: Token, ctx: TokenContext, expiry_ms: int, wait: float = 10) -> TokenInfo:
    """``DescribeDelegationToken`` by our client once it shows ``expiry_ms``. A broker describes from its
    metadata cache, which learns of a renewal from the controller's log a moment after the renewal's
    answer (KRaft); so an immediate describe may still show the previous expiry."""
    deadline = time.monotonic() + wait
    while True:
        info = KafkaProvider().describe(token, ctx)
        assert info is not None
        if info.expiry_ms == expiry_ms or time.monotonic() > deadline:
            assert info.expiry_ms == expiry_ms
            return info
        time.sleep(0.2)


def minute(ms: int) -> str:
    """An instant as ``DelegationTokenCommand`` prints it (local time, to the minute)."""
    return time.strftime("%Y-%m-%dT%H:%M", time.localtime(ms / 1000))


class Watch:
    """The tokens a test obtained and the error texts it saw: none may carry an HMAC (checked afterwards)."""

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self.texts: list[str] = []

    def one_line(self, exc: pytest.ExceptionInfo[SparkSecretsError]) -> str:
        """The error's text: one line, naming a fix."""
        text = str(exc.value)
        self.texts += [text, repr(exc.value), *map(str, exc.value.args)]
        assert "\n" not in text and exc.value.fix, text
        return text

    def hmac_forms(self) -> list[str]:
        forms = []
        for token in self.tokens:
            raw = base64.b64decode(token.password)
            forms += [token.password.decode(), raw.hex(), repr(raw)[2:-1]]
        return forms


# -- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def watch(caplog: pytest.LogCaptureFixture) -> Iterator[Watch]:
    """Afterwards: no HMAC of a token the test obtained is in any record logged at DEBUG or more (by this
    project, kafka-python, gssapi...), nor in the text of an error the test saw."""
    caplog.set_level(logging.DEBUG)
    seen = Watch()
    yield seen
    records = caplog.get_records("setup") + caplog.get_records("call")  # (caplog.text is teardown's, here)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in records)
    if seen.tokens:  # the calls did log (the check is not vacuous)
        assert "created Kafka delegation token" in logged
    for form in seen.hmac_forms():
        assert form not in logged
        assert not any(form in text for text in seen.texts)


@pytest.fixture
def renewer_credentials(testbed: Testbed, tmp_path: Path) -> gssapi.Credentials:
    """The renew service's login: its keytab, into a private ticket cache (as the service logs in)."""
    return keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                        tmp_path / "renewer-cc").credentials


@pytest.fixture
def alice(testbed: Testbed) -> Path:
    return testbed.ticket_cache("alice")


@pytest.fixture
def obtain(kafka: KafkaBroker, alice: Path, watch: Watch) -> Callable[[], tuple[Token, int]]:
    """Obtains one token as alice through the registry (a job's submission), and records it; and its expiry."""
    def obtain_one() -> tuple[Token, int]:
        conf = spark_conf(kafka)
        creds = Credentials()
        expiry = PROVIDER.obtain(targets(conf), context(ccache_credentials(alice), "alice", conf), creds)
        assert expiry is not None
        (token,) = creds
        watch.tokens.append(token)
        return token, expiry
    return obtain_one


# -- tests ---------------------------------------------------------------------------------------------
def test_obtained_as_spark_stores_it_and_it_logs_in_with_scram(
        testbed: Testbed, kafka: KafkaBroker, alice: Path, watch: Watch) -> None:
    kafka.create_topic("k-events")
    kafka.grant_client("alice", "k-events", group="k-readers")
    conf = spark_conf(kafka)
    creds = Credentials()
    expiry = PROVIDER.obtain(targets(conf), context(ccache_credentials(alice), "alice", conf), creds)
    watch.tokens.extend(creds)

    # Exactly Spark's KafkaTokenUtil: one token, alias = service = kafka.server.delegation.token.<id>.
    assert list(creds.tokens) == [token_service(CLUSTER)]
    token = creds.tokens[token_service(CLUSTER)]
    assert (token.kind, token.service) == (KAFKA_DELEGATION_KIND, token_service(CLUSTER))
    token_id, hmac = token.identifier.decode(), token.password.decode()
    assert base64.b64encode(base64.b64decode(hmac, validate=True)).decode() == hmac

    # Kafka's own tool: alice's token, renewable by the renew service, the same id, HMAC and expiry.
    described = tool_tokens(kafka, alice)[token_id]
    assert (described.owner, described.requester, described.renewers) == \
        ("User:alice", "User:alice", (f"User:{RENEWER}",))
    assert described.hmac == hmac
    assert expiry is not None and described.expiry_date == minute(expiry)

    # The stored token is a working SCRAM-SHA-512 login for Kafka's own console producer and consumer.
    as_token = scram(kafka, token)
    kafka.produce("k-events", ["first", "second"], as_token)
    assert kafka.consume("k-events", 2, as_token, group="k-readers") == ["first", "second"]


def test_renewed_by_the_renew_service_and_refused_to_bob(
        testbed: Testbed, kafka: KafkaBroker, alice: Path, obtain: Callable[[], tuple[Token, int]],
        renewer_credentials: gssapi.Credentials, watch: Watch) -> None:
    token, expiry = obtain()
    conf = spark_conf(kafka)
    before = tool_tokens(kafka, alice)[token.identifier.decode()]
    assert before.expiry_date == minute(expiry)
    time.sleep(1.5)
    renewed = PROVIDER.renew(token, context(renewer_credentials, RENEWER, conf))
    assert renewed > expiry
    assert abs(renewed - time.time() * 1000 - KAFKA_TOKEN_EXPIRY_MS) < 5000
    info = described_by_us(token, context(renewer_credentials, RENEWER, conf), renewed)
    after = tool_tokens(kafka, alice)[token.identifier.decode()]
    assert after.expiry_date == minute(renewed) and after.expiry_date >= before.expiry_date
    assert renewed > info.issue_ms + KAFKA_TOKEN_EXPIRY_MS

    # Control: bob has a ticket but is not a renewer of alice's token.
    bob = ccache_credentials(testbed.ticket_cache("bob"))
    with pytest.raises(KafkaAuthorizationError) as refused:
        PROVIDER.renew(token, context(bob, "bob", conf))
    assert "neither the token's owner nor one of its renewers" in watch.one_line(refused)
    assert tool_tokens(kafka, alice)[token.identifier.decode()].expiry_date == minute(renewed)


def test_re_issued_for_the_owner_only_where_a_create_tokens_acl_allows(
        testbed: Testbed, kafka: KafkaBroker, alice: Path, renewer_credentials: gssapi.Credentials,
        watch: Watch) -> None:
    conf = spark_conf(kafka)
    as_renewer = context(renewer_credentials, RENEWER, conf)
    # No test leaves the renew service CreateTokens on alice or bob behind this one.
    for user in ("alice", "bob"):
        kafka.acl(RENEWER, ("CreateTokens", "DescribeTokens"), user=user, remove=True)
    before = set(tool_tokens(kafka, alice))

    # Attack: without the ACL, the renew service cannot create a token that alice owns.
    with pytest.raises(KafkaAuthorizationError) as refused:
        PROVIDER.obtain(targets(conf), as_renewer, Credentials(), owner="alice")
    text = watch.one_line(refused)
    assert "User:alice" in text and "--operation CreateTokens --user-principal User:alice" in text
    assert set(tool_tokens(kafka, alice)) <= before  # none new (older ones may expire meanwhile)

    kafka.grant_create_tokens(RENEWER, "alice")
    try:
        creds = Credentials()
        PROVIDER.obtain(targets(conf), as_renewer, creds, owner="alice")
        watch.tokens.extend(creds)
        (token,) = creds
        described = tool_tokens(kafka, alice)[token.identifier.decode()]
        assert (described.owner, described.requester, described.renewers) == \
            ("User:alice", f"User:{RENEWER}", (f"User:{RENEWER}",))

        # Attack: CreateTokens on alice does not reach bob.
        bob_cc = testbed.ticket_cache("bob")
        bob_before = set(tool_tokens(kafka, bob_cc, "bob"))
        with pytest.raises(KafkaAuthorizationError) as not_bob:
            PROVIDER.obtain(targets(conf), as_renewer, Credentials(), owner="bob")
        assert "User:bob" in watch.one_line(not_bob)
        assert set(tool_tokens(kafka, bob_cc, "bob")) <= bob_before  # none new
        PROVIDER.cancel(token, as_renewer)
    finally:
        kafka.acl(RENEWER, ("CreateTokens", "DescribeTokens"), user="alice", remove=True)


def test_cancelled_by_the_renew_service_and_gone(
        kafka: KafkaBroker, alice: Path, obtain: Callable[[], tuple[Token, int]],
        renewer_credentials: gssapi.Credentials) -> None:
    token, _ = obtain()
    assert token.identifier.decode() in tool_tokens(kafka, alice)
    PROVIDER.cancel(token, context(renewer_credentials, RENEWER, spark_conf(kafka)))
    assert token.identifier.decode() not in tool_tokens(kafka, alice)
    code, out = list_topics(kafka, token)
    assert code != 0 and "Authentication failed" in out, out[-1500:]


@pytest.mark.parametrize("case", ["unreachable", "unknown service name", "another service's name", "no TLS listener",
                                  "no ticket"])
def test_bad_input_one_line_and_nothing_created(
        kafka: KafkaBroker, alice: Path, tmp_path: Path, watch: Watch, case: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = set(tool_tokens(kafka, alice))
    credentials: gssapi.Credentials | None = ccache_credentials(alice)
    expected: type[SparkSecretsError] = KerberosError
    if case == "unreachable":  # a closed port
        port = free_port()
        conf = spark_conf(kafka, servers=f"localhost:{port}")
        expected, words = KafkaUnavailable, [f"localhost:{port}", "Connection refused", f"{PREFIX}auth.bootstrap.servers"]
    elif case == "unknown service name":  # the KDC knows no wrong/localhost
        conf = spark_conf(kafka, **{"sasl.kerberos.service.name": "wrong"})
        words = ["the KDC knows no principal for wrong/localhost", f"{PREFIX}sasl.kerberos.service.name"]
    elif case == "another service's name":  # the KDC issues a ticket for it, which the broker cannot read
        conf = spark_conf(kafka, **{"sasl.kerberos.service.name": RENEWER})
        words = [f"refused the Kerberos (SASL GSSAPI) login to {RENEWER_PRINCIPAL}", f"{PREFIX}sasl.kerberos.service.name"]
    elif case == "no TLS listener":  # SASL_SSL to the SASL_PLAINTEXT listener
        conf = spark_conf(kafka, **{"security.protocol": "SASL_SSL"})
        expected, words = KafkaUnavailable, ["TLS with Kafka broker", f"{PREFIX}security.protocol"]
    else:  # no ticket: an absent ticket cache
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-ccache'}")
        credentials, conf = None, spark_conf(kafka)
        words = ["No Kerberos credentials available", "kinit"]
    with pytest.raises(expected) as failed:
        PROVIDER.obtain(targets(conf), context(credentials, "alice", conf), Credentials())
    text = watch.one_line(failed)
    for word in words:
        assert word in text
    assert set(tool_tokens(kafka, alice)) <= before  # none new (older ones may expire meanwhile)


# -- doctor ---------------------------------------------------------------------------------------------
def no_cluster() -> Any:
    """The Kubernetes client factory of a bed without an API server (the Kubernetes checks fail; not asserted)."""
    raise KubernetesError("no API server in this test bed", "none needed")


def doctor_check(kafka: KafkaBroker, conf: dict[str, str], probe: bool = False) -> Check:
    """``doctor``'s check of the Kafka cluster of a job with ``conf``, as alice (her ticket cache is current)."""
    report = examine({"spark.kubernetes.namespace": "alice", **conf}, no_cluster, probe_tokens=probe)
    (target,) = targets(conf)
    found = {c.name: c for c in report.checks}
    assert f"kafka {target}" in found, [c.line() for c in report.checks]
    return found[f"kafka {target}"]


def test_doctor_logs_in_to_the_brokers_and_creates_nothing(kafka: KafkaBroker, alice_ccache: Path) -> None:
    before = set(tool_tokens(kafka, alice_ccache))
    check = doctor_check(kafka, spark_conf(kafka))
    assert check.status == OK, check.line()
    assert check.detail == f"Kafka cluster {CLUSTER} ({kafka.bootstrap}) accepts your Kerberos login"
    assert set(tool_tokens(kafka, alice_ccache)) <= before  # none new


def test_doctor_probe_weighs_the_brokers_lifetimes_and_leaves_no_token(kafka: KafkaBroker, alice_ccache: Path) -> None:
    before = set(tool_tokens(kafka, alice_ccache))
    check = doctor_check(kafka, spark_conf(kafka), probe=True)
    assert check.status == OK, check.line()
    found = re.search(r"obtained, renewed and cancelled a token: it lives (\d+)s after each renewal, (\S+) at most",
                      check.detail)
    assert found, check.detail
    # Learnt from the broker, not told: 30 s after each renewal, 60 s at most (within the round trips).
    assert abs(int(found.group(1)) * 1000 - KAFKA_TOKEN_EXPIRY_MS) <= 2000, check.detail
    assert found.group(2) == "1min" and KAFKA_TOKEN_MAX_LIFETIME_MS == 60_000
    # Kafka's own tool: the probe's token is gone (expired, so the broker forgot it).
    deadline = time.monotonic() + 15
    while (left := set(tool_tokens(kafka, alice_ccache)) - before) and time.monotonic() < deadline:
        time.sleep(1)
    assert left == set()


def test_doctor_names_a_wrong_service_name_and_its_fix(kafka: KafkaBroker, alice_ccache: Path) -> None:
    before = set(tool_tokens(kafka, alice_ccache))
    check = doctor_check(kafka, spark_conf(kafka, **{"sasl.kerberos.service.name": "wrong"}), probe=True)
    assert check.status == FAIL
    assert "the KDC knows no principal for wrong/localhost" in check.detail, check.line()
    assert f"set {PREFIX}sasl.kerberos.service.name" in check.fix, check.line()
    assert check.line().startswith(f"✗ kafka kafka://{kafka.bootstrap}/{CLUSTER}?") and "\n    fix: " in check.line()
    assert set(tool_tokens(kafka, alice_ccache)) <= before  # none new


def test_the_doctor_command_prints_the_kafka_line(testbed: Testbed, kafka: KafkaBroker, alice: Path,
                                                  tmp_path: Path) -> None:
    env = {**testbed.env("alice", alice), "PYTHONPATH": str(ROOT), "KUBECONFIG": str(tmp_path / "none")}
    args = [arg for k, v in spark_conf(kafka).items() for arg in ("--conf", f"{k}={v}")]
    proc = subprocess.run([sys.executable, "-m", "spark_secrets", "doctor", "--", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    line = f"✔ kafka {targets(spark_conf(kafka))[0]}: Kafka cluster {CLUSTER} ({kafka.bootstrap}) accepts your " \
           "Kerberos login"
    assert line in proc.stdout.splitlines(), proc.stdout + proc.stderr


# -- the tokens command ---------------------------------------------------------------------------------
def test_tokens_renew_and_cancel_a_kafka_token_file(testbed: Testbed, kafka: KafkaBroker, alice: Path,
                                                    obtain: Callable[[], tuple[Token, int]], tmp_path: Path) -> None:
    """``spark-secrets tokens renew|cancel`` as the renew service: a Kafka token names only its cluster, so its
    brokers come from --kafka-cluster (without it: one line, exit 2, no broker asked)."""
    token, expiry = obtain()
    file = tmp_path / "kafka.tokens"
    Credentials({token.service: token}).save(file)
    env = {**testbed.env(RENEWER, tmp_path / "no-ccache"), "PYTHONPATH": str(ROOT)}
    login = ["--keytab", str(testbed.renewer_keytab), "--principal", testbed.kdc_required().principal(RENEWER_PRINCIPAL)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "spark_secrets", "tokens", *args, str(file), *login],
                              capture_output=True, text=True, env=env, timeout=120)

    unnamed = cli("renew")
    assert unnamed.returncode == 2 and unnamed.stderr.strip().splitlines() == [
        f"spark-secrets: error: the file holds a Kafka token of cluster {CLUSTER}, but no --kafka-cluster names its "
        f"brokers: give --kafka-cluster kafka://HOST:PORT/{CLUSTER}"], unnamed.stderr
    target = targets(spark_conf(kafka))[0]
    renewed = cli("renew", "--kafka-cluster", target)
    assert renewed.returncode == 0, renewed.stderr
    assert "renewed Token(kind='KAFKA_DELEGATION_TOKEN'" in renewed.stdout, renewed.stdout
    ctx, deadline = context(ccache_credentials(alice), "alice", spark_conf(kafka)), time.monotonic() + 10
    while (info := PROVIDER.describe(token, ctx)) is None or info.expiry_ms <= expiry:  # the broker's word, once
        assert time.monotonic() < deadline, info  # its metadata cache has the renewal (KRaft)
        time.sleep(0.2)
    cancelled = cli("cancel", "--kafka-cluster", target)
    assert cancelled.returncode == 0 and "cancelled Token(kind='KAFKA_DELEGATION_TOKEN'" in cancelled.stdout, \
        cancelled.stdout + cancelled.stderr
    assert token.identifier.decode() not in tool_tokens(kafka, alice)
    assert password_text(token) not in renewed.stdout + renewed.stderr + cancelled.stdout + cancelled.stderr
