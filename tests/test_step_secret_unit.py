"""The token Secret step: names, labels, the size limit and the first expiry estimate."""

from __future__ import annotations

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.token import Token
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.secrets.tokensecret import parse_rfc3339
from submit_steps.secret import TokenSecretStep, estimated_renew_interval_ms, label_value, secret_name_for
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec

from steps_support import BASE, creds


def test_secret_too_large_is_refused() -> None:
    settings = Settings(dict(BASE))
    big = Credentials({f"svc{i}": Token(b"\x00" * 10, b"x" * 2000, "OTHER", f"svc{i}") for i in range(600)})
    with pytest.raises(ConfigError, match="too large for a Kubernetes Secret"):
        TokenSecretStep(settings).apply(SubmissionSpec(conf=settings.conf, credentials=big))


def test_names_and_labels() -> None:
    assert secret_name_for("My App_2", "abcd1234") == "my-app-2-abcd1234-hadoop-tokens"
    assert secret_name_for("!!!", "00000000") == "spark-00000000-hadoop-tokens"
    assert len(secret_name_for("x" * 400)) <= 253
    assert label_value("alice@EXAMPLE.COM") == "alice-EXAMPLE.COM"
    assert len(label_value("a" * 100)) == 63
    assert label_value("---") == "unknown"


@pytest.mark.parametrize(("hadoop", "setting", "expected_ms"), [
    ({}, None, 86_400_000),                                                       # neither: Hadoop's default
    ({}, "2h", 7_200_000),                                                        # the setting
    ({"dfs.namenode.delegation.token.renew-interval": "20000"}, None, 20_000),    # the cluster's own setting
    ({"dfs.namenode.delegation.token.renew-interval": "20000"}, "2h", 20_000),    # ... wins over ours
])
def test_the_first_expiry_is_an_estimate_from_the_hadoop_conf_or_the_setting(
        hadoop: dict[str, str], setting: str | None, expected_ms: int) -> None:
    conf = {**BASE, **({"spark.secrets.renewInterval": setting} if setting else {})}
    settings = Settings(conf)
    assert estimated_renew_interval_ms(settings, HadoopConf(hadoop)) == expected_ms
    spec = TokenSecretStep(settings, HadoopConf(hadoop)).apply(SubmissionSpec(conf=conf, credentials=creds()))
    (plan,) = spec.secrets
    issued = 1_795_000_000_000
    assert parse_rfc3339(plan.annotations["spark-secrets.io/expiry"]) == issued + expected_ms
    assert plan.annotations["spark-secrets.io/expiry-estimated"] == "true"


def test_a_malformed_renew_interval_in_the_hadoop_conf_is_one_clear_error() -> None:
    bad = HadoopConf({"dfs.namenode.delegation.token.renew-interval": "1d"}, "/etc/hadoop/conf")
    with pytest.raises(ConfigError, match="renew-interval='1d' in /etc/hadoop/conf is not a number of milliseconds"):
        estimated_renew_interval_ms(Settings(BASE), bad)


def test_the_secret_names_its_tokens_for_cancelling_without_their_passwords() -> None:
    password = b"P" * 20
    spec = TokenSecretStep(Settings(dict(BASE)), HadoopConf({})).apply(
        SubmissionSpec(conf=BASE, credentials=creds(password)))
    (plan,) = spec.secrets
    handles = plan.annotations["spark-secrets.io/tokens"].split()
    assert len(handles) == 1 and Token.decode_url(handles[0]).password == b""
    assert Token.decode_url(handles[0]).identifier == next(iter(creds(password))).identifier
    text = repr(plan) + str(plan.annotations) + str(plan.labels)
    assert password.decode() not in text and password.hex() not in text
    assert plan.data["hadoop-tokens"] == creds(password).to_bytes()  # control: the password is in the data only


def test_an_empty_hadoop_configuration_given_to_the_secret_step_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HadoopConf, "load", staticmethod(lambda conf_dir=None: pytest.fail("read HADOOP_CONF_DIR")))
    spec = TokenSecretStep(Settings(dict(BASE)), HadoopConf({})).apply(SubmissionSpec(conf=BASE, credentials=creds()))
    assert parse_rfc3339(spec.secrets[0].annotations["spark-secrets.io/expiry"]) == 1_795_000_000_000 + 86_400_000
