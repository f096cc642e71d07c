"""Unit tests of the submission steps with injected ticket and fetch functions (no test bed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spark_secrets.credentials import Credentials
from spark_secrets.errors import ConfigError, KerberosError
from spark_secrets.identifier import DelegationTokenIdentifier
from spark_secrets.token import Token
from submit_steps.builder import StepBuilder, load_step
from submit_steps.layout import LayoutStep, resolve
from submit_steps.plugin import RefresherPluginStep
from submit_steps.pods import PodWiringStep
from spark_secrets.hadoopconf import HadoopConf
from spark_secrets.labels import parse_rfc3339
from submit_steps.secret import TokenSecretStep, estimated_renew_interval_ms, label_value, secret_name_for
from submit_steps.settings import SPARK_CREDENTIALS_DIR, Settings, settings_table
from submit_steps.sparkconf import conf_from_submit_args, insert_conf_flags, read_properties
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep
from submit_steps.tokens import DelegationTokenStep

NN = "http://nn.example.com:9870"
BASE = {"spark.app.name": "Nightly ETL", "spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": NN,
        "spark.secrets.renewer": "spark-renewer"}


class _Ticket:
    principal = "alice@EXAMPLE.COM"
    short_name = "alice"
    credentials = None


def _creds(password: bytes = b"p" * 20) -> Credentials:
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", 1_795_000_000_000, 1_795_604_800_000, 3, 1)
    return Credentials({"10.0.0.1:8020": Token(ident.encode(), password, "HDFS_DELEGATION_TOKEN", "10.0.0.1:8020")})


def _builder(conf: dict[str, str], fetched: list[tuple[object, ...]] | None = None) -> StepBuilder:
    settings = Settings(conf)

    def fetch(namenodes, renewer, ticket, verify):  # type: ignore[no-untyped-def]
        if fetched is not None:
            fetched.append((tuple(namenodes), renewer))
        return _creds()

    steps = [DelegationTokenStep(settings, ticket=_Ticket, fetch=fetch), LayoutStep(settings), TokenSecretStep(settings),
             PodWiringStep(settings), RefresherPluginStep(settings, local_jar=lambda: Path("/site/plugin.jar"))]
    return StepBuilder(conf, steps)


def test_default_flow_adds_only_references() -> None:
    fetched: list[tuple[object, ...]] = []
    spec = _builder(dict(BASE), fetched).run()
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
    assert Credentials.from_bytes(plan.data["hadoop-tokens"]) == _creds()


def test_renewer_defaults_to_the_user() -> None:
    fetched: list[tuple[object, ...]] = []
    conf = {k: v for k, v in BASE.items() if k != "spark.secrets.renewer"}
    _builder(conf, fetched).run()
    assert fetched == [((NN,), "alice")]


def test_without_namenodes_nothing_happens() -> None:
    conf = {k: v for k, v in BASE.items() if k != "spark.secrets.hadoop.filesystems"}
    spec = StepBuilder(conf).run()
    assert spec.secrets == () and dict(spec.added_conf) == {}
    assert "no delegation tokens" in spec.notes[0]


def test_disabled() -> None:
    spec = StepBuilder({**BASE, "spark.secrets.enabled": "false"}).run()
    assert spec.secrets == () and spec.notes == ("spark.secrets.enabled=false: nothing done",)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("spark.secrets.hadoop.filesystems", "s3a://bucket", "not a filesystem Hadoop issues tokens for"),
    ("spark.secrets.hadoop.caBundle", "/no/such/ca.pem", "is not a file"),
    ("spark.secrets.ticket.minLifetime", "soon", "not a duration"),
    ("spark.secrets.tokenFile.format", "2", "use 0"),
    ("spark.secrets.plugin.jar", "hdfs://nn/plugin.jar", "not a path inside the images"),
    ("spark.secrets.refresh.ratio", "1.5", "fraction between 0 and 1"),
    ("spark.secrets.refresh.pollInterval", "often", "not a duration"),
    ("spark.secrets.secret.name", "Not_Valid", "not a valid Kubernetes name"),
    ("spark.secrets.enabled", "yes", "not a boolean"),
    ("spark.secrets.nope", "1", "unknown setting spark.secrets.nope"),
    ("spark.secrets.steps", "no.such.Step", "not an importable SubmitStep"),
])
def test_bad_settings_fail_up_front(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StepBuilder({**BASE, key: value})


def test_ticket_errors_stop_before_fetching() -> None:
    settings = Settings(dict(BASE))
    fetched: list[object] = []

    def no_ticket():  # type: ignore[no-untyped-def]
        raise KerberosError("no Kerberos ticket found", "run kinit")

    step = DelegationTokenStep(settings, ticket=no_ticket, fetch=lambda *a: fetched.append(a))  # type: ignore[arg-type,return-value]
    with pytest.raises(KerberosError, match="kinit"):
        step.apply(SubmissionSpec(conf=settings.conf))
    assert fetched == []


class AddLabelStep(SubmitStep):
    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        return spec.add_conf({"spark.kubernetes.driver.label.team": "data"})


def test_user_steps_run_after_the_defaults() -> None:
    assert load_step(f"{__name__}.AddLabelStep") is AddLabelStep
    builder = StepBuilder({**BASE, "spark.secrets.steps": f"{__name__}.AddLabelStep"})
    assert [type(s).__name__ for s in builder.steps][-1] == "AddLabelStep"


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


def test_settings_table_lists_every_setting() -> None:
    table = settings_table()
    assert "`spark.secrets.hadoop.filesystems`" in table and "`spark.secrets.renewer`" in table


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
    spec = TokenSecretStep(settings, HadoopConf(hadoop)).apply(SubmissionSpec(conf=conf, credentials=_creds()))
    (plan,) = spec.secrets
    issued = 1_795_000_000_000
    assert parse_rfc3339(plan.annotations["spark-secrets.io/expiry"]) == issued + expected_ms
    assert plan.annotations["spark-secrets.io/expiry-estimated"] == "true"


def test_a_malformed_renew_interval_in_the_hadoop_conf_is_one_clear_error() -> None:
    bad = HadoopConf({"dfs.namenode.delegation.token.renew-interval": "1d"}, "/etc/hadoop/conf")
    with pytest.raises(ConfigError, match="renew-interval='1d' in /etc/hadoop/conf is not a number of milliseconds"):
        estimated_renew_interval_ms(Settings(BASE), bad)


def test_durations() -> None:
    s = Settings({"spark.secrets.ticket.minLifetime": "90min", "spark.secrets.renewInterval": "2h"})
    assert s.min_ticket_lifetime == dt.timedelta(minutes=90)
    assert s.renew_interval == dt.timedelta(hours=2)


# -- spark-submit command lines ------------------------------------------------------------------
def test_conf_from_submit_args_and_defaults_file(tmp_path: Path) -> None:
    (tmp_path / "spark-defaults.conf").write_text("spark.secrets.renewer  svc\nspark.app.name=fromfile\n")
    args = ["--master", "k8s://https://api:6443", "--deploy-mode", "cluster", "--name", "etl", "--class", "a.B",
            "--conf", "spark.kubernetes.namespace=alice", "--conf=spark.x=1=2", "-c", "spark.y=", "--verbose",
            "local:///app.jar", "--conf", "app.arg=ignored"]
    conf = conf_from_submit_args(args, {"SPARK_CONF_DIR": str(tmp_path)})
    assert conf == {"spark.secrets.renewer": "svc", "spark.app.name": "etl", "spark.master": "k8s://https://api:6443",
                    "spark.submit.deployMode": "cluster", "spark.kubernetes.namespace": "alice", "spark.x": "1=2",
                    "spark.y": ""}
    flags = ["--conf", "k=v"]
    placed = insert_conf_flags(args, flags)
    assert placed[placed.index("local:///app.jar") - 2:placed.index("local:///app.jar")] == flags
    assert placed[-2:] == ["--conf", "app.arg=ignored"]


def test_properties_file_replaces_defaults(tmp_path: Path) -> None:
    (tmp_path / "spark-defaults.conf").write_text("spark.a 1\n")
    props = tmp_path / "job.properties"
    props.write_text("# comment\nspark.b : 2\n")
    assert read_properties(props) == {"spark.b": "2"}
    conf = conf_from_submit_args(["--properties-file", str(props), "app.py"], {"SPARK_CONF_DIR": str(tmp_path)})
    assert conf == {"spark.b": "2"}
    with pytest.raises(ConfigError, match="not key=value"):
        conf_from_submit_args(["--conf", "novalue", "app.py"], {})


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert settings_table() in readme


# -- the refresher plugin step -------------------------------------------------------------------
PLUGIN = "io.sparksecrets.plugin.TokenRefreshPlugin"


def _plugin_conf(**extra: str) -> dict[str, str]:
    return {**BASE, "spark.master": "k8s://https://api:6443", **extra}


def test_cluster_mode_without_an_image_path_leaves_the_plugin_out_and_says_so() -> None:
    spec = _builder(_plugin_conf(**{"spark.submit.deployMode": "cluster"})).run()
    assert "spark.plugins" not in spec.added_conf
    assert any("set spark.secrets.plugin.jar" in note for note in spec.notes)


def test_cluster_mode_puts_the_image_jar_on_both_class_paths_beside_the_users_plugins() -> None:
    spec = _builder(_plugin_conf(**{"spark.submit.deployMode": "cluster", "spark.plugins": "com.example.Metrics",
                                    "spark.executor.extraClassPath": "/opt/extra.jar",
                                    "spark.secrets.plugin.jar": "local:///opt/spark-secrets/plugin.jar"})).run()
    assert spec.added_conf["spark.plugins"] == f"com.example.Metrics,{PLUGIN}"
    assert spec.added_conf["spark.driver.extraClassPath"] == "/opt/spark-secrets/plugin.jar"
    assert spec.added_conf["spark.executor.extraClassPath"] == "/opt/extra.jar:/opt/spark-secrets/plugin.jar"


def test_client_mode_driver_uses_the_installed_jar_and_executors_the_images() -> None:
    spec = _builder(_plugin_conf(**{"spark.secrets.plugin.jar": "/opt/spark-secrets/plugin.jar",
                                    "spark.submit.deployMode": "client"})).run()
    assert spec.added_conf["spark.driver.extraClassPath"] == "/site/plugin.jar"
    assert spec.added_conf["spark.executor.extraClassPath"] == "/opt/spark-secrets/plugin.jar"


def test_client_mode_on_kubernetes_without_an_image_path_leaves_the_plugin_out() -> None:
    assert "spark.plugins" not in _builder(_plugin_conf()).run().added_conf


def test_local_master_uses_the_installed_jar_everywhere() -> None:
    spec = _builder({**BASE, "spark.master": "local-cluster[1,1,1024]"}).run()
    assert spec.added_conf["spark.plugins"] == PLUGIN
    assert spec.added_conf["spark.executor.extraClassPath"] == "/site/plugin.jar"


def test_plugin_jar_none_disables_it() -> None:
    spec = _builder({**BASE, "spark.master": "local[2]", "spark.secrets.plugin.jar": "none"}).run()
    assert "spark.plugins" not in spec.added_conf and any("plugin.jar=none" in n for n in spec.notes)


def test_unknown_deploy_mode_with_an_image_path_uses_it_everywhere() -> None:
    """`spark-secrets conf` usually sees no --deploy-mode; the image path serves a driver pod too."""
    spec = _builder(_plugin_conf(**{"spark.secrets.plugin.jar": "/opt/p.jar"})).run()
    assert spec.added_conf["spark.driver.extraClassPath"] == spec.added_conf["spark.executor.extraClassPath"] == "/opt/p.jar"


def test_render_formats_carry_references_only() -> None:
    import yaml

    from submit_steps.render import render, template_conf

    spec = _builder(_plugin_conf(**{"spark.secrets.plugin.jar": "/opt/p.jar"})).run()
    secret = spec.secrets[0].name
    props = render(spec, "properties")
    assert f"spark.kubernetes.kerberos.tokenSecret.name={secret}" in props
    operator = yaml.safe_load(render(spec, "spark-operator"))
    assert operator["kind"] == "SparkApplication" and operator["spec"]["sparkConf"] == dict(spec.added_conf)
    template = yaml.safe_load(render(spec, "pod-template"))
    assert template["spec"]["volumes"][0]["secret"]["secretName"] == secret
    assert not any(k.startswith("spark.kubernetes.kerberos.") for k in template_conf(spec))
    for text in (props, yaml.safe_dump(operator), yaml.safe_dump(template)):
        assert (b"p" * 20).hex() not in text and "pppp" not in text
    with pytest.raises(ConfigError, match="unknown format"):
        render(spec, "helm")


def test_a_pod_template_is_merged_into_the_jobs_own_template() -> None:
    import yaml

    from submit_steps.render import render

    spec = _builder(dict(BASE)).run()
    secret = spec.secrets[0].name
    own = {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"team": "etl"}},
           "spec": {"hostNetwork": True, "volumes": [{"name": "krb5", "configMap": {"name": "krb5"}}],
                    "containers": [{"name": "main", "env": [{"name": "A", "value": "1"}],
                                    "volumeMounts": [{"name": "krb5", "mountPath": "/etc/krb5.conf"}]},
                                   {"name": "sidecar"}]}}
    merged = yaml.safe_load(render(spec, "pod-template", own))
    assert merged["spec"]["hostNetwork"] is True and merged["metadata"]["labels"]["team"] == "etl"
    assert [v["name"] for v in merged["spec"]["volumes"]] == ["krb5", "spark-secrets-hadoop-tokens"]
    assert merged["spec"]["volumes"][1]["secret"]["secretName"] == secret
    main, sidecar = merged["spec"]["containers"]
    assert [m["mountPath"] for m in main["volumeMounts"]] == ["/etc/krb5.conf", SPARK_CREDENTIALS_DIR]
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "HADOOP_TOKEN_FILE_LOCATION",
                                                         "value": f"{SPARK_CREDENTIALS_DIR}/hadoop-tokens"}]
    assert sidecar == {"name": "sidecar"}
    assert own["spec"]["volumes"] == [{"name": "krb5", "configMap": {"name": "krb5"}}]  # the input is untouched
    with pytest.raises(ConfigError, match="not a pod template"):
        render(spec, "pod-template", {"kind": "SparkApplication"})


def _layout(layout: str, **conf: str) -> dict[str, str]:
    base = {k: v for k, v in BASE.items() if k != "spark.kubernetes.namespace"}
    return {**base, "spark.secrets.layout": layout, **{k.replace("_", "."): v for k, v in conf.items()}}


def test_namespace_per_user_layout_fills_namespace_and_account_from_the_principal() -> None:
    spec = _builder(_layout("namespace-per-user")).run()
    (plan,) = spec.secrets
    assert plan.namespace == "spark-alice" and not plan.fill
    assert spec.added_conf["spark.kubernetes.namespace"] == "spark-alice"
    assert spec.added_conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark"
    # What the user set stays.
    spec = _builder({**_layout("namespace-per-user"), "spark.kubernetes.namespace": "mine"}).run()
    assert spec.secrets[0].namespace == "mine" and "spark.kubernetes.namespace" not in spec.added_conf


def test_precreated_layout_fills_the_users_secret_instead_of_creating_one() -> None:
    conf = {**_layout("precreated"), "spark.kubernetes.namespace": "spark-team-a"}
    spec = _builder(conf).run()
    (plan,) = spec.secrets
    assert (plan.name, plan.namespace, plan.fill) == ("hadoop-tokens-alice", "spark-team-a", True)
    assert spec.added_conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "spark-alice"
    patch = plan.fill_patch()
    assert set(patch) == {"metadata", "data"} and "ownerReferences" not in patch["metadata"]  # type: ignore[operator]
    assert spec.added_conf["spark.kubernetes.kerberos.tokenSecret.name"] == "hadoop-tokens-alice"


def test_controller_layout_names_the_driver_account_on_the_secret() -> None:
    conf = {**_layout("controller"), "spark.kubernetes.namespace": "spark-jobs", "spark.secrets.layout.user": "al"}
    (plan,) = _builder(conf).run().secrets
    assert plan.annotations["spark-secrets.io/service-account"] == "spark-al"


def test_group_layouts_need_the_namespace_and_none_never_asks_for_the_user() -> None:
    with pytest.raises(ConfigError, match="needs spark.kubernetes.namespace"):
        resolve(Settings(_layout("group")), lambda: "alice")

    def no_user() -> str:
        raise AssertionError("layout none must not read the ticket")
    assert resolve(Settings(dict(BASE)), no_user).namespace == "alice"
    with pytest.raises(ConfigError, match="is not a layout"):
        Settings(_layout("per-team"))
    with pytest.raises(ConfigError, match="cannot be part of Kubernetes names"):
        Settings({**_layout("group"), "spark.secrets.layout.user": "Alice Smith"})


def test_settings_are_parsed_once_and_kept() -> None:
    settings = Settings(dict(BASE))
    assert settings.filesystems is settings.filesystems  # the same parsed tuple, not a new parse per read
    assert settings.renew_interval is None and settings.min_ticket_lifetime == dt.timedelta(minutes=5)


def test_the_hadoop_configuration_is_read_once_per_submission(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token step (which resolves filesystems) and the Secret step (which estimates the expiry)
    share one read of HADOOP_CONF_DIR."""
    import submit_steps.tokens

    loads: list[HadoopConf] = []

    def load(conf_dir: object = None) -> HadoopConf:
        loads.append(HadoopConf({"dfs.namenode.delegation.token.renew-interval": "20000"}, "/etc/hadoop/conf"))
        return loads[-1]

    def obtain(filesystems, renewer, auth, *, conf, verify):  # type: ignore[no-untyped-def]
        assert conf is loads[0]
        return _creds()

    monkeypatch.setattr(HadoopConf, "load", staticmethod(load))
    monkeypatch.setattr(submit_steps.tokens, "obtain_tokens", obtain)
    settings = Settings(dict(BASE))
    spec = StepBuilder(BASE, [DelegationTokenStep(settings, ticket=_Ticket), TokenSecretStep(settings)]).run()
    assert len(loads) == 1
    (plan,) = spec.secrets
    assert parse_rfc3339(plan.annotations["spark-secrets.io/expiry"]) == 1_795_000_000_000 + 20_000


def test_an_empty_hadoop_configuration_given_to_the_secret_step_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HadoopConf, "load", staticmethod(lambda conf_dir=None: pytest.fail("read HADOOP_CONF_DIR")))
    spec = TokenSecretStep(Settings(dict(BASE)), HadoopConf({})).apply(SubmissionSpec(conf=BASE, credentials=_creds()))
    assert parse_rfc3339(spec.secrets[0].annotations["spark-secrets.io/expiry"]) == 1_795_000_000_000 + 86_400_000
