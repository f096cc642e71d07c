"""Job secrets on the real test bed: OpenBao (KV v2, policies, token expiry, Kubernetes auth by TokenReview)
and the API server with RBAC. What a submission creates, what it wires, and that bad input creates nothing."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.errors import TestbedError
from spark_secrets.secrets.jobsecret import ANNOTATION_REFERENCES, KIND_JOB_SECRETS
from spark_secrets.testbed.bed import Testbed
from spark_secrets.testbed.openbao import OpenBao
from spark_secrets.testbed.postgres import Postgres
from spark_secrets.secrets.tokensecret import LABEL_KIND, LABEL_MANAGED_BY

pytestmark = pytest.mark.testbed

PASSWORD = "db-pw-7c41e0b9a2"
API_KEY = "api-key-55d0c3f1"


def _admin(bed: Testbed) -> k8s.CoreV1Api:
    assert bed.kube is not None
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(bed.kube.kubeconfig("admin"))))


def _cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spark_secrets", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=300)


def _env(bed: Testbed, bao: OpenBao, home: Path, token: str | None) -> dict[str, str]:
    env = bed.env("alice")
    env.update({"VAULT_ADDR": bao.address, "HOME": str(home)})
    env.pop("VAULT_TOKEN", None)
    if token is not None:
        env["VAULT_TOKEN"] = token
    return env


def _job_secrets(bed: Testbed) -> list[k8s.V1Secret]:
    return _admin(bed).list_namespaced_secret(
        "alice", label_selector=f"{LABEL_MANAGED_BY}=spark-secrets,{LABEL_KIND}={KIND_JOB_SECRETS}").items


def _conf_argv(bed: Testbed, conf: dict[str, str], app: str = "vault-job") -> list[str]:
    assert bed.kube is not None
    argv = ["conf", "--", "--master", f"k8s://{bed.kube.server}", "--deploy-mode", "cluster", "--name", app,
            "--conf", "spark.kubernetes.namespace=alice"]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, "local:///opt/job.py"]


@pytest.fixture(scope="module")
def team(openbao: OpenBao) -> str:
    """The team's secrets, written as a user would (the CLI, value on stdin); returns a team token."""
    admin = openbao.admin()
    admin.secrets.kv.v2.create_or_update_secret("team/etl/db", {"password": PASSWORD, "user": "etl"})
    admin.secrets.kv.v2.create_or_update_secret("team/etl/api", {"value": API_KEY})
    admin.secrets.kv.v2.create_or_update_secret("other/db", {"password": "not-yours"})
    return openbao.token()


@pytest.fixture(scope="module")
def tls_secret(testbed: Testbed) -> str:
    """A Secret the user made in the job's namespace, for k8s: references."""
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "etl-tls"},
            "data": {"ca.pem": base64.b64encode(b"-----CA-----").decode(), "tls.key": base64.b64encode(b"KEY").decode()}}
    try:
        _admin(testbed).create_namespaced_secret("alice", body)
    except k8s.exceptions.ApiException as exc:
        assert exc.status == 409
    return "etl-tls"


def test_the_secrets_cli_stores_shows_lists_and_deletes_without_printing_values(
        testbed: Testbed, openbao: OpenBao, team: str, tmp_path: Path) -> None:
    env = _env(testbed, openbao, tmp_path, team)
    value = "cli-value-0b8e"
    stored = _cli(["secrets", "set", "cli-pw", "--path", "team/cli"], env, stdin=value + "\n")
    assert stored.returncode == 0, stored.stderr
    assert "vault:secret/team/cli/cli-pw#value" in stored.stdout and value not in stored.stdout + stored.stderr
    read = openbao.admin().secrets.kv.v2.read_secret_version("team/cli/cli-pw", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"value": value}
    shown = _cli(["secrets", "get", "cli-pw", "--path", "team/cli"], env)
    assert shown.returncode == 0 and "version 1" in shown.stdout and value not in shown.stdout, shown
    revealed = _cli(["secrets", "get", "cli-pw", "--path", "team/cli", "--reveal"], env)
    assert revealed.stdout == value
    listed = _cli(["secrets", "list", "--path", "team/cli"], env)
    assert listed.stdout.split() == ["team/cli/cli-pw"]
    assert _cli(["secrets", "delete", "cli-pw", "--path", "team/cli"], env).returncode == 0
    gone = _cli(["secrets", "get", "cli-pw", "--path", "team/cli"], env)
    assert gone.returncode == 2 and gone.stderr.startswith("spark-secrets: error: no secret at secret/team/cli/cli-pw")
    denied = _cli(["secrets", "set", "x", "--path", "other"], env, stdin="v")
    assert denied.returncode == 2 and "denied reading secret/other/x" in denied.stderr, denied.stderr  # set keeps fields
    # A value is never an argument: there is no option that takes one.
    assert _cli(["secrets", "set", "x", "--path", "team/cli", "--value", "v"], env).returncode == 2


