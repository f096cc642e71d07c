"""The renew service learns each token's real expiry at first sight (issue 13).

A submission estimates the first expiry (issue date + an interval from the client's Hadoop conf, the
setting, or one day). The HA NameNode renews every 20 s (max 40 s) and the client is not told: the
test bed's client configuration carries no token lifetimes. Whether the estimate is longer (the
default day) or shorter (a wrong value in the client's ``HADOOP_CONF_DIR``) than the real interval,
the Secret's current token must be accepted by the NameNode every second for three max lifetimes,
while the renew service is SIGKILLed at random moments and restarted within a fraction of the renew
interval. A token obtained the same way that nobody renews is checked beside it: it must fail at the
NameNode's interval, so the checker can fail and the estimate really is wrong.
"""

from __future__ import annotations

import base64
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.login.kerberos import current_ticket_cache
from spark_secrets.kube.client import KubeClient
from spark_secrets.secrets.tokensecret import parse_rfc3339
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.bed import RENEWER, Testbed
from spark_secrets.testbed.hadoop import SecureHdfs, write_client_conf
from submit_steps.submission import Submission

from renewers import RenewerProcess
from conftest import KEY, MAX_LIFETIME_S

pytestmark = pytest.mark.testbed

RENEW_INTERVAL_S = 20


@dataclass
class Checks:
    """Results of asking the NameNode, once a second, whether a token still works."""

    ok: int = 0
    failed: list[tuple[float, str]] = field(default_factory=list)


def _accepted(cluster: SecureHdfs, token_file: bytes) -> str | None:
    """None when a NameNode accepts the file's WebHDFS token (no Kerberos at all), else why not."""
    token = Credentials.from_bytes(token_file).tokens["ha-webhdfs:ns1"]
    answers = []
    for url in reversed(cluster.webhdfs_urls):  # the active one first; a standby answers StandbyException
        try:
            resp = requests.get(f"{url}/webhdfs/v1/user/alice", timeout=5,
                                params={"op": "GETFILESTATUS", "delegation": token.encode_url()})
        except requests.RequestException as exc:
            answers.append(type(exc).__name__)
            continue
        if resp.status_code == 200:
            return None
        answers.append(f"HTTP {resp.status_code} {resp.text[:600]}")
    return "; ".join(answers)


def _check_every_second(cluster: SecureHdfs, read: Callable[[], bytes], seconds: float, results: Checks) -> None:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        tick = time.monotonic()
        try:
            why = _accepted(cluster, read())
        except Exception as exc:  # noqa: BLE001 - a failed check, whatever the cause
            why = f"{type(exc).__name__}: {exc}"
        if why is None:
            results.ok += 1
        else:
            results.failed.append((round(time.monotonic() - began, 1), why))
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))


ESTIMATES = ("default-day", "hadoop-conf-5s")


