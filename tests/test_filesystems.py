"""Token operations over HTTPS (SWebHDFS), against an HA nameservice with a standby NameNode first,
for several filesystems in one call, and the NameNode's own "expired" answer (short lifetimes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import HdfsError, NameNodeUnavailable, TokenExpiredError
from spark_secrets.tokens.fetcher import namenodes_for, obtain_tokens, renew_token
from spark_secrets.hadoop.conf import HadoopConf, resolve_filesystem
from spark_secrets.hadoop.identifier import HDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, RENEWER_PRINCIPAL, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs, write_client_conf

pytestmark = pytest.mark.testbed


def _kinds(creds: Credentials) -> dict[str, str]:
    return {token.service: token.kind for token in creds}


def _renewer_auth(testbed: Testbed) -> SpnegoAuth:
    login = keytab_login(testbed.kdc_required().principal(RENEWER_PRINCIPAL), testbed.renewer_keytab,
                         testbed.dir / "krb5cc_fs_renewer")
    return SpnegoAuth(login.credentials)


def _put_and_cat(cluster: SecureHdfs, path: str, token_file: Path) -> None:
    """A JVM with only the token file writes ``path`` and reads it back."""
    data = f"written to {path} with a delegation token\n".encode()
    put = cluster.fs("-put", "-", path, token_file=token_file, input=data)
    assert put.returncode == 0, put.stderr.decode()[-1500:]
    cat = cluster.fs("-cat", path, token_file=token_file)
    assert cat.returncode == 0 and cat.stdout == data, cat.stderr.decode()[-1500:]


def test_https_fetch_and_swebhdfs_read_with_the_token_only(testbed: Testbed, alice_ccache: Path,
                                                           tmp_path: Path) -> None:
    hdfs = testbed.hdfs
    assert hdfs is not None
    port = hdfs.ports.https
    creds = obtain_tokens([f"swebhdfs://localhost:{port}"], RENEWER, SpnegoAuth(), verify=str(hdfs.ca_cert))
    assert _kinds(creds) == {hdfs.rpc_token_service: HDFS_DELEGATION_KIND,
                             f"127.0.0.1:{port}": SWEBHDFS_DELEGATION_KIND}
    _put_and_cat(hdfs, f"swebhdfs://localhost:{port}/user/alice/https-{time.time_ns()}", creds.save(tmp_path / "t"))
    # The same fetch from the plain https:// address gives the same services.
    again = obtain_tokens([hdfs.https_url], RENEWER, SpnegoAuth(), verify=str(hdfs.ca_cert))
    assert _kinds(again) == _kinds(creds)


def test_https_with_an_untrusted_certificate_fails_clearly(testbed: Testbed, alice_ccache: Path) -> None:
    assert testbed.hdfs is not None
    with pytest.raises(HdfsError) as err:
        obtain_tokens([testbed.hdfs.https_url], RENEWER, SpnegoAuth(), verify=True)
    assert not isinstance(err.value, NameNodeUnavailable)
    assert "certificate is not trusted" in str(err.value) and "--ca-bundle" in str(err.value)
    assert "\n" not in str(err.value)


def test_ha_nameservice_skips_the_standby(testbed: Testbed, ha_hdfs: SecureHdfs, alice_ccache: Path,
                                          tmp_path: Path) -> None:
    assert (ha_hdfs.ha_state("nn1"), ha_hdfs.ha_state("nn2")) == ("standby", "active")
    conf = HadoopConf.load(ha_hdfs.client_conf_dir())
    target = resolve_filesystem("hdfs://ns1", conf)
    assert [nn.http_url for nn in target.namenodes] == ha_hdfs.webhdfs_urls  # standby nn1 is asked first
    creds = obtain_tokens(["hdfs://ns1"], RENEWER, SpnegoAuth(), conf=conf)
    assert _kinds(creds) == {"ha-hdfs:ns1": HDFS_DELEGATION_KIND, "ha-webhdfs:ns1": WEBHDFS_DELEGATION_KIND}
    _put_and_cat(ha_hdfs, f"hdfs://ns1/user/alice/ha-{time.time_ns()}", creds.save(tmp_path / "tokens"))
    # Renewal finds the NameNodes from the token's service and also skips the standby.
    ha_token = creds.tokens["ha-webhdfs:ns1"]
    assert namenodes_for(ha_token, conf) == resolve_filesystem("webhdfs://ns1", conf)
    expiry = renew_token(ha_token, _renewer_auth(testbed), conf=conf)
    assert expiry > time.time() * 1000


def test_all_namenodes_down_names_each(alice_ccache: Path) -> None:
    from spark_secrets.testbed.daemon import free_port
    conf = HadoopConf({"dfs.nameservices": "gone", "dfs.ha.namenodes.gone": "a,b",
                       "dfs.namenode.http-address.gone.a": f"localhost:{free_port()}",
                       "dfs.namenode.http-address.gone.b": f"localhost:{free_port()}"})
    with pytest.raises(NameNodeUnavailable) as err:
        obtain_tokens(["hdfs://gone"], RENEWER, SpnegoAuth(), conf=conf)
    assert "no NameNode of hdfs://gone" in str(err.value) and str(err.value).count("cannot connect") == 2


def test_several_filesystems_in_one_cli_call(testbed: Testbed, ha_hdfs: SecureHdfs, tmp_path: Path) -> None:
    """One HADOOP_CONF_DIR naming both clusters; one fetch; a token-only JVM uses both; renew skips the standby."""
    plain = testbed.hdfs
    assert plain is not None
    conf_dir = write_client_conf(tmp_path / "conf", plain, ha_hdfs)
    env = {**testbed.env("alice", testbed.ticket_cache("alice")), "HADOOP_CONF_DIR": str(conf_dir)}
    out = tmp_path / "both.tokens"
    fetch = subprocess.run([sys.executable, "-m", "spark_secrets", "tokens", "fetch", "--filesystem", plain.uri,
                            "--filesystem", "hdfs://ns1", "--renewer", RENEWER, str(out)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert fetch.returncode == 0, fetch.stderr
    services = {row["service"] for row in json.loads(subprocess.run(
        [sys.executable, "-m", "spark_secrets", "tokens", "show", "--json", str(out)], env=env,
        capture_output=True, text=True, timeout=60, check=True).stdout)["tokens"]}
    assert services == {plain.rpc_token_service, f"127.0.0.1:{plain.ports.http}", "ha-hdfs:ns1", "ha-webhdfs:ns1"}
    for cluster in (plain, ha_hdfs):
        path = f"{cluster.uri}/user/alice/both-{time.time_ns()}"
        put = cluster.fs("-put", "-", path, token_file=out, input=b"x", conf_dir=conf_dir)
        assert put.returncode == 0, put.stderr.decode()[-1500:]
    renew_env = {**env, "KRB5CCNAME": f"FILE:{tmp_path / 'no-cache'}"}
    renew = subprocess.run([sys.executable, "-m", "spark_secrets", "tokens", "renew", str(out), "--keytab",
                            str(testbed.renewer_keytab), "--principal", RENEWER_PRINCIPAL,
                            "--ccache", str(tmp_path / "renewer-cc")], env=renew_env, capture_output=True,
                           text=True, timeout=120)
    assert renew.returncode == 0, renew.stderr
    assert renew.stdout.count("renewed") == 2


def test_renewing_past_the_max_lifetime_is_an_expired_token(ha_hdfs: SecureHdfs, alice_ccache: Path) -> None:
    conf = HadoopConf.load(ha_hdfs.client_conf_dir())
    creds = obtain_tokens(["hdfs://ns1"], "alice", SpnegoAuth(), conf=conf)
    token = creds.tokens["ha-webhdfs:ns1"]
    max_date = token.decode_identifier().max_date
    assert renew_token(token, SpnegoAuth(), conf=conf) <= max_date
    time.sleep(max(0.0, max_date / 1000 - time.time()) + 1.5)
    with pytest.raises(TokenExpiredError) as err:
        renew_token(token, SpnegoAuth(), conf=conf)
    assert "expired" in str(err.value) and "obtain a new token" in str(err.value)
    assert token.password.hex() not in str(err.value)