def test_a_submission_puts_the_values_in_the_jobs_secret_and_only_references_in_sparks_conf(
        testbed: Testbed, openbao: OpenBao, team: str, tls_secret: str, tmp_path: Path) -> None:
    local = tmp_path / "local.txt"
    local.write_text("local-file-value")
    conf = {"spark.secrets.file.db-password": "vault:secret/team/etl/db#password",
            "spark.secrets.env.DB_USER": "vault:secret/team/etl/db#user",
            "spark.secrets.env.API_KEY": "vault:secret/team/etl/api",
            "spark.secrets.file.ca.pem": f"k8s:{tls_secret}#ca.pem",
            "spark.secrets.env.TLS_KEY": f"k8s:{tls_secret}#tls.key",
            "spark.secrets.file.local.txt": f"file:{local}"}
    before = {s.metadata.name for s in _job_secrets(testbed)}
    proc = _cli(_conf_argv(testbed, conf), _env(testbed, openbao, tmp_path, team))
    assert proc.returncode == 0, proc.stderr
    (secret,) = [s for s in _job_secrets(testbed) if s.metadata.name not in before]
    try:
        data = {k: base64.b64decode(v) for k, v in secret.data.items()}
        assert data == {"db-password": PASSWORD.encode(), ".env.DB_USER": b"etl", ".env.API_KEY": API_KEY.encode(),
                        "local.txt": b"local-file-value"}
        flags = dict(a.split("=", 1) for a in shlex.split(proc.stdout) if a != "--conf")
        assert flags[f"spark.kubernetes.executor.secrets.{secret.metadata.name}"] == "/mnt/secrets/spark-secrets"
        assert flags["spark.kubernetes.driver.secretKeyRef.API_KEY"] == f"{secret.metadata.name}:.env.API_KEY"
        assert flags["spark.kubernetes.executor.secretKeyRef.TLS_KEY"] == f"{tls_secret}:tls.key"
        assert json.loads(secret.metadata.annotations[ANNOTATION_REFERENCES])["file.db-password"] == \
            "vault:secret/team/etl/db#password"
        text = proc.stdout + proc.stderr + json.dumps(secret.metadata.to_dict(), default=str)
        for value in (PASSWORD, API_KEY, "local-file-value", base64.b64encode(PASSWORD.encode()).decode()):
            assert value not in text
    finally:
        _admin(testbed).delete_namespaced_secret(secret.metadata.name, "alice")


@pytest.mark.parametrize(("conf", "token", "message"), [
    ({"spark.secrets.file.db": "vault:secret/team/etl/nope#password"}, "team",
     "spark.secrets.file.db: no secret at secret/team/etl/nope"),
    ({"spark.secrets.file.db": "vault:secret/team/etl/db#pasword"}, "team",
     "spark.secrets.file.db: secret/team/etl/db (version 1) has no field 'pasword': its fields are password, user"),
    ({"spark.secrets.file.db": "vault:secret/other/db#password"}, "team",
     "spark.secrets.file.db: http://127.0.0.1:"),  # ...denied reading secret/other/db to your token
    ({"spark.secrets.file.db": "vault:secret/team/etl/db#password"}, "expired",
     "the token is expired, revoked or unknown: log in again"),
    ({"spark.secrets.file.db": "vault:secret/team/etl/db#password"}, None, "no OpenBao/Vault token for"),
    ({"spark.secrets.file.big": "file:BIG"}, "team", "over Kubernetes' 1 MiB limit for a Secret (spark.secrets.file.big"),
    ({"spark.secrets.env.DB-PW": "vault:secret/team/etl/db#password"}, "team",
     "spark.secrets.env.DB-PW: 'DB-PW' is not a valid environment variable name"),
    ({"spark.secrets.file.../x": "env:HOME"}, "team", "is not a valid file name for a job secret"),
    ({"spark.secrets.env.DB_PW": PASSWORD}, "team", "spark.secrets.env.DB_PW is not a reference (its value is not shown)"),
    ({"spark.secrets.file.ca": "k8s:no-such-secret#ca.pem"}, "team", "spark.secrets.file.ca: no Secret alice/no-such-secret"),
    ({"spark.secrets.file.ca": "k8s:etl-tls#nokey"}, "team", "has no key 'nokey': its keys are ca.pem, tls.key"),
], ids=["missing-path", "missing-field", "denied-policy", "expired-token", "no-token", "over-1-MiB", "bad-env-name",
        "bad-file-name", "literal-value", "missing-k8s-secret", "missing-k8s-key"])
