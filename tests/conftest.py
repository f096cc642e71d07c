"""Session fixtures: one real test bed (KDC, secure HDFS, API server) shared by the integration tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY
from spark_secrets.testbed.bed import ALL_COMPONENTS, RENEWER, USERS, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs, TokenLifetimes
from spark_secrets.testbed.kafka import KafkaBroker
from spark_secrets.testbed.kms import Kms
from spark_secrets.testbed.metastore import HiveMetastore
from spark_secrets.testbed.openbao import OpenBao
from spark_secrets.testbed.postgres import Postgres
from spark_secrets.testbed.jvm import compile_java
from spark_secrets.testbed.operator import SparkOperator

if TYPE_CHECKING:
    from connectjobs import ConnectRun
    from podjobs import Spark35Job

JVM_SOURCES = Path(__file__).parent / "jvm"

_BED: list[Testbed] = []


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The whole test bed, started once per session; its directory (logs included) is kept."""
    os.environ["SPARK_SECRETS_TESTBED_QUIET"] = "1"
    # SPARK_SECRETS_TESTBED_COMPONENTS (e.g. "kdc,hdfs,kube") narrows the bed while developing;
    # tests that need a missing component then fail with its name.
    chosen = os.environ.get("SPARK_SECRETS_TESTBED_COMPONENTS")
    bed = Testbed(tmp_path_factory.mktemp("testbed"),
                  components=chosen.split(",") if chosen else ALL_COMPONENTS,
                  lifetimes=TokenLifetimes(renew_interval_ms=3_600_000, max_lifetime_ms=7_200_000,
                                           key_update_interval_ms=3_600_000))
    _BED.append(bed)
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()
        if bed.node is not None:  # a torn-down node leaves no processes, mounts or interfaces
            left = bed.node.leftovers()
            assert not left, f"the node left behind: {left}"


#: The HA cluster's short token lifetimes (ms): tokens expire within a test's time.
HA_LIFETIMES = TokenLifetimes(renew_interval_ms=20_000, max_lifetime_ms=40_000, key_update_interval_ms=20_000)
MAX_LIFETIME_S = HA_LIFETIMES.max_lifetime_ms / 1000
#: The token Secret's data key the submission steps write by default.
KEY = DEFAULT_TOKEN_KEY


@pytest.fixture(scope="session")
def ha_hdfs(testbed: Testbed) -> Iterator[SecureHdfs]:
    """A second secure HDFS in the same realm: nameservice ``ns1`` with NameNodes nn1 (standby) and
    nn2 (active), and short token lifetimes (:data:`HA_LIFETIMES`)."""
    cluster = SecureHdfs(testbed.dir / "hdfs-ha", testbed.kdc_required(), nameservice="ns1", lifetimes=HA_LIFETIMES)
    with cluster.serving(USERS):
        yield cluster


#: Short lifetimes of the KMS, its encryption-zone cluster and the metastore (ms): 20 s, at most 40 s.
EZ_LIFETIMES = TokenLifetimes(renew_interval_ms=20_000, max_lifetime_ms=40_000, key_update_interval_ms=20_000)
#: The encryption zone, owned by alice, under key ``k1``.
ZONE = "/zone"


@dataclass
class Zone:
    """A KMS and a secure HDFS whose NameNode names it; ``conf`` is the clients' (no key provider in it)."""

    kms: Kms
    cluster: SecureHdfs
    conf: HadoopConf

    def obtain(self, auth: SpnegoAuth, doas: str | None = None) -> Credentials:
        return obtain_tokens([self.cluster.uri], RENEWER, auth, doas=doas, conf=self.conf)


@contextlib.contextmanager
def serving_zone(testbed: Testbed, suffix: str = "", lifetimes: TokenLifetimes | None = None) -> Iterator[Zone]:
    """A KMS with key ``k1``, and a secure HDFS whose ``/zone`` is an encryption zone under it."""
    kdc = testbed.kdc_required()
    kms = Kms(testbed.dir / f"kms{suffix}", kdc, lifetimes=lifetimes)
    kms.start()
    cluster = SecureHdfs(testbed.dir / f"hdfs-ez{suffix}", kdc, key_provider=kms.provider_uri, lifetimes=lifetimes)
    try:
        with cluster.serving(USERS):
            kms.create_key("k1", cluster.admin_ccache())
            cluster.create_zone(ZONE, "k1", "alice")
            conf = HadoopConf.load(cluster.client_conf_dir())
            assert "key.provider" not in (cluster.client_conf_dir() / "core-site.xml").read_text()
            yield Zone(kms, cluster, conf)
    finally:
        kms.stop()


