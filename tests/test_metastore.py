"""Hive metastore tokens on a real, Kerberized Hive 4.0.1 metastore (issue 16).

The metastore grants tokens for 20 s after each renewal and 40 s at most; nobody tells the client.
Spark SQL jobs run in local mode with only a token file (no ticket cache), as a job's JVMs do.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, KerberosError, ServerUnavailable
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND, KMS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.tokens.metastore import (
    SPARK_ALIAS,
    Metastore,
    add_hive_token,
    cancel_hive_token,
    obtain_hive_token,
    renew_hive_token,
)
from spark_secrets.plugin.jar import jar_path
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.metastore import HiveMetastore
from spark_secrets.testbed.paths import hive_client_jars
from spark_secrets.testbed.projection import SecretVolume
from spark_secrets.testbed.spark import spark_env

from conftest import EZ_LIFETIMES as LIFETIMES
from conftest import KEY, ZONE, Zone
from renewers import RenewerProcess, SubmittedJob

pytestmark = pytest.mark.testbed

SCRIPTS = Path(__file__).parent / "scripts"


def service_of(server: HiveMetastore) -> Metastore:
    """As a client configures it: the URI and ``hive/_HOST@REALM``."""
    return Metastore.parse(server.uri, server.client_conf()["hive.metastore.kerberos.principal"])


def renewer_credentials(testbed: Testbed, tmp_path: Path):  # type: ignore[no-untyped-def]
    return keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                        tmp_path / "renewer-cc").credentials


def sql_job(testbed: Testbed, server: HiveMetastore, token_file: Path, database: str, cwd: Path,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
    """The Spark SQL job with only ``token_file`` (no ticket cache), with Spark's Hive 4.0 metastore client."""
    env = spark_env({**testbed.env("alice", cwd / "no-such-ccache"), **extra_env,
                     "HADOOP_TOKEN_FILE_LOCATION": str(token_file),
                     # The realm, as a job's image has it, without the test bed's useSubjectCredsOnly=false
                     # (with it and no ticket, the JDK's Kerberos login asks for a user name on stdin).
                     "SPARK_SUBMIT_OPTS": f"-Djava.security.krb5.conf={testbed.kdc_required().krb5_conf}"})
    return subprocess.run([sys.executable, str(SCRIPTS / "hive_sql_job.py"), server.uri,
                           server.client_conf()["hive.metastore.kerberos.principal"], database,
                           "4.0.1", hive_client_jars()],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)  # as in a pod: the JDK's Kerberos login would prompt on a tty


def java_failure(stderr: str) -> str:
    """A failed JVM job's exception lines first (the tail alone is mostly a stack), then its tail."""
    causes = [line for line in stderr.splitlines() if re.match(r"\s*(Caused by: |\S+(Exception|Error)\b)", line)]
    return "\n".join(causes[:20]) + "\n...\n" + stderr[-1500:]


def test_a_token_named_as_spark_names_it(metastore: HiveMetastore, alice_ccache: Path) -> None:
    token = obtain_hive_token(service_of(metastore), "alice", RENEWER)
    assert (token.kind, token.service) == (HIVE_DELEGATION_KIND, "")  # service = the (empty) token signature
    ident = token.decode_identifier()
    assert ident is not None and (ident.owner, ident.renewer) == ("alice", RENEWER)
    assert ident.max_date - ident.issue_date == LIFETIMES.max_lifetime_ms
    creds = Credentials()
    add_hive_token(creds, token)
    assert creds.tokens == {SPARK_ALIAS: token}


def test_a_token_only_spark_sql_job_creates_and_queries_a_table_and_fails_without_the_token(
        testbed: Testbed, lasting_metastore: HiveMetastore, alice_ccache: Path, tmp_path: Path) -> None:
    """With Hive's default lifetimes: the job outlives a 20 s token, and nothing renews it here."""
    metastore = lasting_metastore
    creds = Credentials()
    add_hive_token(creds, obtain_hive_token(service_of(metastore), "alice", RENEWER))
    job = sql_job(testbed, metastore, creds.save(tmp_path / "tokens"), "alice_sales", tmp_path)
    assert job.returncode == 0, java_failure(job.stderr)
    assert "HIVE count=3 sum=6 tables=['events']" in job.stdout
    # The control: the same job with a token file that lacks the Hive token cannot reach the metastore.
    empty = Credentials().save(tmp_path / "no-hive-token")
    failed = sql_job(testbed, metastore, empty, "alice_other", tmp_path)
    assert failed.returncode != 0 and "HIVE count" not in failed.stdout
    assert "GSS initiate failed" in failed.stderr or "No valid credentials provided" in failed.stderr, \
        failed.stderr[-3000:]


