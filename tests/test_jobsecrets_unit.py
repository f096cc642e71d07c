"""Job secrets without servers: references, the Vault client over an injected transport, the step's
wiring (references only in Spark's conf), the size limit, the local driver's files and the runtime API."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
import requests
from requests.adapters import BaseAdapter

from spark_secrets.errors import ConfigError, VaultForbidden, VaultNotFound
from spark_secrets.secrets.jobsecret import ENV_FILES, decode_files
from spark_secrets.jobsecrets.reference import Reference, parse_job_secret, parse_reference
from spark_secrets.jobsecrets.resolver import Resolver
from spark_secrets.runtime import secrets as runtime
from spark_secrets.jobsecrets.vault import VaultClient, VaultConfig
from submit_steps.jobsecrets import JobSecretsStep
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec

PASSWORD = "pw-1f0c9e7d2b"  # the bytes no conf, note or repr may hold


class KvAdapter(BaseAdapter):
    """A transport answering KV v2 reads like OpenBao: ``store`` maps "<mount>/<path>" to versions' data;
    "denied/..." answers 403; a token "expired" fails lookup-self too."""

    def __init__(self, store: dict[str, list[dict[str, object]]], token_valid: bool = True) -> None:
        super().__init__()
        self.store = store
        self.token_valid = token_valid
        self.reads: list[str] = []
        self.leases = 0

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        path = request.path_url.split("?")[0].removeprefix("/v1/")
        response = requests.Response()
        response.url = request.url or ""
        response.headers["Content-Type"] = "application/json"
        body: dict[str, object]
        if path.startswith("sys/internal/ui/mounts/"):
            mount = path.removeprefix("sys/internal/ui/mounts/").split("/")[0]
            response.status_code, body = 200, {"data": {"type": "kv" if mount == "secret" else "database",
                                                        "options": {"version": "2"}, "path": f"{mount}/"}}
        elif path == "database/creds/etl":
            self.leases += 1
            response.status_code, body = 200, {"lease_id": f"database/creds/etl/L{self.leases}", "lease_duration": 20,
                                               "renewable": True,
                                               "data": {"username": f"v-etl-{self.leases}", "password": PASSWORD}}
        elif path == "auth/token/lookup-self":
            response.status_code, body = (200, {"data": {}}) if self.token_valid else (403, {"errors": ["permission denied"]})
        elif path.startswith("secret/data/denied") or not self.token_valid:
            response.status_code, body = 403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
        else:
            location = "secret/" + path.removeprefix("secret/data/")
            versions = self.store.get(location)
            self.reads.append(location)
            query = request.path_url.partition("?")[2]
            wanted = int(query.split("version=")[1]) if "version=" in query else len(versions or [])
            if not versions or wanted > len(versions):
                response.status_code, body = 404, {"errors": []}
            else:
                response.status_code = 200
                body = {"data": {"data": versions[wanted - 1], "metadata": {"version": wanted}}}
        response._content = json.dumps(body).encode()
        return response

    def close(self) -> None:
        pass


def vault(adapter: KvAdapter) -> VaultClient:
    session = requests.Session()
    session.mount("http://", adapter)
    config = VaultConfig.from_settings({}.get, {"VAULT_ADDR": "http://bao:8200", "VAULT_TOKEN": "t", "HOME": "/nonexistent"})
    return VaultClient(config, session=session)


STORE = {"secret/team/db": [{"password": "old"}, {"password": PASSWORD, "user": "etl"}],
         "secret/team/api": [{"key": "k-123"}]}


def test_references_parse_and_print_canonically() -> None:
    assert parse_reference("s", "vault:secret/team/db#password") == Reference("vault", "secret/team/db", "password")
    assert parse_reference("s", "vault:secret/team/db#password@2").version == 2
    assert parse_reference("s", "vault:secret/team/db@2#password") == Reference("vault", "secret/team/db", "password", 2)
    assert parse_reference("s", "vault:/secret/team/db").field is None
    assert parse_reference("s", "k8s:db-creds#password") == Reference("k8s", "db-creds", "password")
    assert parse_reference("s", "env:DB_PW").location == "DB_PW"
    assert parse_reference("s", "file:~/pw.txt").location == "~/pw.txt"
    ref = parse_reference("s", "vault:kv/a/b#f@3")
    assert (ref.mount, ref.path, ref.text) == ("kv", "a/b", "vault:kv/a/b#f@3")


@pytest.mark.parametrize("text", ["hunter2-literal", "http://x", "vault:secretonly#f", "vault:a//b#f", "k8s:Bad_Name#k",
                                  "k8s:ok", "env:1BAD", "file:", "vault:secret/x#f@0"])
def test_a_value_that_is_not_a_reference_is_refused_without_repeating_a_literal(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_reference("spark.secrets.env.PW", text)
    assert "spark.secrets.env.PW" in str(err.value)
    assert "hunter2-literal" not in str(err.value)


@pytest.mark.parametrize(("setting", "fails"), [("spark.secrets.env.DB_PW", False), ("spark.secrets.env.1PW", True),
                                                ("spark.secrets.env.DB-PW", True), ("spark.secrets.file.db.pw", False),
                                                ("spark.secrets.file..hidden", True), ("spark.secrets.file.a/b", True)])
def test_names_are_checked(setting: str, fails: bool) -> None:
    if fails:
        with pytest.raises(ConfigError, match="not a valid"):
            parse_job_secret(setting, "env:X")
    else:
        assert parse_job_secret(setting, "env:X").name == setting.split(".", 3)[3]


def test_settings_accept_job_secrets_and_still_refuse_unknown_keys() -> None:
    s = Settings({"spark.secrets.file.db": "vault:secret/team/db#password", "spark.secrets.env.API": "env:X"})
    assert [(j.kind, j.name) for j in s.job_secrets] == [("env", "API"), ("file", "db")]
    with pytest.raises(ConfigError, match="unknown setting spark.secrets.files.db"):
        Settings({"spark.secrets.files.db": "env:X"})
    with pytest.raises(ConfigError, match="spark.secrets.dir"):
        Settings({"spark.secrets.dir": "relative"})


def test_vault_reads_the_current_or_a_pinned_version_and_names_missing_paths_and_fields() -> None:
    adapter = KvAdapter(STORE)
    client = vault(adapter)
    assert client.read("secret", "team/db").version == 2
    assert client.read("secret", "team/db", 1).data == {"password": "old"}
    assert PASSWORD not in repr(client.read("secret", "team/db"))
    with pytest.raises(VaultNotFound, match="no secret at secret/team/nope"):
        client.read("secret", "team/nope")
    with pytest.raises(VaultForbidden, match="denied reading secret/denied/x to your token"):
        client.read("secret", "denied/x")
    expired = vault(KvAdapter(STORE, token_valid=False))
    with pytest.raises(VaultForbidden, match="expired, revoked or unknown"):
        expired.read("secret", "team/db")


def test_no_token_no_address_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no OpenBao/Vault address"):
        VaultConfig.from_settings({}.get, {})
    with pytest.raises(ConfigError, match="no OpenBao/Vault token"):
        VaultClient(VaultConfig.from_settings({}.get, {"BAO_ADDR": "http://b:8200", "HOME": str(tmp_path)}))
    (tmp_path / ".vault-token").write_text("from-helper\n")
    assert VaultConfig.from_settings({}.get, {"BAO_ADDR": "http://b:8200", "HOME": str(tmp_path)}).token() == "from-helper"


def _step(conf: dict[str, str], adapter: KvAdapter, environ: dict[str, str] | None = None) -> JobSecretsStep:
    settings = Settings({"spark.app.name": "etl", "spark.kubernetes.namespace": "alice",
                         "spark.submit.deployMode": "cluster", **conf})
    return JobSecretsStep(settings, resolver=Resolver(lambda: vault(adapter), environ or {}))


def test_the_step_wires_files_and_env_by_reference_and_reads_each_vault_secret_once() -> None:
    adapter = KvAdapter(STORE)
    step = _step({"spark.secrets.file.db-password": "vault:secret/team/db#password",
                  "spark.secrets.env.DB_USER": "vault:secret/team/db#user",
                  "spark.secrets.env.API_KEY": "vault:secret/team/api",
                  "spark.secrets.env.TLS": "k8s:tls-certs#tls.key",
                  "spark.secrets.file.ca.pem": "k8s:tls-certs#ca.pem",
                  "spark.secrets.file.local": "env:LOCAL_PW"}, adapter, {"LOCAL_PW": "local-value"})
    spec = step.apply(SubmissionSpec(conf=step.settings.conf))
    assert adapter.reads.count("secret/team/db") == 1
    (plan,) = spec.secrets
    assert plan.name.startswith("etl-") and plan.name.endswith("-job-secrets")
    assert dict(plan.data) == {"db-password": PASSWORD.encode(), ".env.DB_USER": b"etl", ".env.API_KEY": b"k-123",
                               "local": b"local-value"}
    conf = spec.added_conf
    for role in ("driver", "executor"):
        assert conf[f"spark.kubernetes.{role}.secrets.{plan.name}"] == "/mnt/secrets/spark-secrets"
        assert conf[f"spark.kubernetes.{role}.secretKeyRef.DB_USER"] == f"{plan.name}:.env.DB_USER"
        assert conf[f"spark.kubernetes.{role}.secretKeyRef.TLS"] == "tls-certs:tls.key"  # referenced, not copied
        assert conf[f"spark.kubernetes.{role}.secrets.tls-certs"] == "/mnt/secrets/spark-secrets-k8s/tls-certs"
    assert decode_files(conf[f"spark.executorEnv.{ENV_FILES}"]) == {
        "ca.pem": "/mnt/secrets/spark-secrets-k8s/tls-certs/ca.pem"}
    assert conf["spark.kubernetes.driver.label.spark-secrets.io/job-secrets"] == plan.name
    assert plan.driver_selector == f"spark-secrets.io/job-secrets={plan.name}"
    assert json.loads(plan.annotations["spark-secrets.io/vault-versions"]) == {"secret/team/db": "2", "secret/team/api": "1"}
    everything = json.dumps(dict(conf)) + json.dumps(dict(plan.annotations)) + repr(spec) + repr(plan) + " ".join(spec.notes)
    for value in (PASSWORD, "k-123", "local-value"):
        assert value not in everything


def test_a_pinned_version_and_the_missing_field_name_the_setting() -> None:
    adapter = KvAdapter(STORE)
    spec = _step({"spark.secrets.file.old": "vault:secret/team/db#password@1"}, adapter).apply(SubmissionSpec(conf={}))
    assert dict(spec.secrets[0].data) == {"old": b"old"}
    with pytest.raises(ConfigError, match=r"spark.secrets.file.x: secret/team/db \(version 2\) has no field 'pass'.*"
                                          "password, user"):
        _step({"spark.secrets.file.x": "vault:secret/team/db#pass"}, adapter).apply(SubmissionSpec(conf={}))
    with pytest.raises(ConfigError, match="has 2 fields"):
        _step({"spark.secrets.file.x": "vault:secret/team/db"}, adapter).apply(SubmissionSpec(conf={}))
    with pytest.raises(VaultNotFound, match="spark.secrets.env.X: no secret at secret/team/gone"):
        _step({"spark.secrets.env.X": "vault:secret/team/gone#f"}, adapter).apply(SubmissionSpec(conf={}))
    with pytest.raises(ConfigError, match="LOCAL_PW is not set here"):
        _step({"spark.secrets.env.X": "env:LOCAL_PW"}, adapter).apply(SubmissionSpec(conf={}))


def test_a_leased_secret_is_read_once_for_all_its_fields_and_recorded_by_lease_id() -> None:
    adapter = KvAdapter(STORE)
    step = _step({"spark.secrets.env.DB_USER": "vault:database/creds/etl#username",
                  "spark.secrets.file.db-password": "vault:database/creds/etl#password"}, adapter)
    spec = step.apply(SubmissionSpec(conf={}))
    (plan,) = spec.secrets
    assert adapter.leases == 1 and plan.data[".env.DB_USER"] == b"v-etl-1" and plan.data["db-password"] == PASSWORD.encode()
    leases = json.loads(plan.annotations["spark-secrets.io/vault-leases"])
    assert leases["database/creds/etl"]["id"] == "database/creds/etl/L1" and leases["database/creds/etl"]["ttl"] == 20
    assert PASSWORD not in json.dumps(dict(plan.annotations))
    with pytest.raises(ConfigError, match="is a leased secret, it has no versions"):
        _step({"spark.secrets.env.X": "vault:database/creds/etl#password@2"}, adapter).apply(SubmissionSpec(conf={}))


def test_over_one_mib_names_each_part(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (900 << 10))
    other = tmp_path / "other.bin"
    other.write_bytes(b"y" * (200 << 10))
    step = _step({"spark.secrets.file.big": f"file:{big}", "spark.secrets.file.other": f"file:{other}"}, KvAdapter({}))
    with pytest.raises(ConfigError, match=r"over Kubernetes' 1 MiB limit .*spark.secrets.file.big 921600 bytes, "
                                          r"spark.secrets.file.other 204800 bytes"):
        step.apply(SubmissionSpec(conf={}))
    control = _step({"spark.secrets.file.big": f"file:{big}"}, KvAdapter({}))
    assert len(control.apply(SubmissionSpec(conf={})).secrets[0].data["big"]) == 900 << 10


def test_a_local_driver_gets_private_files_and_env() -> None:
    step = _step({"spark.secrets.file.db": "vault:secret/team/db#password", "spark.secrets.env.API": "vault:secret/team/api"},
                 KvAdapter(STORE))
    local = step.apply(SubmissionSpec(conf={})).local_secrets
    assert local is not None and PASSWORD not in repr(local)
    env = local.materialize()
    directory = Path(env["SPARK_SECRETS_DIR"])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / "db").stat().st_mode) == 0o600
    assert (directory / "db").read_text() == PASSWORD and env["API"] == "k-123"


def test_the_runtime_reads_by_name_and_sees_a_kubelet_style_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kubelet's layout: <dir>/<name> -> ..data/<name>, ..data -> a timestamped directory swapped by rename.
    def project(value: str, stamp: str) -> None:
        target = tmp_path / stamp
        target.mkdir()
        (target / "db").write_text(value)
        (tmp_path / "..data_tmp").symlink_to(stamp)
        os.rename(tmp_path / "..data_tmp", tmp_path / "..data")
    project("v1", "..2026_1")
    (tmp_path / "db").symlink_to("..data/db")
    monkeypatch.setenv("SPARK_SECRETS_DIR", str(tmp_path))
    monkeypatch.delenv(ENV_FILES, raising=False)
    assert runtime.secret("db") == "v1"
    view = runtime.fresh("db")
    seen: list[str] = []
    sub = runtime.on_change("db", seen.append, interval=0.05)
    project("v2", "..2026_2")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.stop()
    assert seen == ["v2"] and view.value == "v2" and runtime.secret("db") == "v2"
    with pytest.raises(runtime.MissingSecretError, match="declare it with spark.secrets.file.nope"):
        runtime.secret("nope")
    monkeypatch.setenv(ENV_FILES, f"cert={tmp_path}/db")
    assert runtime.secret_bytes("cert") == b"v2"