def test_secrets_stay_valid_through_random_kills_whatever_the_estimate(
        testbed: Testbed, ha_hdfs: SecureHdfs, renewer_rbac: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs at once under one service, one for each estimate: a longer one (the default day) and a
    shorter one (a wrong value in the submitter's ``HADOOP_CONF_DIR``) than the real interval."""
    assert testbed.kube is not None
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{testbed.ticket_cache('alice')}")
    alice = KubeClient.from_config(str(testbed.kube.kubeconfig("alice", namespace="alice")))
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(testbed.kube.kubeconfig("admin"))))
    names: dict[str, str] = {}
    for estimate in ESTIMATES:
        conf_dir = write_client_conf(tmp_path / f"client-conf-{estimate}", ha_hdfs)
        assert "delegation.token" not in (conf_dir / "hdfs-site.xml").read_text()  # the client is not told
        if estimate == "hadoop-conf-5s":  # a wrong value in the submitter's conf: shorter than the real 20 s
            site = conf_dir / "hdfs-site.xml"
            site.write_text(site.read_text().replace(
                "</configuration>", "<property><name>dfs.namenode.delegation.token.renew-interval</name>"
                                    "<value>5000</value></property></configuration>"))
        monkeypatch.setenv("HADOOP_CONF_DIR", str(conf_dir))
        conf = {"spark.app.name": f"first-sight-{estimate}", "spark.kubernetes.namespace": "alice",
                "spark.secrets.hadoop.filesystems": "hdfs://ns1", "spark.secrets.renewer": RENEWER,
                "spark.secrets.plugin.jar": "none"}  # no spark.secrets.renewInterval, as a new user submits
        name = names[estimate] = Submission(conf, alice, progress=lambda _: None).prepare().secrets[0].name
        secret = api.read_namespaced_secret(name, "alice")
        notes = secret.metadata.annotations
        issued = Credentials.from_bytes(base64.b64decode(secret.data[KEY]))
        issue_ms = min(t.decode_identifier().issue_date for t in issued if t.is_delegation_token)
        guessed_s = (parse_rfc3339(notes["spark-secrets.io/expiry"]) - issue_ms) / 1000
        assert notes["spark-secrets.io/expiry-estimated"] == "true"
        # Cut at the max date (40 s), the default day still says "longer than the real 20 s".
        assert guessed_s > RENEW_INTERVAL_S if estimate == "default-day" else guessed_s < RENEW_INTERVAL_S

    # The control: the same kind of token, obtained for alice, that nobody renews.
    ticket = current_ticket_cache()
    control = obtain_tokens(["hdfs://ns1"], RENEWER, SpnegoAuth(ticket.credentials),
                            conf=HadoopConf.load(tmp_path / "client-conf-default-day"))
    control_bytes = control.to_bytes()

    def current(name: str) -> Callable[[], bytes]:
        return lambda: base64.b64decode(api.read_namespaced_secret(name, "alice").data[KEY])

    seconds = 3 * MAX_LIFETIME_S + 5
    checks = {estimate: Checks() for estimate in ESTIMATES}
    control_checks = Checks()
    checkers = [threading.Thread(target=_check_every_second, args=(ha_hdfs, current(names[e]), seconds, checks[e]),
                                 daemon=True) for e in ESTIMATES]
    checkers.append(threading.Thread(target=_check_every_second, args=(
        ha_hdfs, lambda: control_bytes, 2 * RENEW_INTERVAL_S, control_checks), daemon=True))
    for thread in checkers:
        thread.start()
    rng = random.Random()
    renewers = [RenewerProcess(testbed, ha_hdfs, tmp_path / "r0")]
    kills, began = 0, time.monotonic()
    try:
        while time.monotonic() - began < seconds - 5:
            time.sleep(rng.uniform(3, 10))
            renewers[-1].proc.kill()  # SIGKILL: no clean shutdown, wherever it is
            renewers[-1].proc.wait()
            kills += 1
            time.sleep(rng.uniform(0, 0.1 * RENEW_INTERVAL_S))  # back within a tenth of the renew interval
            renewers.append(RenewerProcess(testbed, ha_hdfs, tmp_path / f"r{len(renewers)}"))
        for thread in checkers:
            thread.join()
        logs = "\n".join(r.log.read_text() for r in renewers)
    finally:
        for r in renewers:
            r.stop()
        for name in names.values():
            api.delete_namespaced_secret(name, "alice")

    assert kills >= 8, kills
    for estimate, name in names.items():
        failed = checks[estimate].failed
        assert failed == [], f"{estimate}: {len(failed)} failed checks, first {failed[:3]}\n{logs[-3000:]}"
        assert checks[estimate].ok >= seconds - 10, estimate
        # It lived past the max lifetime on new tokens, not on one renewal.
        assert f"re-issued alice/{name}" in logs, estimate
    # The renewal at first sight said the estimate was off, naming the real interval and the setting.
    assert f"renew interval is about {RENEW_INTERVAL_S}s" in logs and "spark.secrets.renewInterval=20s" in logs
    # One warning for each job: the default day cut at the max date, and the wrong 5 s (in whole seconds).
    assert "the submission estimated at least" in logs, logs[-3000:]
    assert re.search(r"the submission estimated [4-6]s;", logs), logs[-3000:]
    # Control: the unrenewed token failed once the NameNode's interval (not the estimate) had passed.
    assert control_checks.failed, "the unrenewed token never failed: the checker cannot see expiry"
    first_failure = control_checks.failed[0][0]
    assert RENEW_INTERVAL_S - 5 <= first_failure <= RENEW_INTERVAL_S + 3, control_checks.failed[:2]
    assert "expired" in control_checks.failed[0][1]
