"""Delegation tokens end to end on the real test bed: codec cross-checks with Hadoop's own JVM code,
WebHDFS get/renew/cancel with SPNEGO, proxy users, ticket-cache errors, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from spark_secrets.hadoop.credentials import PROTOBUF, WRITABLE, Credentials
from spark_secrets.errors import (HdfsPermissionError, InvalidTokenError, KerberosError, NameNodeUnavailable)
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.identifier import HDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.webhdfs import WebHdfsClient

pytestmark = pytest.mark.testbed

TOOL = "TokenFileTool"


def _renewer_auth(testbed: Testbed, name: str = "renewer") -> SpnegoAuth:
    login = keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                         testbed.dir / f"krb5cc_{name}")
    return SpnegoAuth(login.credentials)


def _alice_tokens(testbed: Testbed) -> Credentials:
    assert testbed.hdfs is not None
    return obtain_tokens([testbed.hdfs.webhdfs_url], renewer=RENEWER, auth=SpnegoAuth())


def _jvm(testbed: Testbed, jvm_tools: Path, *args: str, input: bytes | None = None) -> list[dict[str, object]]:
    assert testbed.hdfs is not None
    proc = testbed.hdfs.run_client(TOOL, *args, input=input, extra_classpath=[jvm_tools])
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line.startswith("{")]


def _cli(testbed: Testbed, *args: str, ccache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = testbed.env("alice", ccache)
    return subprocess.run([sys.executable, "-m", "spark_secrets", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _secret_forms(creds: Credentials) -> list[bytes]:
    """Every form in which a token's secret could leak: raw password, its hex, the URL string."""
    out: list[bytes] = []
    for token in creds:
        out += [token.password, token.password.hex().encode(), token.encode_url().encode()]
    return out


# -- codec against the JVM --------------------------------------------------------------------------
@pytest.mark.parametrize("version", [WRITABLE, PROTOBUF])
def test_file_written_here_is_read_by_hadoop(testbed: Testbed, alice_ccache: Path, jvm_tools: Path,
                                             tmp_path: Path, version: int) -> None:
    creds = _alice_tokens(testbed)
    creds.add(Token(identifier=b"\x07opaque\xff", password=b"pw", kind="SOME_OTHER_KIND", service="svc:1"), "other")
    creds.secret_keys["spark.secret"] = b"\x00\x01secret"
    path = creds.save(tmp_path / "py.tokens", version=version)
    assert path.read_bytes()[:5] == b"HDTS" + bytes([version])

    rows = _jvm(testbed, jvm_tools, "read", str(path))
    tokens = {r["alias"]: r for r in rows if r["type"] == "token"}
    assert set(tokens) == set(creds.tokens)
    for alias, token in creds.tokens.items():
        row = tokens[alias]
        assert (row["kind"], row["service"]) == (token.kind, token.service)
        assert bytes.fromhex(str(row["identifier"])) == token.identifier
        assert bytes.fromhex(str(row["password"])) == token.password
        assert row["url"] == token.encode_url()
        ident = token.decode_identifier()
        if ident is None:
            assert "owner" not in row
        else:
            assert (row["owner"], row["renewer"], row["real_user"]) == (ident.owner, ident.renewer, ident.real_user)
            assert (row["issue_date"], row["max_date"]) == (ident.issue_date, ident.max_date)
            assert (row["sequence_number"], row["master_key_id"]) == (ident.sequence_number, ident.master_key_id)
    secrets = {r["alias"]: bytes.fromhex(str(r["value"])) for r in rows if r["type"] == "secret"}
    assert secrets == creds.secret_keys


@pytest.mark.parametrize("fmt,version", [("WRITABLE", WRITABLE), ("PROTOBUF", PROTOBUF)])
def test_file_written_by_hadoop_is_read_here(testbed: Testbed, alice_ccache: Path, jvm_tools: Path,
                                             tmp_path: Path, fmt: str, version: int) -> None:
    creds = _alice_tokens(testbed)
    lines = ["\t".join(("token", alias, t.kind, t.service, t.identifier.hex(), t.password.hex()))
             for alias, t in creds.tokens.items()]
    stdin = "\n".join([*lines, "secret\tk1\t00ff"]) + "\n"
    path = tmp_path / f"jvm-{fmt}.tokens"
    _jvm(testbed, jvm_tools, "write", str(path), fmt, input=stdin.encode())
    data = path.read_bytes()
    assert data[:5] == b"HDTS" + bytes([version])
    read = Credentials.from_bytes(data)
    assert read.tokens == creds.tokens
    assert read.secret_keys == {"k1": b"\x00\xff"}
    # Re-encoding gives the JVM's bytes back (same alias order as the file).
    assert Credentials(dict(read.tokens), dict(read.secret_keys)).to_bytes(version) == data


