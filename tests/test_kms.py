"""KMS tokens for HDFS encryption zones, on a real Hadoop KMS and a secure HDFS that uses it (issue 16).

The cluster's NameNode names the KMS (``hadoop.security.key.provider.path`` in its own configuration);
the clients' configuration does not, as on most real clusters, so the KMS is learnt from the NameNode.
The KMS grants tokens for 20 s after each renewal and 40 s at most; nobody tells the client.
The renew service keeping a zone job's KMS tokens alive past three max lifetimes is shown with the
other kinds at once, in ``test_metastore.py``'s three-kinds test.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, ServerUnavailable, SparkSecretsError
from spark_secrets.tokens.fetcher import cancel_token, obtain_tokens, renew_token
from spark_secrets.hadoop.identifier import KMS_DELEGATION_KIND
from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
from spark_secrets.tokens.kms import KeyProvider, obtain_kms_token
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.hadoop.token import Token

from conftest import EZ_LIFETIMES as LIFETIMES
from conftest import ZONE, Zone

pytestmark = pytest.mark.testbed

SECRET_TEXT = b"rows only alice may read\n"


def renewer_auth(testbed: Testbed, tmp_path: Path) -> SpnegoAuth:
    login = keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                         tmp_path / "renewer-cc")
    return SpnegoAuth(login.credentials)


def kms_token(creds: Credentials) -> Token:
    (token,) = [t for t in creds if t.kind == KMS_DELEGATION_KIND]
    return token


def test_the_kms_token_comes_with_the_filesystem_named_as_hadoop_names_it(ez: Zone, alice_ccache: Path) -> None:
    creds = ez.obtain(SpnegoAuth())
    token = kms_token(creds)
    assert token.service == ez.kms.provider_uri  # learnt from the NameNode, not the client's configuration
    assert creds.tokens[f"127.0.0.1:{ez.kms.port}"] is token  # the alias Hadoop gives it
    assert creds.secret_keys == {f"dfs-kms-{ez.cluster.uri}": ez.kms.provider_uri.encode()}
    ident = token.decode_identifier()
    assert ident is not None and (ident.owner, ident.renewer) == ("alice", RENEWER)
    assert ident.max_date - ident.issue_date == LIFETIMES.max_lifetime_ms  # the KMS's, not the NameNode's
    assert {t.kind for t in creds} == {"HDFS_DELEGATION_TOKEN", "WEBHDFS delegation", KMS_DELEGATION_KIND}


def test_a_token_only_jvm_writes_and_reads_in_the_zone_and_fails_without_the_kms_token(
        ez: Zone, alice_ccache: Path, tmp_path: Path) -> None:
    creds = ez.obtain(SpnegoAuth())
    token_file = creds.save(tmp_path / "tokens")
    put = ez.cluster.fs("-put", "-", f"{ZONE}/data.txt", token_file=token_file, input=SECRET_TEXT)  # no ticket cache
    assert put.returncode == 0, put.stderr.decode()[-2000:]
    cat = ez.cluster.fs("-cat", f"{ZONE}/data.txt", token_file=token_file)
    assert cat.returncode == 0 and cat.stdout == SECRET_TEXT, cat.stderr.decode()[-2000:]
    # It really is encrypted: the raw bytes (superuser, /.reserved/raw) are not the text.
    raw = ez.cluster.fs("-cat", f"/.reserved/raw{ZONE}/data.txt", ccache=ez.cluster.admin_ccache())
    assert raw.returncode == 0 and len(raw.stdout) == len(SECRET_TEXT) and raw.stdout != SECRET_TEXT

    # The same file without the KMS token: the HDFS token still opens the file, the KMS refuses the key.
    hdfs_only = Credentials({a: t for a, t in creds.tokens.items() if t.kind != KMS_DELEGATION_KIND},
                            dict(creds.secret_keys))
    failed = ez.cluster.fs("-cat", f"{ZONE}/data.txt", token_file=hdfs_only.save(tmp_path / "hdfs-only"))
    err = failed.stderr.decode()
    assert failed.returncode != 0 and failed.stdout == b""
    assert "AuthenticationException" in err and f"localhost:{ez.kms.port}/kms/v1/keyversion/k1" in err, err[-2000:]
    # ... while a file outside the zone still reads with it (the control).
    assert ez.cluster.fs("-ls", "/user/alice", token_file=tmp_path / "hdfs-only").returncode == 0


def test_renew_reissue_as_proxy_user_and_cancel_on_the_kms(ez: Zone, testbed: Testbed, alice_ccache: Path,
                                                           tmp_path: Path) -> None:
    token = kms_token(ez.obtain(SpnegoAuth()))
    service = renewer_auth(testbed, tmp_path)
    expiry = renew_token(token, service)
    assert abs(expiry - time.time() * 1000 - LIFETIMES.renew_interval_ms) < 3000

    fresh = kms_token(ez.obtain(service, doas="alice"))  # the renew service re-issues for alice
    ident = fresh.decode_identifier()
    assert ident is not None and (ident.owner, ident.real_user, ident.renewer) == ("alice", RENEWER, RENEWER)
    assert renew_token(fresh, service) > time.time() * 1000

    cancel_token(fresh, service)
    with pytest.raises(InvalidTokenError) as err:
        renew_token(fresh, service)
    assert "unknown token" in str(err.value) and f"KMS localhost:{ez.kms.port} refused" in str(err.value)

    with pytest.raises(HdfsPermissionError) as err2:  # alice is not the renewer
        renew_token(token, SpnegoAuth())
    assert "renewer" in str(err2.value)


def test_a_proxy_user_the_kms_does_not_allow_is_refused_clearly(ez: Zone, testbed: Testbed) -> None:
    bob = SpnegoAuth(current_ticket_cache(str(testbed.ticket_cache("bob"))).credentials)
    with pytest.raises(HdfsPermissionError) as err:
        obtain_kms_token(KeyProvider.parse(ez.kms.provider_uri), RENEWER, bob, doas="alice")
    assert "bob is not allowed to impersonate alice" in str(err.value)
    assert "hadoop.kms.proxyuser.<name>" in (err.value.fix or "")


def test_with_the_kms_down_the_hdfs_tokens_are_still_obtained_and_the_missing_one_named(
        ez: Zone, alice_ccache: Path) -> None:
    ez.kms.stop()
    try:
        problems: list[SparkSecretsError] = []
        creds = obtain_tokens([ez.cluster.uri], RENEWER, SpnegoAuth(), conf=ez.conf, kms_problems=problems)
        assert {t.kind for t in creds} == {"HDFS_DELEGATION_TOKEN", "WEBHDFS delegation"}
        (problem,) = problems
        assert isinstance(problem, ServerUnavailable)
        assert f"no KMS of {ez.kms.provider_uri} answered GETDELEGATIONTOKEN" in str(problem)
        with pytest.raises(ServerUnavailable):  # the renew service's re-issue: raise, and retry later
            obtain_tokens([ez.cluster.uri], RENEWER, SpnegoAuth(), conf=ez.conf)
    finally:
        ez.kms.start()
    assert kms_token(ez.obtain(SpnegoAuth()))  # back

