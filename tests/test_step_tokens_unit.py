"""The delegation-token step: who the renewer is, and ticket problems stopped before any NameNode is asked."""

from __future__ import annotations

import pytest

from spark_secrets.errors import KerberosError
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.tokens import DelegationTokenStep

from steps_support import BASE, NN, builder


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
