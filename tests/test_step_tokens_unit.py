"""The delegation-token step: who the renewer is, and ticket problems stopped before any NameNode is asked."""

from __future__ import annotations

import pytest

from spark_secrets.errors import KerberosError
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.tokens import DelegationTokenStep

from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.secrets.tokensecret import parse_rfc3339
from submit_steps.builder import StepBuilder
from submit_steps.secret import TokenSecretStep
from steps_support import BASE, NN, Ticket, builder, creds


def test_renewer_defaults_to_the_user() -> None:
    fetched: list[tuple[object, ...]] = []
    conf = {k: v for k, v in BASE.items() if k != "spark.secrets.renewer"}
    builder(conf, fetched).run()
    assert fetched == [((NN,), "alice")]


def test_ticket_errors_stop_before_fetching() -> None:
    settings = Settings(dict(BASE))
    fetched: list[object] = []

    def no_ticket():  # type: ignore[no-untyped-def]
        raise KerberosError("no Kerberos ticket found", "run kinit")

    step = DelegationTokenStep(settings, ticket=no_ticket, fetch=lambda *a: fetched.append(a))  # type: ignore[arg-type,return-value]
    with pytest.raises(KerberosError, match="kinit"):
        step.apply(SubmissionSpec(conf=settings.conf))
    assert fetched == []


def test_the_hadoop_configuration_is_read_once_per_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token step (which resolves filesystems) and the Secret step (which estimates the expiry)
    share one read of HADOOP_CONF_DIR."""
    import spark_secrets.tokens.hdfs

    loads: list[HadoopConf] = []

    def load(conf_dir: object = None) -> HadoopConf:
        loads.append(HadoopConf({"dfs.namenode.delegation.token.renew-interval": "20000"}, "/etc/hadoop/conf"))
        return loads[-1]

    def obtain(filesystems, renewer, auth, *, conf, verify, kms_problems, **_):  # type: ignore[no-untyped-def]
        assert conf is loads[0]
        return creds()

    monkeypatch.setattr(HadoopConf, "load", staticmethod(load))
    monkeypatch.setattr(spark_secrets.tokens.hdfs, "obtain_tokens", obtain)
    settings = Settings(dict(BASE))
    spec = StepBuilder(BASE, [DelegationTokenStep(settings, ticket=Ticket), TokenSecretStep(settings)]).run()
    assert len(loads) == 1
    (plan,) = spec.secrets
    assert parse_rfc3339(plan.annotations["spark-secrets.io/expiry"]) == 1_795_000_000_000 + 20_000