def test_renew_reissue_as_proxy_user_and_cancel_on_the_metastore(
        testbed: Testbed, metastore: HiveMetastore, alice_ccache: Path, tmp_path: Path) -> None:
    service = service_of(metastore)
    token = obtain_hive_token(service, "alice", RENEWER)
    renewer = renewer_credentials(testbed, tmp_path)
    expiry = renew_hive_token(token, service, renewer)
    assert abs(expiry - time.time() * 1000 - LIFETIMES.renew_interval_ms) < 3000

    fresh = obtain_hive_token(service, "alice", RENEWER, renewer)  # the renew service re-issues for alice
    ident = fresh.decode_identifier()
    assert ident is not None and (ident.owner, ident.renewer) == ("alice", RENEWER)
    assert ident.real_user.startswith(f"{RENEWER_PRINCIPAL}@")
    cancel_hive_token(fresh, service, renewer)
    with pytest.raises(InvalidTokenError) as err:
        renew_hive_token(fresh, service, renewer)
    assert "does not exist" in str(err.value)
    with pytest.raises(HdfsPermissionError) as err2:  # alice is not the renewer
        renew_hive_token(token, service)
    assert "non-matching renewer" in str(err2.value) and err2.value.fix == "renew as the token's renewer"


def test_bad_input_gives_one_line_errors(testbed: Testbed, metastore: HiveMetastore, alice_ccache: Path) -> None:
    service = service_of(metastore)
    with pytest.raises(HdfsPermissionError) as refused:  # alice may not act for bob
        obtain_hive_token(service, "bob", RENEWER)
    assert "alice@" in str(refused.value) and "not allowed to impersonate bob" in str(refused.value)
    assert "hadoop.proxyuser" in (refused.value.fix or "")

    wrong = Metastore.parse(metastore.uri, "nohive/_HOST@" + testbed.kdc_required().realm)
    with pytest.raises(KerberosError) as bad_principal:
        obtain_hive_token(wrong, "alice", RENEWER)
    assert "nohive/localhost@" in str(bad_principal.value) and "principal" in (bad_principal.value.fix or "")

    down = Metastore.parse("thrift://localhost:1", service.principal)
    with pytest.raises(ServerUnavailable) as unavailable:
        obtain_hive_token(down, "alice", RENEWER)
    assert "no metastore of thrift://localhost:1 answered get_delegation_token" in str(unavailable.value)
    # HA URIs: the first one down, the second answers.
    both = Metastore.parse(f"thrift://localhost:1,{metastore.uri}", service.principal)
    assert obtain_hive_token(both, "alice", RENEWER).kind == HIVE_DELEGATION_KIND
    for line in (str(refused.value), str(bad_principal.value), str(unavailable.value)):
        assert "\n" not in line


