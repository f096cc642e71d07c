"""KMS key-provider URIs, token naming and error mapping, without a KMS (injected transports)."""

from __future__ import annotations

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import ConfigError, HdfsPermissionError, InvalidTokenError, ServerUnavailable
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.tokens.kms import KeyProvider, KmsClient, add_kms_token, configured_provider, renew_kms_token, secret_key_for
from spark_secrets.hadoop.token import Token
from spark_secrets.transport import Answer
from spark_secrets.tokens.webhdfs import remote_error


def test_one_instance() -> None:
    p = KeyProvider.parse("kms://http@kms.example:9600/kms")
    assert p.urls == ("http://kms.example:9600/kms",)
    assert p.service == "kms://http@kms.example:9600/kms"


def test_load_balanced_instances_share_the_port_and_one_service() -> None:
    p = KeyProvider.parse("kms://https@kms1;kms2;kms3:16000/kms")
    assert p.urls == ("https://kms1:16000/kms", "https://kms2:16000/kms", "https://kms3:16000/kms")
    assert p.service == "kms://https@kms1;kms2;kms3:16000/kms"  # one token for all of them


def test_a_fragment_is_dropped_from_the_service_and_no_port_means_the_schemes() -> None:
    p = KeyProvider.parse("kms://http@kms.example/kms#logical")
    assert p.service == "kms://http@kms.example/kms"
    assert p.urls == ("http://kms.example/kms",)


def test_the_alias_is_the_first_instances_ip_and_port() -> None:
    assert KeyProvider.parse("kms://http@localhost;otherhost:9600/kms").alias == "127.0.0.1:9600"


@pytest.mark.parametrize("uri", ["jceks://file@/tmp/keys.jceks", "kms://localhost:9600/kms",
                                 "kms://ftp@host:9600/kms", "kms://http@host:port/kms", "kms://http@:9600/kms"])
def test_not_a_kms_uri(uri: str) -> None:
    with pytest.raises(ConfigError) as err:
        KeyProvider.parse(uri)
    assert "kms://http@" in (err.value.fix or "")


def test_the_client_configuration_names_the_provider_in_either_key() -> None:
    assert configured_provider(HadoopConf({"dfs.encryption.key.provider.uri": "kms://http@h:1/kms"})) == "kms://http@h:1/kms"
    assert configured_provider(HadoopConf({"hadoop.security.key.provider.path": "kms://http@a:1/kms",
                                           "dfs.encryption.key.provider.uri": "kms://http@b:1/kms"})) == "kms://http@a:1/kms"
    assert configured_provider(HadoopConf({})) is None


def test_token_stored_as_hadoop_stores_it_with_the_filesystems_mapping() -> None:
    p = KeyProvider.parse("kms://http@localhost:9600/kms")
    token = Token(b"id", b"pw", "kms-dt", p.service)
    creds = Credentials()
    add_kms_token(creds, p, token, ["hdfs://ns1", "hdfs://nn.example:8020/"])
    assert creds.tokens == {"127.0.0.1:9600": token}
    assert creds.secret_keys == {"dfs-kms-hdfs://ns1": p.uri.encode(), "dfs-kms-hdfs://nn.example:8020": p.uri.encode()}
    assert secret_key_for("webhdfs://nn:9870/user") == "dfs-kms-webhdfs://nn:9870"


def test_the_client_speaks_under_the_instances_context_path() -> None:
    assert KmsClient("http://h:9600/kms").PATH == "/kms/v1/"
    assert KmsClient("http://h:9600/keys").PATH == "/keys/v1/"


def _response(status: int, reason: str, body: bytes = b"") -> Answer:
    return Answer(status, reason, {}, body)


def test_a_refusal_in_the_reason_phrase_is_read() -> None:
    """The KMS answers token operations it refuses with the Java exception as the HTTP reason."""
    unknown = _response(403, "org.apache.hadoop.security.token.SecretManager$InvalidToken: Renewal request for "
                             "unknown token (kms-dt owner=alice, renewer=spark-renewer)")
    err = remote_error(unknown, "RENEWDELEGATIONTOKEN", "kms:9600", "KMS")
    assert isinstance(err, InvalidTokenError) and "KMS kms:9600 refused" in str(err)
    wrong = _response(403, "org.apache.hadoop.security.AccessControlException: alice tries to renew a token "
                           "(kms-dt owner=alice, renewer=spark-renewer) with non-matching renewer spark-renewer")
    assert isinstance(remote_error(wrong, "RENEWDELEGATIONTOKEN", "kms:9600", "KMS"), HdfsPermissionError)
    plain = remote_error(_response(403, "Forbidden"), "RENEWDELEGATIONTOKEN", "kms:9600", "KMS")
    assert type(plain) is HdfsPermissionError and "HTTP 403" in str(plain)  # control: nothing to read
    # A token signed with a master key the server never had (forged bytes) is refused, not "expired",
    # although Hadoop's message says "unexpired"; a real expiry still is (the control).
    forged = _response(403, "org.apache.hadoop.security.token.SecretManager$InvalidToken: Unable to find master "
                            "key for keyId=9 from cache. Failed to renew an unexpired token (kms-dt owner=bob)")
    err = remote_error(forged, "RENEWDELEGATIONTOKEN", "kms:9600", "KMS")
    assert type(err) is InvalidTokenError, err
    expired = _response(403, "org.apache.hadoop.security.token.SecretManager$InvalidToken: spark-renewer tried to "
                             "renew an expired token (kms-dt owner=alice) max expiration date: ...")
    assert type(remote_error(expired, "RENEWDELEGATIONTOKEN", "kms:9600", "KMS")).__name__ == "TokenExpiredError"


class _Down:
    """A transport to which only the ``answering`` instances answer; the others refuse the connection."""

    def __init__(self, answering: set[str]) -> None:
        self.answering, self.asked = answering, []  # type: ignore[var-annotated]

    def send(self, method: str, url: str, headers: object, **kwargs: object) -> Answer:
        host = url.split("/")[2]
        self.asked.append(host)
        if host not in self.answering:
            raise ConnectionRefusedError(111, "refused")
        return _response(200, "OK", b'{"long": 1234}')


def test_renewal_fails_over_to_the_next_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    session = _Down({"kms2:9600"})
    monkeypatch.setattr("spark_secrets.tokens.webhdfs.SHARED", session)
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", 1, 2, 3, 4).encode()
    token = Token(ident, b"pw", "kms-dt", "kms://http@kms1;kms2:9600/kms")
    assert renew_kms_token(token, None) == 1234
    assert session.asked == ["kms1:9600", "kms2:9600"]
    session.answering = set()
    with pytest.raises(ServerUnavailable) as err:
        renew_kms_token(token, None)
    assert "no KMS of kms://http@kms1;kms2:9600/kms answered RENEWDELEGATIONTOKEN" in str(err.value)
