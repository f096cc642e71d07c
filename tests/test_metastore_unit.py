"""Hive metastore settings, URIs, refusals and the token step with a metastore, without one (injected)."""

from __future__ import annotations

import pytest

import spark_secrets.tokens.hive

from spark_secrets.errors import (
    ConfigError,
    HdfsError,
    HdfsPermissionError,
    InvalidTokenError,
    ServerUnavailable,
    TokenExpiredError,
)
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.tokens.metastore import SPARK_ALIAS, Metastore, refusal
from spark_secrets.login.sasl import GssapiSaslClient
from spark_secrets.hadoop.token import Token
from steps_support import BASE, Ticket, creds
from submit_steps.secret import TokenSecretStep
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.tokens import DelegationTokenStep

HIVE = {"spark.secrets.hive.metastoreUris": "thrift://ms1.example:9083,thrift://ms2.example",
        "spark.secrets.hive.principal": "hive/_HOST@EXAMPLE.COM"}


def hive_token() -> Token:
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "alice@EXAMPLE.COM", 1_795_000_000_000,
                                      1_795_604_800_000, 9, 2)
    return Token(ident.encode(), b"q" * 20, "HIVE_DELEGATION_TOKEN", "")


def test_uris_tried_in_order_with_the_default_port_and_host_principals() -> None:
    m = Metastore.parse(" thrift://ms1.example:9083 , thrift://MS2.example ", "hive/_HOST@EXAMPLE.COM")
    assert m.uris == ("thrift://ms1.example:9083", "thrift://ms2.example:9083")
    assert m.principal_for(m.uris[1]) == "hive/ms2.example@EXAMPLE.COM"
    assert m.signature == ""


@pytest.mark.parametrize("uris,principal,what", [
    ("http://ms:9083", "hive/_HOST@R", "not thrift://host:port"),
    ("thrift://ms:port", "hive/_HOST@R", "not thrift://host:port"),
    (" , ", "hive/_HOST@R", "no metastore URI"),
    ("thrift://ms:9083", None, "(unset)"),
    ("thrift://ms:9083", "hive", "not service/host@REALM"),
])
def test_bad_metastore_settings(uris: str, principal: str | None, what: str) -> None:
    with pytest.raises(ConfigError) as err:
        Metastore.parse(uris, principal)
    assert what in str(err.value) and err.value.fix


def test_settings_default_to_sparks_hadoop_conf_then_hive_site(monkeypatch: pytest.MonkeyPatch) -> None:
    site = HadoopConf({"hive.metastore.uris": "thrift://site:9083", "hive.metastore.kerberos.principal": "hive/_HOST@S",
                       "hive.metastore.token.signature": "hms"})
    monkeypatch.setattr(HadoopConf, "load", staticmethod(lambda conf_dir=None: site))
    from_site = Settings(dict(BASE)).hive_metastore
    assert from_site == Metastore(("thrift://site:9083",), "hive/_HOST@S", "hms")
    spark = Settings({**BASE, "spark.hadoop.hive.metastore.uris": "thrift://spark:9083"}).hive_metastore
    assert spark is not None and spark.uris == ("thrift://spark:9083",) and spark.principal == "hive/_HOST@S"
    ours = Settings({**BASE, **HIVE}).hive_metastore
    assert ours is not None and ours.uris[0] == "thrift://ms1.example:9083" and ours.principal == "hive/_HOST@EXAMPLE.COM"
    assert Settings({**BASE, "spark.secrets.hive.metastoreUris": "none"}).hive_metastore is None
    settings = Settings({**BASE, **HIVE})
    assert settings.wants_tokens


def test_a_bad_metastore_setting_fails_when_the_settings_are_made() -> None:
    with pytest.raises(ConfigError, match="spark.secrets.hive"):
        Settings({**BASE, "spark.secrets.hive.metastoreUris": "thrift://ms:9083"})  # no principal anywhere