def test_bad_input_is_one_line_and_creates_nothing(testbed: Testbed, openbao: OpenBao, team: str, tls_secret: str,
                                                   tmp_path: Path, conf: dict[str, str], token: str | None,
                                                   message: str) -> None:
    if token == "expired":
        token = openbao.token(ttl="1s")
        time.sleep(2.5)
    elif token == "team":
        token = team
    big = tmp_path / "big.bin"
    big.write_bytes(b"z" * (1100 << 10))
    conf = {k: v.replace("BIG", str(big)) for k, v in conf.items()}
    before = {s.metadata.name for s in _admin(testbed).list_namespaced_secret("alice").items}
    proc = _cli(_conf_argv(testbed, conf), _env(testbed, openbao, tmp_path, token))
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spark-secrets: error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and PASSWORD not in proc.stderr + proc.stdout
    assert {s.metadata.name for s in _admin(testbed).list_namespaced_secret("alice").items} == before


def test_a_submitter_in_a_pod_logs_in_with_kubernetes_auth(testbed: Testbed, openbao: OpenBao, team: str,
                                                          tmp_path: Path) -> None:
    """An Airflow worker's way: no Vault token, its service-account token checked by OpenBao with a
    TokenReview against the API server; a role bound to another account is refused (the control)."""
    assert testbed.kube is not None
    openbao.enable_kubernetes_auth(testbed.kube, "airflow", "alice", "airflow")
    openbao.enable_kubernetes_auth(testbed.kube, "someone-else", "alice", "someone-else")
    jwt = tmp_path / "sa-token"
    jwt.write_text(testbed.kube.service_account_token("alice", "airflow", 600))
    env = {**_env(testbed, openbao, tmp_path, None), "VAULT_K8S_TOKEN_PATH": str(jwt)}
    before = {s.metadata.name for s in _job_secrets(testbed)}
    conf = {"spark.secrets.file.db": "vault:secret/team/etl/db#password", "spark.secrets.vault.auth": "kubernetes",
            "spark.secrets.vault.role": "airflow"}
    proc = _cli(_conf_argv(testbed, conf, "airflow-job"), env)
    assert proc.returncode == 0, proc.stderr
    (secret,) = [s for s in _job_secrets(testbed) if s.metadata.name not in before]
    _admin(testbed).delete_namespaced_secret(secret.metadata.name, "alice")
    assert base64.b64decode(secret.data["db"]) == PASSWORD.encode()
    refused = _cli(_conf_argv(testbed, {**conf, "spark.secrets.vault.role": "someone-else"}, "airflow-job"), env)
    assert refused.returncode == 2 and "Kubernetes auth (role someone-else" in refused.stderr, refused.stderr