def test_without_a_ticket_the_login_fails_clearly(metastore: HiveMetastore, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-ccache'}")
    with pytest.raises(KerberosError) as err:
        obtain_hive_token(service_of(metastore), "alice", RENEWER)
    assert "kinit" in (err.value.fix or "")


def _accepted(zone: Zone, token_file: bytes) -> str | None:
    """None when the KMS and the NameNode accept the file's KMS and WebHDFS tokens alone, else why not."""
    creds = Credentials.from_bytes(token_file)
    (kms,) = [t for t in creds if t.kind == KMS_DELEGATION_KIND]
    (web,) = [t for t in creds if t.kind == WEBHDFS_DELEGATION_KIND]
    try:
        answers = [requests.get(f"{zone.kms.url}/v1/keys/names", params={"delegation": kms.encode_url()}, timeout=5),
                   requests.get(f"{zone.cluster.webhdfs_url}/webhdfs/v1{ZONE}",
                                params={"op": "GETFILESTATUS", "delegation": web.encode_url()}, timeout=5)]
    except requests.RequestException as exc:
        return type(exc).__name__
    bad = [f"{r.url.split('?')[0]}: HTTP {r.status_code} {r.reason[:200]}" for r in answers if r.status_code != 200]
    return "; ".join(bad) or None


def test_the_renew_service_keeps_a_job_of_all_three_kinds_alive_past_three_max_lifetimes(
        ez: Zone, metastore: HiveMetastore, testbed: Testbed, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A submission (no lifetimes told) writes HDFS, KMS and Hive tokens for a job on an encryption
    zone and the metastore; the renew service renews and re-issues all of them. The KMS and NameNode
    are asked every second with the Secret's current tokens alone; after three max lifetimes a
    token-only Spark SQL job uses the metastore and reads the zone with the Secret's file (projected
    as kubelet does, the refresher plugin following it while the service goes on), while the first
    file (the control) no longer gets the job anywhere."""
    principal = metastore.client_conf()["hive.metastore.kerberos.principal"]
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(ez.cluster.client_conf_dir()))
    job = SubmittedJob(testbed, "three-kinds", {"spark.secrets.hadoop.filesystems": ez.cluster.uri,
                                                "spark.secrets.hive.metastoreUris": metastore.uri,
                                                "spark.secrets.hive.principal": principal})
    current = job.current

    first = current()
    assert {t.kind for t in Credentials.from_bytes(first)} == {
        "HDFS_DELEGATION_TOKEN", WEBHDFS_DELEGATION_KIND, KMS_DELEGATION_KIND, HIVE_DELEGATION_KIND}
    first_file = Credentials.from_bytes(first).save(tmp_path / "first")
    put = ez.cluster.fs("-put", "-f", "-", f"{ZONE}/three.txt", token_file=first_file, input=b"all three kinds\n")
    assert put.returncode == 0, put.stderr.decode()[-2000:]

    seconds = 3 * LIFETIMES.max_lifetime_ms / 1000 + 5
    failures: list[tuple[float, str]] = []
    refused: list[tuple[float, str]] = []  # the control: the first file, asked the same way
    ok = [0]

    def check(read: Callable[[], bytes], into: list[tuple[float, str]], until: float, count: bool) -> None:
        began = time.monotonic()
        while time.monotonic() - began < until:
            try:
                why = _accepted(ez, read())
            except Exception as exc:  # noqa: BLE001 - a failed check, whatever the cause
                why = f"{type(exc).__name__}: {exc}"
            if why is None and count:
                ok[0] += 1
            elif why is not None:
                into.append((round(time.monotonic() - began, 1), why))
            time.sleep(1)

    service = RenewerProcess(testbed, ez.cluster, tmp_path / "renewer",
                             extra=("--hive-metastore-uris", metastore.uri, "--hive-principal", principal))
    checker = threading.Thread(target=check, args=(current, failures, seconds, True), daemon=True)
    # Until one max lifetime has passed: the first tokens, renewed by the service only while current.
    control_checker = threading.Thread(target=check, args=(lambda: first, refused,
                                                           LIFETIMES.max_lifetime_ms / 1000 + 10, False), daemon=True)
    read_env = {"READ_ALSO": f"{ez.cluster.uri}{ZONE}/three.txt", "HADOOP_CONF_DIR": str(ez.cluster.client_conf_dir())}
    volume, projecting = SecretVolume(tmp_path / "volume"), threading.Event()

    def project() -> None:
        """kubelet's part: the mounted file follows the Secret (every 2 s) while the job runs."""
        while not projecting.wait(2):
            if (now := current()) != volume.path(KEY).read_bytes():
                volume.update({KEY: now})

    projector = threading.Thread(target=project, daemon=True)
    try:
        checker.start()
        control_checker.start()
        checker.join()
        control_checker.join()
        final_file = Credentials.from_bytes(current()).save(tmp_path / "final")
        # The SQL job starts now from the Secret's tokens and runs as a job's driver does: the service
        # renews and re-issues, the file follows the Secret, the plugin re-reads it.
        volume.update({KEY: current()})
        projector.start()
        sql = sql_job(testbed, metastore, volume.path(KEY), "three_kinds", tmp_path,
                      PLUGIN_JAR=str(jar_path()), **read_env)
        log = service.log.read_text()
        metrics = service.metrics()
    finally:
        projecting.set()
        service.stop()
        job.delete()
    control = sql_job(testbed, metastore, first_file, "three_kinds_control", tmp_path, **read_env)

    assert failures == [], f"{len(failures)} failed checks, first {failures[:3]}\n{log[-3000:]}"
    assert ok[0] >= seconds - 10
    # The checker can see a refused token: the KMS and the NameNode refused the first ones by their max date.
    assert any(ez.kms.url in why for _, why in refused) and any("webhdfs" in why for _, why in refused), refused
    assert "re-issued alice/" in log
    for kind in ("hdfs", "kms", "hive"):
        for op in ("renew", "obtain"):
            assert metrics.get(f'token_operations_total{{kind="{kind}",operation="{op}"}}', 0) >= 2, (kind, op, metrics)
    assert sql.returncode == 0, java_failure(sql.stderr)
    assert "HIVE count=3 sum=6" in sql.stdout and "READ 'all three kinds\\n'" in sql.stdout, sql.stdout
    assert control.returncode != 0 and "HIVE count" not in control.stdout  # the first tokens are long dead
    # No token's password, in any encoding, in the renew service's log.
    for token in [*Credentials.load(first_file), *Credentials.load(final_file)]:
        for form in (token.encode_url(), token.password.hex(), base64.b64encode(token.password).decode(),
                     base64.urlsafe_b64encode(token.password).decode().rstrip("=")):
            assert form not in log, token.kind