def _step(conf: dict[str, str], hive: object, monkeypatch: pytest.MonkeyPatch) -> SubmissionSpec:
    settings = Settings(conf)

    def fetch_hive(metastore, owner, renewer, credentials):  # type: ignore[no-untyped-def]
        if isinstance(hive, Exception):
            raise hive
        assert (owner, renewer) == ("alice", "spark-renewer")
        return hive

    monkeypatch.setattr(spark_secrets.tokens.hive, "obtain_hive_token", fetch_hive)
    step = DelegationTokenStep(settings, ticket=Ticket, fetch=lambda *a: creds())  # type: ignore[arg-type]
    spec = step.apply(SubmissionSpec(conf=settings.conf))
    return TokenSecretStep(settings).apply(spec)


def test_the_hive_token_goes_in_beside_the_hdfs_token_and_the_metastore_is_a_target(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _step({**BASE, **HIVE}, hive_token(), monkeypatch)
    assert spec.credentials is not None and spec.credentials.tokens[SPARK_ALIAS] == hive_token()
    assert "from 1 filesystem(s) and the Hive metastore" in " ".join(spec.notes)
    (plan,) = spec.secrets
    assert plan.annotations["spark-secrets.io/filesystems"].endswith(",thrift://ms1.example:9083,thrift://ms2.example:9083")


def test_a_metastore_that_fails_is_named_and_the_hdfs_tokens_still_go_in(monkeypatch: pytest.MonkeyPatch) -> None:
    down = ServerUnavailable("no metastore of thrift://ms1.example:9083 answered get_delegation_token",
                             "check that a metastore is running")
    spec = _step({**BASE, **HIVE}, down, monkeypatch)
    assert spec.credentials is not None and SPARK_ALIAS not in spec.credentials.tokens and len(spec.credentials) == 1
    (warning,) = [n for n in spec.notes if n.startswith("warning:")]
    assert "no Hive metastore token" in warning and "thrift://ms1.example:9083" in warning
    assert len(spec.secrets) == 1  # still written


def test_only_a_metastore_is_enough_for_a_token_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = {k: v for k, v in {**BASE, **HIVE}.items() if k != "spark.secrets.hadoop.filesystems"}
    spec = _step(conf, hive_token(), monkeypatch)
    assert spec.credentials is not None and list(spec.credentials.tokens) == [SPARK_ALIAS]
    assert "from the Hive metastore" in " ".join(spec.notes)


@pytest.mark.parametrize("message,kind", [
    ("User: alice@R is not allowed to impersonate bob", HdfsPermissionError),
    ("token does not exist: HIVE_DELEGATION_TOKEN owner=alice, renewer=spark-renewer, ...", InvalidTokenError),
    ("alice tries to renew a token (HIVE_DELEGATION_TOKEN owner=alice, renewer=spark-renewer) with non-matching "
     "renewer spark-renewer", HdfsPermissionError),
    ("spark-renewer tried to renew an expired token (...) max expiration date: ...", TokenExpiredError),
    # Not genuine (forged bytes): the renew service must see these as refusals, never as outages.
    ("spark-renewer is trying to renew a token (HIVE_DELEGATION_TOKEN owner=bob, renewer=spark-renewer) with "
     "wrong password", InvalidTokenError),
    ("Unable to find master key for keyId=77 from cache. Failed to renew an unexpired token", InvalidTokenError),
    ("something else entirely", HdfsError),
])
def test_metaexceptions_become_typed_one_line_errors(message: str, kind: type) -> None:
    err = refusal("metastore ms:9083", "renew_delegation_token", message + "\n  second line")
    assert type(err) is kind and "\n" not in str(err) and "metastore ms:9083 refused renew_delegation_token" in str(err)


def test_the_sasl_client_offers_only_gssapi() -> None:
    client = GssapiSaslClient("hive/ms.example@EXAMPLE.COM")
    ok, mech, _ = client.start("DIGEST-MD5")
    assert not ok and "not GSSAPI" in client.getError()
    assert client.encode(b"frame") == (True, b"frame")  # no security layer: frames pass as they are
