"""`spark-secrets doctor`'s verdicts that need no server: the report, the renewer comparison, the token
refresher and the duration (the checks against real servers are in tests/test_doctor.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from spark_secrets.check import FAIL, OK, WARN, Check, Report, examine
from spark_secrets.check.lifetimes import Lifetimes
from spark_secrets.check.job import check_duration, check_plugin
from spark_secrets.check.renewservice import RenewServiceView, check_renewer

ROOT = Path(__file__).resolve().parent.parent


def _service(principal: str | None = "spark-renewer/localhost@EXAMPLE.TEST") -> RenewServiceView:
    return RenewServiceView(lease="ns/l", holder="pod-1", renewed_ago_s=2, term_s=15, principal=principal,
                            user="system:serviceaccount:ns:r", groups=(), namespaces=None)


def test_a_report_fails_only_on_a_failure_and_speaks_json() -> None:
    report = Report([Check("a", OK, "fine"), Check("b", WARN, "hm", "do x")])
    assert report.exit_status == 0 and report.summary() == "nothing would fail (2 checks, 1 warnings)"
    report.add(Check("c", FAIL, "broken", "fix it"))
    assert report.exit_status == 1 and report.summary() == "1 of 3 checks failed"
    assert [c.line() for c in report.checks] == ["✔ a: fine", "! b: hm\n    fix: do x", "✗ c: broken\n    fix: fix it"]
    assert json.loads(report.to_json())["checks"][2] == {"name": "c", "status": "fail", "detail": "broken",
                                                         "fix": "fix it"}


@pytest.mark.parametrize(("would_name", "configured", "service", "status", "text"), [
    ("spark-renewer", "spark-renewer", _service(), OK, "the renew service's principal"),
    ("spark-renewer/other@EXAMPLE.TEST", "spark-renewer/other@EXAMPLE.TEST", _service(), OK, "principal"),
    ("alice", None, _service(), FAIL, "spark.secrets.renewer unset: yourself"),
    ("bob", "bob", _service(), FAIL, "but the renew service is spark-renewer/localhost@EXAMPLE.TEST"),
    ("alice", None, None, WARN, "only you can renew them"),
    ("spark-renewer", "spark-renewer", _service(None), OK, "principal is unknown here"),
])
def test_the_renewer_the_tokens_would_name_against_the_service(would_name: str, configured: str | None,
                                                               service: RenewServiceView | None, status: str,
                                                               text: str) -> None:
    check = check_renewer(would_name, configured, service)
    assert check.status == status and text in check.detail
    if status == FAIL:
        assert check.fix == "--conf spark.secrets.renewer=spark-renewer"


@pytest.mark.parametrize(("mode", "master", "jar", "refresh", "status"), [
    ("cluster", "k8s://https://api:6443", None, True, FAIL),
    ("cluster", "k8s://https://api:6443", "/opt/spark/jars/p.jar", True, OK),
    ("cluster", "k8s://https://api:6443", "none", True, WARN),
    ("cluster", "k8s://https://api:6443", "/opt/p.jar", False, WARN),
    (None, "k8s://https://api:6443", None, True, WARN),  # client mode: executors in pods have none
    ("client", "k8s://https://api:6443", "/opt/p.jar", True, OK),
    (None, "local[2]", None, True, OK),
])
def test_the_token_refresher(mode: str | None, master: str, jar: str | None, refresh: bool, status: str) -> None:
    assert check_plugin(mode, master, jar, refresh).status == status


def test_the_duration_against_the_token_lifetimes() -> None:
    day, lifetimes = dt.timedelta(days=1), Lifetimes(renew_ms=3_600_000, max_ms=7 * 86_400_000)
    assert check_duration(day, None, True).status == WARN  # without --probe nothing is known
    assert check_duration(day, lifetimes, True).status == OK
    failed = check_duration(day, lifetimes, False)
    assert failed.status == FAIL and "a 1d job outlives its tokens (1h without renewal)" in failed.detail
    assert check_duration(dt.timedelta(minutes=30), lifetimes, False).status == OK


def test_a_bad_setting_is_a_failed_check_and_nothing_is_asked() -> None:
    asked: list[str] = []

    def kube():  # type: ignore[no-untyped-def]
        asked.append("kube")
        raise AssertionError("not to be called")

    report = examine({"spark.secrets.layout": "sideways"}, kube)
    assert [(c.name, c.status) for c in report.checks] == [("settings", FAIL)]
    assert "spark.secrets.layout='sideways' is not a layout" in report.checks[0].detail and asked == []


def test_the_cli_exits_2_on_bad_input_and_1_on_a_failed_check(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "spark_secrets", "doctor"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "KUBECONFIG": str(tmp_path / "none"),
           "KRB5CCNAME": f"FILE:{tmp_path / 'cc'}", "HOME": str(tmp_path)}
    bad = subprocess.run([*run, "--duration", "soon", "--"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "spark-secrets: error: --duration='soon' is not a duration: write it like 90s, 30min, 12h or 7d"]
    failed = subprocess.run([*run, "--json", "--", "--conf", "spark.secrets.hadoop.filesystems=hdfs://nn:8020"],
                            capture_output=True, text=True, env=env)
    verdict = json.loads(failed.stdout)
    assert failed.returncode == 1 and not verdict["ok"]
    assert {c["name"]: c["status"] for c in verdict["checks"]}["ticket"] == FAIL
