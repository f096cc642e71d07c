"""The step pipeline: the default steps in order, user steps after them, nothing done when disabled or given no filesystems."""

from __future__ import annotations

from spark_secrets.hadoop.credentials import Credentials
from submit_steps.builder import StepBuilder, load_step
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep

from steps_support import BASE, NN, builder, creds


def test_default_flow_adds_only_references() -> None:
    fetched: list[tuple[object, ...]] = []
    spec = builder(dict(BASE), fetched).run()
    assert fetched == [((NN,), "spark-renewer")]
    (plan,) = spec.secrets
    assert plan.name.startswith("nightly-etl-") and plan.name.endswith("-hadoop-tokens")
    assert plan.namespace == "alice"
    assert plan.labels["spark-secrets.io/owner"] == "alice"
    assert plan.annotations["spark-secrets.io/principal"] == "alice@EXAMPLE.COM"
    assert plan.annotations["spark-secrets.io/filesystems"] == NN
    # expiry estimate = issue + 1 d renew interval; max date from the identifier
    assert plan.annotations["spark-secrets.io/expiry"] == "2026-11-19T11:06:40Z"
    assert plan.annotations["spark-secrets.io/max-date"] == "2026-11-25T11:06:40Z"
    assert spec.added_conf["spark.kubernetes.kerberos.tokenSecret.name"] == plan.name
    assert spec.added_conf[f"spark.kubernetes.executor.secrets.{plan.name}"] == "/mnt/secrets/hadoop-credentials"
    flat = " ".join(spec.conf_flags()) + repr(spec) + repr(plan)
    assert "pppp" not in flat and (b"p" * 20).hex() not in flat
    assert Credentials.from_bytes(plan.data["hadoop-tokens"]) == creds()


def test_without_namenodes_nothing_happens() -> None:
    conf = {k: v for k, v in BASE.items() if k != "spark.secrets.hadoop.filesystems"}
    spec = StepBuilder(conf).run()
    assert spec.secrets == () and dict(spec.added_conf) == {}
    assert "no delegation tokens" in spec.notes[0]


def test_disabled() -> None:
    spec = StepBuilder({**BASE, "spark.secrets.enabled": "false"}).run()
    assert spec.secrets == () and spec.notes == ("spark.secrets.enabled=false: nothing done",)


class AddLabelStep(SubmitStep):
    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        return spec.add_conf({"spark.kubernetes.driver.label.team": "data"})


def test_user_steps_run_after_the_defaults() -> None:
    assert load_step(f"{__name__}.AddLabelStep") is AddLabelStep
    builder = StepBuilder({**BASE, "spark.secrets.steps": f"{__name__}.AddLabelStep"})
    assert [type(s).__name__ for s in builder.steps][-1] == "AddLabelStep"
