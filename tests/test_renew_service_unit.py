"""The renew service's main loop on metadata-only events (injected token kind, no API server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.credentials import Credentials
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.watch import LISTING, PAGE, SYNC, SecretEvent
from spark_secrets.token import Token
from spark_secrets.tokensecret import schedule_annotations

from test_renewal_unit import DAY, ISSUED, _secret


class _Kind:
    name = "fake"

    def __init__(self) -> None:
        self.cancelled: list[bytes] = []

    def owns_token(self, token: Token) -> bool:
        return True

    def owns_target(self, target: str) -> bool:
        return True

    def obtain(self, targets: Any, owner: str) -> Credentials:
        raise AssertionError("not expected")

    def renew(self, token: Token) -> int:
        raise AssertionError("not expected")

    def cancel(self, token: Token) -> None:
        assert token.password == b""  # the service never held the password
        self.cancelled.append(token.identifier)


def _meta(name: str) -> dict[str, object]:
    creds = _secret(ISSUED + DAY).credentials
    assert creds is not None
    notes = {k: v for k, v in schedule_annotations(creds, 4_000_000_000_000, renewed_at_ms=ISSUED).items() if v}
    return {"metadata": {"namespace": "alice", "name": name, "uid": f"u-{name}", "resourceVersion": "1",
                         "annotations": {**notes, "spark-secrets.io/filesystems": "hdfs://ns1"}}}


def _service(kind: _Kind) -> RenewService:
    return RenewService(object(), lambda: None, namespaces=["alice"], renewer="spark-renewer",  # type: ignore[arg-type]
                        kinds=[kind], clock=lambda: ISSUED / 1000)


def test_a_paged_list_with_an_empty_page_loses_nothing_and_a_relist_cancels_only_the_gone() -> None:
    kind = _Kind()
    service = _service(kind)
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [_meta("a"), _meta("b")]),
                  SecretEvent(PAGE, "alice", []), SecretEvent(PAGE, "alice", [_meta("c")]),
                  SecretEvent(SYNC, "alice", [])):
        service._handle(event)
    assert sorted(n for _, n in service.secrets) == ["a", "b", "c"] and kind.cancelled == []
    assert service.metrics.ready and service.metrics.tracked == 3
    assert all(not ts.has_data for ts in service.secrets.values())  # metadata only: no token passwords held
    # A relist (after 410 Gone or an outage) that no longer sees b and c: their tokens are cancelled.
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [_meta("a")]),
                  SecretEvent(SYNC, "alice", [])):
        service._handle(event)
    assert sorted(n for _, n in service.secrets) == ["a"] and len(kind.cancelled) == 2


def test_a_deleted_secret_is_cancelled_from_the_metadata_of_the_delete_event() -> None:
    kind = _Kind()
    service = _service(kind)
    service._handle(SecretEvent("DELETED", "alice", [_meta("gone")]))  # never seen before: still cancelled
    assert len(kind.cancelled) == 1


class _Kube:
    """Answers the reads and patches of one Secret the way the API server does (new resourceVersion)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        meta = dict(self.obj["metadata"])
        assert patch["metadata"]["resourceVersion"] == meta["resourceVersion"]  # conditional on what was read
        notes = {**meta["annotations"], **patch["metadata"]["annotations"]}
        meta.update(annotations={k: v for k, v in notes.items() if v is not None},
                    resourceVersion=str(int(meta["resourceVersion"]) + 1))
        self.obj = {**self.obj, "metadata": meta}
        return self.obj


def test_a_renewal_schedules_the_next_one_from_its_own_answer_without_waiting_for_the_watch() -> None:
    import base64

    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    meta = _meta("job")["metadata"]
    meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != "spark-secrets.io/renewed-at"}
    obj = {"metadata": meta, "data": {"hadoop-tokens": base64.b64encode(full.credentials.to_bytes()).decode()}}

    class _Renewing(_Kind):
        def renew(self, token: Token) -> int:
            return ISSUED + 20_000

    kube = _Kube(obj)
    service = RenewService(kube, lambda: None, namespaces=["alice"], renewer="spark-renewer",  # type: ignore[arg-type]
                           kinds=[_Renewing()], clock=lambda: ISSUED / 1000)
    service._handle(SecretEvent(LISTING, "alice", []))
    service._handle(SecretEvent(PAGE, "alice", [obj]))
    service._handle(SecretEvent(SYNC, "alice", []))
    service._run_due()  # first sight: renewed now; no watch event follows (the watch is down)
    assert service.metrics.renewals == 1
    (ts,) = service.secrets.values()
    assert ts.resource_version == "2" and ts.expiry_ms == ISSUED + 20_000 and not ts.has_data
    (due,) = [due for due, _, rv in service._due if rv == "2"]
    assert ISSUED + 14_250 <= due <= ISSUED + 15_000  # the next renewal at 0.75 of 20 s, less up to 5 % jitter


@pytest.mark.parametrize(("option", "message"), [
    (["--ratio", "abc"], "spark-secrets: error: --ratio abc: use a fraction between 0 and 1, e.g. 0.75"),
    (["--lease-duration", "soon"], "spark-secrets: error: --lease-duration='soon' is not a duration"),
    (["--lease", "Not A Lease"], "spark-secrets: error: --lease 'Not A Lease' is not NAMESPACE/NAME"),
    (["--listen", "localhost"], "spark-secrets: error: --listen 'localhost' has no port"),
])
def test_bad_service_options_fail_before_anything_is_contacted(tmp_path: Path, option: list[str], message: str) -> None:
    """The keytab does not even exist: the option is named first, in one line, with exit status 2."""
    run = subprocess.run([sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(tmp_path / "none.keytab"),
                          "--principal", "spark-renewer", "-n", "alice", *option], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith(message), run.stderr