@contextlib.contextmanager
def serving_metastore(testbed: Testbed, suffix: str = "",
                      lifetimes: TokenLifetimes | None = None) -> Iterator[HiveMetastore]:
    """A Kerberized Hive metastore (``hive/localhost``)."""
    server = HiveMetastore(testbed.dir / f"metastore{suffix}", testbed.kdc_required(), lifetimes=lifetimes)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ez(testbed: Testbed) -> Iterator[Zone]:
    """The encryption zone, its KMS's and NameNode's tokens living 20 s, at most 40 s."""
    with serving_zone(testbed, lifetimes=EZ_LIFETIMES) as zone:
        yield zone


@pytest.fixture(scope="session")
def metastore(testbed: Testbed) -> Iterator[HiveMetastore]:
    """The metastore, its tokens living 20 s, at most 40 s."""
    with serving_metastore(testbed, lifetimes=EZ_LIFETIMES) as server:
        yield server


@pytest.fixture(scope="session")
def lasting_zone(testbed: Testbed) -> Iterator[Zone]:
    """An encryption zone whose KMS and NameNode keep Hadoop's default token lifetimes (a day, a week),
    for jobs that run longer than :func:`ez`'s 20 s tokens with nothing renewing them."""
    with serving_zone(testbed, "-lasting") as zone:
        yield zone


@pytest.fixture(scope="session")
def lasting_metastore(testbed: Testbed) -> Iterator[HiveMetastore]:
    """A metastore with Hive's default token lifetimes (a day, a week), for jobs that run longer than
    :func:`metastore`'s 20 s tokens with nothing renewing them."""
    with serving_metastore(testbed, "-lasting") as server:
        yield server


@pytest.fixture(scope="session")
def openbao(testbed: Testbed) -> Iterator[OpenBao]:
    """An OpenBao server (dev mode, KV v2 at ``secret/``, policy ``team`` on ``secret/team/*``)."""
    server = OpenBao(testbed.dir / "openbao")
    server.start()
    try:
        yield server
    finally:
        server.stop()


#: The Kafka broker's delegation tokens (ms): 30 s after creation or renewal, 60 s at most.
KAFKA_TOKEN_EXPIRY_MS, KAFKA_TOKEN_MAX_LIFETIME_MS = 30_000, 60_000


@pytest.fixture(scope="session")
def kafka(testbed: Testbed) -> Iterator[KafkaBroker]:
    """A Kerberized Apache Kafka broker in KRaft mode (``kafka/localhost``, ACLs on), its tokens living
    30 s, at most 60 s; started on first use only (about 10-20 s)."""
    broker = KafkaBroker(testbed.dir / "kafka", testbed.kdc_required(), token_expiry_ms=KAFKA_TOKEN_EXPIRY_MS,
                         token_max_lifetime_ms=KAFKA_TOKEN_MAX_LIFETIME_MS)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


#: The database engine's leases: 45 s, renewable up to 90 s. The service renews at two thirds, so it learns
#: that the max TTL is near at least 15 s before it: more than kubelet needs to project new credentials.
LEASE_TTL_S, LEASE_MAX_TTL_S = 45, 90
#: ``database/creds/etl-quick``: 20 s, up to 40 s, for the service alone (no kubelet between it and the test).
QUICK_LEASE_TTL_S, QUICK_LEASE_MAX_TTL_S = 20, 40