def test_the_renew_service_follows_a_rotated_kv_value_reading_as_the_jobs_account(
        testbed: Testbed, openbao: OpenBao, team: str, rotation: str, tmp_path: Path) -> None:
    """A floating reference follows its KV secret (default check interval); a pinned one stays; a Secret made
    by hand that names another team's path gets nothing, because the service reads as the account its pod runs
    as; one whose annotation names an account its pods do not run as is not read as that account."""
    from renewers import RenewerProcess, job_pod, wait_until
    assert testbed.hdfs is not None
    app = f"rotate-{time.time_ns() % 10**8}"
    first, second = f"{app}-value-1", f"{app}-value-2"
    kv = openbao.admin().secrets.kv.v2
    kv.create_or_update_secret(f"team/{app}/db", {"password": first})
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer",
                             extra=("--vault-role", rotation, "--vault-address", openbao.address))
    api = _admin(testbed)
    try:
        before = {s.metadata.name for s in _job_secrets(testbed)}
        conf = {"spark.secrets.file.db": f"vault:secret/team/{app}/db#password",
                "spark.secrets.env.PINNED": f"vault:secret/team/{app}/db#password@1",
                "spark.kubernetes.authenticate.driver.serviceAccountName": "spark"}
        proc = _cli(_conf_argv(testbed, conf, app), _env(testbed, openbao, tmp_path, team))
        assert proc.returncode == 0, proc.stderr
        (name,) = [s.metadata.name for s in _job_secrets(testbed) if s.metadata.name not in before]
        # The hand-made control: the job account's policy does not cover secret/other/*.
        forged = f"{app}-forged"
        api.create_namespaced_secret("alice", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": forged, "labels": {LABEL_MANAGED_BY: "spark-secrets", LABEL_KIND: KIND_JOB_SECRETS},
                         "annotations": {ANNOTATION_REFERENCES: json.dumps({"file.db": "vault:secret/other/db#password"}),
                                         "spark-secrets.io/service-account": "spark"}}})
        # A Secret whose annotation names the job account, but whose only pod runs as the namespace's default
        # account (which OpenBao's role does not admit): it is read as default, never as spark.
        named = f"{app}-named"
        api.create_namespaced_secret("alice", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": named, "labels": {LABEL_MANAGED_BY: "spark-secrets", LABEL_KIND: KIND_JOB_SECRETS},
                         "annotations": {ANNOTATION_REFERENCES: json.dumps({"file.db": f"vault:secret/team/{app}/db"
                                                                                      "#password"}),
                                         "spark-secrets.io/service-account": "spark"}}})
        pods = [job_pod(testbed, name), job_pod(testbed, forged), job_pod(testbed, named, account="default")]

        def value(key: str, secret: str = name) -> bytes:
            return base64.b64decode((api.read_namespaced_secret(secret, "alice").data or {}).get(key, ""))
        assert value("db") == first.encode()
        kv.create_or_update_secret(f"team/{app}/db", {"password": second})
        took = wait_until("the rotated value did not reach the job's Secret", lambda: value("db") == second.encode(),
                          75, renewer)
        assert value(".env.PINNED") == first.encode()  # pinned @1
        assert renewer.metrics()["secret_rotations_total"] >= 1

        def events(secret: str) -> list[k8s.CoreV1Event]:
            return [e for e in api.list_namespaced_event("alice").items if e.involved_object.name == secret]
        wait_until("no RotationFailed Event on the forged Secret",
                   lambda: any(e.reason == "RotationFailed" for e in events(forged)), 75, renewer)
        failed = next(e for e in events(forged) if e.reason == "RotationFailed")
        assert "denied reading the metadata of secret/other/db to service account alice/spark" in failed.message, \
            failed.message
        assert not (api.read_namespaced_secret(forged, "alice").data or {})
        wait_until("no RotationFailed Event on the Secret whose pod runs as default",
                   lambda: any(e.reason == "RotationFailed" for e in events(named)), 75, renewer)
        failed = next(e for e in events(named) if e.reason == "RotationFailed")
        assert "alice/default" in failed.message and "alice/spark" not in failed.message, failed.message
        assert not (api.read_namespaced_secret(named, "alice").data or {})
        rotated = next(e for e in events(name) if e.reason == "SecretsRotated")
        assert f"secret/team/{app}/db version 1 -> 2" in rotated.message and rotated.type == "Normal"
        everything = renewer.log.read_text() + json.dumps([e.to_dict() for e in events(name) + events(forged)], default=str)
        for secret_value in (first, second, "not-yours"):
            assert secret_value not in everything
        print(f"rotation reached the Secret {took:.1f} s after the KV write")
    finally:
        renewer.stop()
        for secret in api.list_namespaced_secret("alice", label_selector=f"{LABEL_KIND}={KIND_JOB_SECRETS}").items:
            api.delete_namespaced_secret(secret.metadata.name, "alice")
        for pod in locals().get("pods", []):
            api.delete_namespaced_pod(pod, "alice", grace_period_seconds=0)