def test_webhdfs_kind_with_space_round_trips_through_hadoop(testbed: Testbed, alice_ccache: Path,
                                                            jvm_tools: Path, tmp_path: Path) -> None:
    creds = _alice_tokens(testbed)
    web = [t for t in creds if t.kind == WEBHDFS_DELEGATION_KIND]
    assert web, "obtain_tokens stores a WebHDFS token too"
    path = Credentials({"w": web[0]}).save(tmp_path / "web.tokens")
    rows = _jvm(testbed, jvm_tools, "read", str(path))
    assert rows[0]["kind"] == WEBHDFS_DELEGATION_KIND
    assert rows[0]["owner"] == "alice"


# -- WebHDFS token operations -----------------------------------------------------------------------
def test_token_identifies_alice_and_the_renewer(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    creds = _alice_tokens(testbed)
    rpc = creds.tokens[testbed.hdfs.rpc_token_service]
    assert rpc.kind == HDFS_DELEGATION_KIND
    ident = rpc.decode_identifier()
    assert ident is not None
    assert (ident.owner, ident.renewer, ident.real_user) == ("alice", RENEWER, "")
    assert abs(ident.issue_date / 1000 - time.time()) < 60
    assert ident.max_date - ident.issue_date == testbed.hdfs.lifetimes.max_lifetime_ms


def test_renew_extends_expiry_as_the_namenode_reports(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    token = _alice_tokens(testbed).tokens[testbed.hdfs.rpc_token_service]
    client = WebHdfsClient(testbed.hdfs.webhdfs_url, _renewer_auth(testbed))
    first = client.renew_delegation_token(token)
    time.sleep(1.2)
    second = client.renew_delegation_token(token)
    now_ms = time.time() * 1000
    assert second > first
    assert abs(second - (now_ms + testbed.hdfs.lifetimes.renew_interval_ms)) < 10_000
    ident = token.decode_identifier()
    assert ident is not None and second <= ident.max_date


def test_renew_by_someone_else_than_the_renewer_fails_clearly(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    token = _alice_tokens(testbed).tokens[testbed.hdfs.rpc_token_service]
    with pytest.raises(HdfsPermissionError) as caught:
        WebHdfsClient(testbed.hdfs.webhdfs_url, SpnegoAuth()).renew_delegation_token(token)
    text = str(caught.value)
    assert "renew" in text.lower() and "alice" in text
    assert "\n" not in text
    assert token.encode_url() not in text


def test_proxy_user_fetch_gives_a_token_owned_by_alice(testbed: Testbed, tmp_path: Path) -> None:
    assert testbed.hdfs is not None
    creds = obtain_tokens([testbed.hdfs.webhdfs_url], renewer=RENEWER, auth=_renewer_auth(testbed), doas="alice")
    ident = creds.tokens[testbed.hdfs.rpc_token_service].decode_identifier()
    assert ident is not None
    assert ident.owner == "alice"
    assert ident.renewer == RENEWER
    # The token acts as alice: a JVM holding only it writes into alice's home directory.
    path = creds.save(tmp_path / "proxy.tokens")
    put = testbed.hdfs.fs("-put", "-f", "-", "/user/alice/by-proxy.txt", ccache=tmp_path / "none", token_file=path,
                          input=b"written with a proxy-user token\n")
    assert put.returncode == 0, put.stderr.decode()[-800:]
    ls = testbed.hdfs.fs("-ls", "/user/alice/by-proxy.txt", ccache=tmp_path / "none", token_file=path)
    assert b" alice " in ls.stdout


def test_proxy_fetch_by_a_user_without_proxy_rights_is_refused(testbed: Testbed, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert testbed.hdfs is not None
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('bob')}")
    with pytest.raises(HdfsPermissionError) as caught:
        obtain_tokens([testbed.hdfs.webhdfs_url], renewer=RENEWER, auth=SpnegoAuth(), doas="alice")
    assert "impersonate" in str(caught.value).lower()


def test_cancelled_token_no_longer_renews(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    token = _alice_tokens(testbed).tokens[testbed.hdfs.rpc_token_service]
    WebHdfsClient(testbed.hdfs.webhdfs_url, SpnegoAuth()).cancel_delegation_token(token)
    with pytest.raises(InvalidTokenError):
        WebHdfsClient(testbed.hdfs.webhdfs_url, _renewer_auth(testbed)).renew_delegation_token(token)


def test_unreachable_namenode(alice_ccache: Path) -> None:
    from spark_secrets.testbed.daemon import free_port

    with pytest.raises(NameNodeUnavailable, match="cannot connect"):
        obtain_tokens([f"http://localhost:{free_port()}"], renewer=RENEWER, auth=SpnegoAuth())


# -- SPNEGO ----------------------------------------------------------------------------------------
def test_namenode_sends_a_mutual_token_only_when_spnego_authenticated(testbed: Testbed, alice_ccache: Path) -> None:
    """Why SpnegoAuth verifies the server's token when there is one, and accepts answers without:
    the NameNode's second answer in a session is authenticated by its ``hadoop.auth`` cookie."""
    assert testbed.hdfs is not None
    url = f"{testbed.hdfs.webhdfs_url}/webhdfs/v1/?op=GETHOMEDIRECTORY"
    session = requests.Session()
    first = session.get(url, auth=SpnegoAuth(), timeout=30)
    assert first.status_code == 200 and first.headers.get("WWW-Authenticate", "").startswith("Negotiate ")
    assert "hadoop.auth" in session.cookies
    second = session.get(url, auth=SpnegoAuth(), timeout=30)
    assert second.status_code == 200 and "WWW-Authenticate" not in second.headers


def test_spnego_failures_are_one_line_errors(testbed: Testbed, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert testbed.hdfs is not None
    url = testbed.hdfs.webhdfs_url
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'none'}")
    with pytest.raises(KerberosError, match=r"^no Kerberos ticket found: run kinit"):
        obtain_tokens([url], renewer=RENEWER, auth=SpnegoAuth())
    short = testbed.ticket_cache("alice", lifetime="2s", renewable=None)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{short}")
    time.sleep(3)
    with pytest.raises(KerberosError, match=r"^the Kerberos ticket has expired: run kinit"):
        obtain_tokens([url], renewer=RENEWER, auth=SpnegoAuth())
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    with pytest.raises(KerberosError, match=r"^the KDC has no principal HTTP/nn-unknown: use the NameNode's fully"):
        obtain_tokens([f"http://nn-unknown:{testbed.hdfs.ports.http}"], renewer=RENEWER, auth=SpnegoAuth())


# -- ticket cache --------------------------------------------------------------------------------
def test_ticket_cache_inspection(testbed: Testbed, alice_ccache: Path) -> None:
    cache = current_ticket_cache()
    assert cache.principal == f"alice@{testbed.kdc_required().realm}"
    assert cache.short_name == "alice"
    assert dt.timedelta(hours=1) < cache.remaining <= dt.timedelta(days=1, minutes=1)


def test_no_ticket_cache_says_run_kinit(testbed: Testbed, tmp_path: Path) -> None:
    with pytest.raises(KerberosError, match="kinit"):
        current_ticket_cache(f"FILE:{tmp_path / 'none'}")


def test_expired_ticket_is_named(testbed: Testbed) -> None:
    ccache = testbed.ticket_cache("alice", lifetime="2s", renewable=None)
    time.sleep(3)
    with pytest.raises(KerberosError, match="expired.*kinit"):
        current_ticket_cache(f"FILE:{ccache}")


def test_ticket_shorter_than_the_job_needs(testbed: Testbed) -> None:
    ccache = testbed.ticket_cache("alice", lifetime="10m")
    with pytest.raises(KerberosError, match="expires in .* before the 2 h 0 min needed"):
        current_ticket_cache(f"FILE:{ccache}", min_lifetime=dt.timedelta(hours=2))


def test_wrong_realm_is_named(testbed: Testbed, alice_ccache: Path) -> None:
    with pytest.raises(KerberosError, match="not for realm EXAMPLE.COM"):
        current_ticket_cache(realm="EXAMPLE.COM")


def test_keytab_login_into_a_private_cache(testbed: Testbed, tmp_path: Path) -> None:
    principal = testbed.kdc_required().principal(RENEWER_PRINCIPAL)
    cache = keytab_login(principal, testbed.renewer_keytab, tmp_path / "private")
    assert cache.principal == principal
    assert (tmp_path / "private").exists()
    with pytest.raises(KerberosError, match="keytab .* does not exist"):
        keytab_login(principal, tmp_path / "missing.keytab", tmp_path / "private2")


# -- CLI, and no secret bytes anywhere -------------------------------------------------------------
def test_cli_fetch_jvm_reads_and_writes_then_cancel_stops_it(testbed: Testbed, tmp_path: Path) -> None:
    assert testbed.hdfs is not None
    ccache = testbed.ticket_cache("alice")
    out = tmp_path / "job.tokens"
    outputs: list[str] = []

    fetch = _cli(testbed, "tokens", "fetch", "--namenode", testbed.hdfs.webhdfs_url, "--renewer", RENEWER, str(out),
                 ccache=ccache)
    outputs += [fetch.stdout, fetch.stderr]
    assert fetch.returncode == 0, fetch.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    creds = Credentials.load(out)

    show = _cli(testbed, "tokens", "show", str(out), "--json")
    outputs += [show.stdout, show.stderr]
    shown = json.loads(show.stdout)
    rpc = next(t for t in shown["tokens"] if t["kind"] == HDFS_DELEGATION_KIND)
    assert (rpc["owner"], rpc["renewer"], rpc["service"]) == ("alice", RENEWER, testbed.hdfs.rpc_token_service)
    human = _cli(testbed, "tokens", "show", str(out))
    outputs += [human.stdout, human.stderr]
    assert "alice" in human.stdout and "UTC" in human.stdout

    # A JVM with only the token file (no ticket cache) writes and reads hdfs://.
    no_ticket = tmp_path / "no-ticket"
    payload = b"written by a JVM holding only alice's delegation token\n"
    put = testbed.hdfs.fs("-put", "-f", "-", "/user/alice/cli.txt", ccache=no_ticket, token_file=out, input=payload)
    assert put.returncode == 0, put.stderr.decode()[-800:]
    cat = testbed.hdfs.fs("-cat", "/user/alice/cli.txt", ccache=no_ticket, token_file=out)
    assert cat.stdout == payload
    without = testbed.hdfs.fs("-cat", "/user/alice/cli.txt", ccache=no_ticket)
    assert without.returncode != 0

    renew = _cli(testbed, "tokens", "renew", str(out), "--keytab", str(testbed.renewer_keytab), "--principal",
                 testbed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache", str(tmp_path / "renewer-cc"))
    outputs += [renew.stdout, renew.stderr]
    assert renew.returncode == 0, renew.stderr
    assert "expires" in renew.stdout

    wrong = _cli(testbed, "tokens", "renew", str(out), ccache=ccache)
    outputs += [wrong.stdout, wrong.stderr]
    assert wrong.returncode == 2
    assert len(wrong.stderr.strip().splitlines()) == 1 and "Traceback" not in wrong.stderr

    cancel = _cli(testbed, "tokens", "cancel", str(out), ccache=ccache)
    outputs += [cancel.stdout, cancel.stderr]
    assert cancel.returncode == 0, cancel.stderr
    after = testbed.hdfs.fs("-cat", "/user/alice/cli.txt", ccache=no_ticket, token_file=out)
    assert after.returncode != 0
    assert b"token" in after.stderr.lower()

    again = _cli(testbed, "tokens", "renew", str(out), "--keytab", str(testbed.renewer_keytab), "--principal",
                 testbed.kdc_required().principal(RENEWER_PRINCIPAL), "--ccache", str(tmp_path / "renewer-cc"))
    outputs += [again.stdout, again.stderr]
    assert again.returncode == 2 and "Traceback" not in again.stderr

    blob = "\n".join(outputs).encode()
    for form in _secret_forms(creds):
        assert form not in blob


def test_no_token_secret_in_logs_or_errors(testbed: Testbed, alice_ccache: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    assert testbed.hdfs is not None
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    creds = _alice_tokens(testbed)
    token = creds.tokens[testbed.hdfs.rpc_token_service]
    renewer = WebHdfsClient(testbed.hdfs.webhdfs_url, _renewer_auth(testbed))
    renewer.renew_delegation_token(token)
    for attempt in (lambda: WebHdfsClient(testbed.hdfs.webhdfs_url, SpnegoAuth()).renew_delegation_token(token),
                    lambda: renewer.cancel_delegation_token(token),
                    lambda: renewer.renew_delegation_token(token)):
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - every error text is searched below
            texts += [str(exc), repr(exc)]
    assert len(texts) == 4, "the wrong renewer and the renew after cancel must both fail"
    texts += [repr(token), repr(creds), repr(renewer)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    assert any("webhdfs" in record.getMessage().lower() or "http" in record.getMessage().lower()
               for record in caplog.records), "urllib3 debug logging was captured"
    blob = "\n".join(texts).encode()
    for form in _secret_forms(creds):
        assert form not in blob