@pytest.fixture(scope="session")
def database(testbed: Testbed, openbao: OpenBao) -> Iterator[Postgres]:
    """PostgreSQL, and OpenBao's database engine on it: ``database/creds/etl`` and ``etl-quick`` make a
    login per read."""
    server = Postgres(testbed.dir / "postgres")
    server.start()
    try:
        openbao.enable_database(server, {"etl": (f"{LEASE_TTL_S}s", f"{LEASE_MAX_TTL_S}s"),
                                         "etl-quick": (f"{QUICK_LEASE_TTL_S}s", f"{QUICK_LEASE_MAX_TTL_S}s")})
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def rotation(testbed: Testbed, openbao: OpenBao, renewer_rbac: None) -> str:
    """OpenBao's role ``spark-jobs`` admits alice's driver account ``spark`` with the team policy; the renew
    service may request that account's tokens in alice's namespace. Returns the role."""
    assert testbed.kube is not None
    from renewers import bind_vault
    openbao.enable_kubernetes_auth(testbed.kube, "spark-jobs", "alice", "spark")
    bind_vault(testbed)
    return "spark-jobs"


@pytest.fixture
def alice_ccache(testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ticket cache for alice, made current (``KRB5CCNAME``) for in-process gssapi."""
    ccache = testbed.ticket_cache("alice")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    return ccache


@pytest.fixture(scope="session")
def jvm_tools(testbed: Testbed) -> Path:
    """The tests' Java helpers (``tests/jvm``), compiled against the test bed's Hadoop jars."""
    return compile_java(sorted(JVM_SOURCES.glob("*.java")), testbed.dir / "jvm-tools")


@pytest.fixture(scope="session")
def pod_hdfs(testbed: Testbed) -> Iterator[SecureHdfs]:
    """A third secure HDFS (same realm) whose tokens live 45 s, at most 120 s: the long jobs' in pods."""
    from podjobs import POD_LIFETIMES
    with SecureHdfs(testbed.dir / "hdfs-pods", testbed.kdc_required(), lifetimes=POD_LIFETIMES).serving(USERS) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def long_namespace(testbed: Testbed, pod_hdfs: SecureHdfs) -> str:
    """alice's namespace for the long jobs (podjobs.prepare_long_namespace)."""
    from podjobs import prepare_long_namespace
    return prepare_long_namespace(testbed, pod_hdfs)


@pytest.fixture(scope="session")
def spark_operator(testbed: Testbed, long_namespace: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkOperator]:
    """The real spark-operator, installed once by its own chart for alice's two namespaces."""
    import time
    started = time.monotonic()
    server = SparkOperator(testbed, tmp_path_factory.mktemp("operator"), ["alice", long_namespace])
    server.install()
    print(f"\nspark-operator installed by helm in {time.monotonic() - started:.0f} s")
    yield server
    server.uninstall()


@pytest.fixture(scope="session")
def spark35_job(testbed: Testbed, pod_hdfs: SecureHdfs, long_namespace: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spark35Job]:
    """test_pods.py's Spark 3.5 job, started by the first test that asks for it and left running beside it."""
    from podjobs import Spark35Job
    job = Spark35Job(testbed, pod_hdfs, long_namespace, tmp_path_factory.mktemp("spark35")).start()
    yield job
    job.stop()


@pytest.fixture(scope="session")
def connect_run(testbed: Testbed, pod_hdfs: SecureHdfs, metastore: HiveMetastore,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConnectRun]:
    """test_pods_connect.py's notebooks on their own Connect servers (connectjobs.ConnectRun): started by the Kafka
    streaming test (after a delay) and left running beside the tests that follow, or by the judge itself."""
    from connectjobs import ConnectRun
    run = ConnectRun(testbed, pod_hdfs, metastore, tmp_path_factory.mktemp("connect"))
    yield run
    run.thread.join(60)
    if run.service is not None:
        run.service.stop()


@pytest.fixture(scope="module")
def renewer_rbac(testbed: Testbed) -> None:
    """The renew service's user may work on token Secrets in namespace alice (conf/rbac/common.yaml)."""
    from renewers import bind_renewer
    bind_renewer(testbed)


@pytest.fixture(scope="module")
def lease_rbac(testbed: Testbed) -> None:
    """The renew service's user may hold its Lease (conf/rbac/common.yaml)."""
    from renewers import bind_lease
    bind_lease(testbed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for bed in _BED:
        terminalreporter.write_line(f"test-bed directory (daemon logs): {bed.dir}")