def test_leased_database_credentials_are_renewed_replaced_before_the_max_ttl_and_revoked_at_job_end(
        testbed: Testbed, openbao: OpenBao, team: str, rotation: str, database: Postgres, tmp_path: Path) -> None:
    """``vault:database/creds/etl-quick`` (20 s leases, 40 s at most): one lease for the username and the
    password. The renew service takes the submission's lease over (only the login that made a lease may
    renew it), renews its own lease, puts new credentials in the job's Secret while the old ones still work,
    so that after a lease's max TTL the job logs in with what its Secret holds; the lease is revoked when
    the Secret goes with the job. (Real pods with kubelet between: the job-secrets test in test_pods.py.)"""
    from conftest import QUICK_LEASE_MAX_TTL_S as LEASE_MAX_TTL_S
    from renewers import RenewerProcess, job_pod, wait_until
    assert testbed.hdfs is not None
    app = f"lease-{time.time_ns() % 10**8}"
    api = _admin(testbed)
    renewer = RenewerProcess(testbed, testbed.hdfs, tmp_path / "renewer",
                             extra=("--vault-role", rotation, "--vault-address", openbao.address))
    seen: list[tuple[str, str]] = []
    try:
        before = {s.metadata.name for s in _job_secrets(testbed)}
        conf = {"spark.secrets.env.DB_USER": "vault:database/creds/etl-quick#username",
                "spark.secrets.file.db-password": "vault:database/creds/etl-quick#password",
                "spark.kubernetes.authenticate.driver.serviceAccountName": "spark"}
        proc = _cli(_conf_argv(testbed, conf, app), _env(testbed, openbao, tmp_path, team))
        assert proc.returncode == 0, proc.stderr
        (name,) = [s.metadata.name for s in _job_secrets(testbed) if s.metadata.name not in before]
        driver = job_pod(testbed, name)  # the job's driver: the service reads as its account

        def login() -> tuple[str, str]:
            data = api.read_namespaced_secret(name, "alice").data or {}
            pair = base64.b64decode(data[".env.DB_USER"]).decode(), base64.b64decode(data["db-password"]).decode()
            if pair not in seen:
                seen.append(pair)
            return pair

        def metric(operation: str) -> float:
            return renewer.metrics().get(f'token_operations_total{{kind="vault-lease",operation="{operation}"}}', 0)
        first = login()
        assert database.login(*first) == first[0]
        wait_until("the submission's lease was not taken over", lambda: login() != first, LEASE_MAX_TTL_S, renewer)
        own = login()
        own_issued = time.monotonic()
        assert database.login(*own) == own[0]
        wait_until("the service's lease was not renewed", lambda: metric("renew") >= 1, LEASE_MAX_TTL_S, renewer)
        wait_until("no new credentials before the max TTL", lambda: login() != own, LEASE_MAX_TTL_S, renewer)
        assert database.login(*own) == own[0]  # replaced while the old login still works
        time.sleep(max(0.0, own_issued + LEASE_MAX_TTL_S + 3 - time.monotonic()))
        with pytest.raises(TestbedError, match="password authentication failed"):
            database.login(*own)  # that lease ended at its max TTL
        current = login()
        assert database.login(*current) == current[0]  # the job logs in with what its Secret holds now
        api.delete_namespaced_secret(name, "alice")  # the job ends
        wait_until("the lease was not revoked", lambda: metric("revoke") >= 1, 60, renewer)
        with pytest.raises(TestbedError, match="password authentication failed"):
            database.login(*current)
        events = [e for e in api.list_namespaced_event("alice").items if e.involved_object.name == name]
        assert any(e.reason == "SecretsRotated" and "new leased credentials" in e.message for e in events)
        text = renewer.log.read_text() + json.dumps([e.to_dict() for e in events], default=str)
        assert len(seen) >= 3 and not any(password in text for _, password in seen)
    finally:
        renewer.stop()
        if "driver" in locals():
            api.delete_namespaced_pod(driver, "alice", grace_period_seconds=0)


def test_a_notebook_driver_gets_the_secrets_in_a_private_directory_and_its_python_workers_too(
        testbed: Testbed, openbao: OpenBao, team: str, tmp_path: Path) -> None:
    """Client mode, the notebook's own process is the driver (local[2]): the same names work, from a 0700
    directory of 0600 files removed when the notebook exits; its Python workers see them too."""
    import hashlib
    from spark_secrets.testbed.spark import spark_env
    location = f"team/notebook-{time.time_ns() % 10**8}"
    openbao.admin().secrets.kv.v2.create_or_update_secret(location, {"password": PASSWORD, "api": API_KEY})
    env = spark_env(_env(testbed, openbao, tmp_path, team))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "scripts" / "notebook_secrets.py"),
                           f"secret/{location}"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probes = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("NOTEBOOK ")]
    assert [p["role"] for p in probes] == ["driver", "worker", "worker"], proc.stdout
    for probe in probes:
        assert probe["file"] == hashlib.sha256(PASSWORD.encode()).hexdigest()
        assert probe["env"] == hashlib.sha256(API_KEY.encode()).hexdigest()
        assert (probe["dir_mode"], probe["file_mode"]) == ("0o700", "0o600"), probe
    assert not Path(probes[0]["dir"]).exists()  # removed when the notebook exited
    assert PASSWORD not in proc.stdout + proc.stderr and API_KEY not in proc.stdout + proc.stderr
