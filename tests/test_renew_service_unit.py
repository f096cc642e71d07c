"""The renew service's main loop on metadata-only events (injected token kind, no API server)."""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import InvalidTokenError, TokenExpiredError
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.watch import LISTING, PAGE, SYNC, SecretEvent
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.secrets.tokensecret import ANNOTATION_VERIFIED, TokenSecret, rfc3339_ms, schedule_annotations

from test_renewal_unit import DAY, ISSUED, _secret

SEAL = Seal(b"k" * 32)


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


def _meta(name: str, sealed: bool = True, seal: Seal = SEAL) -> dict[str, Any]:
    """A token Secret's metadata; ``sealed``: as the service leaves it once it renewed the tokens."""
    creds = _secret(ISSUED + DAY).credentials
    assert creds is not None
    notes = {k: v for k, v in schedule_annotations(creds, 4_000_000_000_000, renewed_at_ms=ISSUED).items() if v}
    obj: dict[str, Any] = {"metadata": {"namespace": "alice", "name": name, "uid": f"u-{name}", "resourceVersion": "1",
                                        "labels": {"spark-secrets.io/owner": "alice"},
                                        "annotations": {**notes, "spark-secrets.io/filesystems": "hdfs://ns1"}}}
    if sealed:
        obj["metadata"]["annotations"][ANNOTATION_VERIFIED] = seal.of(TokenSecret.from_metadata(obj))
    return obj


def _service(kind: _Kind, kube: object = None) -> RenewService:
    return RenewService(ServiceConfig(renewer="spark-renewer", namespaces=("alice",)), kube or object(),  # type: ignore[arg-type]
                        [kind], clock=lambda: ISSUED / 1000, seal=SEAL)


def test_a_paged_list_with_an_empty_page_loses_nothing_and_a_relist_cancels_only_the_gone() -> None:
    kind = _Kind()
    service = _service(kind)
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [_meta("a"), _meta("b")]),
                  SecretEvent(PAGE, "alice", []), SecretEvent(PAGE, "alice", [_meta("c")]),
                  SecretEvent(SYNC, "alice", [])):
        service.handle(event)
    assert sorted(n for _, n in service.secrets) == ["a", "b", "c"] and kind.cancelled == []
    assert service.metrics.ready and service.metrics.tracked == 3
    assert all(not ts.has_data for ts in service.secrets.values())  # metadata only: no token passwords held
    # A relist (after 410 Gone or an outage) that no longer sees b and c: their tokens are cancelled.
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [_meta("a")]),
                  SecretEvent(SYNC, "alice", [])):
        service.handle(event)
    assert sorted(n for _, n in service.secrets) == ["a"] and len(kind.cancelled) == 2


def test_a_deleted_secret_is_cancelled_from_the_metadata_of_the_delete_event() -> None:
    kind = _Kind()
    service = _service(kind)
    service.handle(SecretEvent("DELETED", "alice", [_meta("gone")]))  # never seen before: still cancelled
    assert len(kind.cancelled) == 1


def test_handles_the_service_never_sealed_are_never_cancelled() -> None:
    """The cancel attack: someone else's password-less handles copied into a Secret of one's own, then deleted."""
    kind = _Kind()
    service = _service(kind)
    service.handle(SecretEvent("DELETED", "alice", [_meta("copied", sealed=False)]))
    forged = _meta("forged", seal=Seal(b"not the service's key" * 2))
    service.handle(SecretEvent("DELETED", "alice", [forged]))
    moved = _meta("elsewhere")
    moved["metadata"]["name"] = "moved"  # a seal is for one Secret (namespace, name, uid), not another
    service.handle(SecretEvent("DELETED", "alice", [moved]))
    edited = _meta("edited")
    edited["metadata"]["labels"]["spark-secrets.io/owner"] = "mallory"  # nor for another owner
    service.handle(SecretEvent("DELETED", "alice", [edited]))
    assert kind.cancelled == []
    service.handle(SecretEvent("DELETED", "alice", [_meta("own")]))  # the control
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
    service = _service(_Renewing(), kube)
    service.handle(SecretEvent(LISTING, "alice", []))
    service.handle(SecretEvent(PAGE, "alice", [obj]))
    service.handle(SecretEvent(SYNC, "alice", []))
    service.run_due()  # first sight: renewed now; no watch event follows (the watch is down)
    assert service.metrics.renewals == 1
    (ts,) = service.secrets.values()
    assert ts.resource_version == "2" and ts.expiry_ms == ISSUED + 20_000 and not ts.has_data and ts.verified
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


def _full(meta: dict[str, Any], creds: Any) -> dict[str, Any]:
    import base64

    return {"metadata": meta["metadata"], "data": {"hadoop-tokens": base64.b64encode(creds.to_bytes()).decode()}}


class _Events(_Kube):
    def __init__(self, obj: dict[str, Any]) -> None:
        super().__init__(obj)
        self.events: list[dict[str, Any]] = []

    def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.events.append(event)


class _Refusing(_Kind):
    """A token server that refuses renewals with ``error``; records obtains (re-issues)."""

    def __init__(self, error: Exception | None) -> None:
        super().__init__()
        self.error, self.obtained, self.renewed = error, [], 0
        self.obtained: list[str] = []

    def renew(self, token: Token) -> int:
        self.renewed += 1
        if self.error is not None and not self.obtained:  # the tokens it issued itself renew
            raise self.error
        return ISSUED + 8 * DAY  # after the test's clock, before the new tokens' max date

    def obtain(self, targets: Any, owner: str) -> Credentials:
        self.obtained.append(owner)
        fresh = _secret(ISSUED + DAY, max_lifetime=14 * DAY).credentials  # a later max date
        assert fresh is not None
        return fresh


def _run(kind: _Refusing, obj: dict[str, Any], *, now: int = ISSUED + 7 * DAY - 1000) -> tuple[RenewService, _Events]:
    kube = _Events(obj)
    service = RenewService(ServiceConfig(renewer="spark-renewer", namespaces=("alice",)), kube,  # type: ignore[arg-type]
                           [kind], clock=lambda: now / 1000, seal=SEAL)
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [obj]), SecretEvent(SYNC, "alice", [])):
        service.handle(event)
    service.run_due()
    return service, kube


@pytest.mark.parametrize("error", [InvalidTokenError("NameNode refused renew: ... with wrong password"),
                                   TokenExpiredError("NameNode refused renew: the token has expired")])
def test_a_token_never_verified_is_not_reissued_when_its_server_will_not_renew_it(error: Exception) -> None:
    """Inside the re-issue window: a forged password, or a claim to be past the max date, gets nothing."""
    creds = _secret(ISSUED + DAY).credentials
    kind = _Refusing(error)
    service, kube = _run(kind, _full(_meta("forged", sealed=False), creds))
    assert kind.obtained == [] and service.metrics.reissues == 0 and service.metrics.refusals == 1
    assert [e["reason"] for e in kube.events] == ["TokenRefused"]
    # The control: the same refusal for a token the service verified before (its seal) is re-issued for the owner.
    kind = _Refusing(error)
    service, kube = _run(kind, _full(_meta("verified"), creds))
    assert kind.obtained == ["alice"] and service.metrics.reissues == 1 and service.metrics.refusals == 0


def test_a_token_of_someone_else_is_refused_before_any_server_is_asked() -> None:
    from spark_secrets.hadoop.identifier import DelegationTokenIdentifier

    ident = DelegationTokenIdentifier("bob", "spark-renewer", "", ISSUED, ISSUED + 7 * DAY, 5, 9)
    token = Token(ident.encode(), b"x" * 20, "HDFS_DELEGATION_TOKEN", "ha-hdfs:ns1")
    kind = _Refusing(None)
    service, kube = _run(kind, _full(_meta("planted", sealed=False), Credentials({"ha-hdfs:ns1": token})))
    assert (kind.renewed, kind.obtained, service.metrics.refusals) == (0, [], 1)
    assert "holds tokens of bob, but its owner is alice" in kube.events[0]["message"]
    assert not service.secrets  # not looked at again until it changes
    # The control: alice's own token in the same Secret is renewed and sealed (then re-issued in the window).
    kind = _Refusing(None)
    service, kube = _run(kind, _full(_meta("own", sealed=False), _secret(ISSUED + DAY).credentials))
    assert kind.renewed >= 1 and kind.obtained == ["alice"] and service.metrics.refusals == 0


class _Hdfs(_Refusing):
    def owns_token(self, token: Token) -> bool:
        return token.has_hadoop_identifier


class _Kafka(_Refusing):
    """A Kafka cluster: a token's owner and dates are only what its brokers say (``said``; None: unknown)."""

    name = "kafka"

    def __init__(self, said: TokenFacts | None) -> None:
        super().__init__(None)
        self.said, self.asked = said, 0

    def owns_token(self, token: Token) -> bool:
        return token.kind == "KAFKA_DELEGATION_TOKEN"

    def facts(self, token: Token) -> TokenFacts | None:
        self.asked += 1
        return self.said


@pytest.mark.parametrize(("said", "refusal"), [
    (TokenFacts("bob", ISSUED, ISSUED + 3 * DAY), "holds tokens of bob, but its owner is alice"),
    (None, "holds a kafka token (", ),
    (TokenFacts("alice", ISSUED, ISSUED + 3 * DAY), None),  # the control
])
def test_a_kafka_token_is_bound_to_the_owner_its_brokers_name(said: TokenFacts | None, refusal: str | None) -> None:
    """A Kafka token's identifier is only its id: whose it is and its max date come from the brokers, asked as a
    renewer. Another user's token (or one the brokers do not show the service) is refused before anything is
    renewed; alice's own is renewed with her HDFS token, and the Secret's max date is the Kafka token's."""
    creds = _secret(ISSUED + DAY).credentials
    assert creds is not None
    creds.add(Token(b"kafka-token-id", b"aG1hYw==", "KAFKA_DELEGATION_TOKEN", "kafka.server.delegation.token.c1"))
    hdfs, kafka = _Hdfs(None), _Kafka(said)
    kube = _Events(_full(_meta("streaming", sealed=False), creds))
    service = RenewService(ServiceConfig(renewer="spark-renewer", namespaces=("alice",)), kube,  # type: ignore[arg-type]
                           [hdfs, kafka], clock=lambda: (ISSUED + 1000) / 1000, seal=SEAL)
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [kube.obj]),
                  SecretEvent(SYNC, "alice", [])):
        service.handle(event)
    service.run_due()
    assert kafka.asked == 1
    if refusal is not None:
        assert (hdfs.renewed, kafka.renewed, service.metrics.refusals) == (0, 0, 1)
        assert refusal in kube.events[0]["message"] and "kafka-token-id" not in str(kube.events)
        return
    assert (hdfs.renewed, kafka.renewed, service.metrics.refusals, service.metrics.renewals) == (1, 1, 0, 1)
    notes = kube.obj["metadata"]["annotations"]
    assert notes["spark-secrets.io/max-date"] == rfc3339_ms(ISSUED + 3 * DAY)  # the brokers' word, not HDFS's 7 days
    assert len(notes["spark-secrets.io/tokens"].split()) == 2  # both handles, for the cancel once it is gone


def test_the_seal_is_hmac_sha256_as_before_so_seals_written_by_earlier_versions_still_hold() -> None:
    """The seal (an HMAC object per key, copied per seal) gives exactly the standard library's HMAC (RFC 2104)."""
    key = hmac.new(b"k" * 32, b"spark-secrets seal v1", hashlib.sha256).digest()
    digest = hmac.new(key, "alice\njob\nu-1\nalice\nhandles".encode(), hashlib.sha256).digest()
    assert SEAL.sign("alice", "job", "u-1", "alice", "handles") == \
        "v1:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
    long_key = Seal(b"x" * 200)  # longer than a SHA-256 block before derivation: derived to 32 bytes first
    assert long_key.holds(TokenSecret.from_metadata(_meta("a", seal=long_key)))


def test_a_copied_seal_holds_for_no_other_owner_or_secret_and_another_key_makes_none() -> None:
    """The seal's copied HMAC state stays bound to its fields: alice's seal moved onto a Secret relabelled bob's,
    or onto another Secret of hers, or made with another service's key, does not hold; the control, her own, does."""
    own = _meta("a")
    assert SEAL.holds(TokenSecret.from_metadata(own))  # the control
    seal = own["metadata"]["annotations"][ANNOTATION_VERIFIED]
    relabelled = _meta("a", sealed=False)
    relabelled["metadata"]["labels"]["spark-secrets.io/owner"] = "bob"
    relabelled["metadata"]["annotations"][ANNOTATION_VERIFIED] = seal
    other = _meta("b", sealed=False)
    other["metadata"]["annotations"][ANNOTATION_VERIFIED] = seal
    for forged in (relabelled, other, _meta("a", seal=Seal(b"another service's key!"))):
        assert not SEAL.holds(TokenSecret.from_metadata(forged)), forged["metadata"]
    assert SEAL.holds(TokenSecret.from_metadata(own))  # a copy per seal: checking others changed nothing


def test_a_tracked_secret_shares_its_key_and_filesystems_with_the_others() -> None:
    """Memory per Secret at 100,000 of them: the view and the schedule hold one key tuple, the Secrets one targets tuple."""
    service = _service(_Kind())
    for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [_meta("a"), _meta("b")]),
                  SecretEvent(PAGE, "alice", [_meta("a") | {"metadata": {**_meta("a")["metadata"], "resourceVersion": "2"}}]),
                  SecretEvent(SYNC, "alice", [])):
        service.handle(event)
    keys = {id(k): k for k in service.secrets}
    assert all(id(key) in keys for _, key, rv in service._due if service.secrets[key].resource_version == rv)
    a, b = service.secrets["alice", "a"], service.secrets["alice", "b"]
    assert a.filesystems == ("hdfs://ns1",) and a.filesystems is b.filesystems and a.resource_version == "2"


def test_the_cyclic_gc_is_as_it_was_once_the_list_is_done() -> None:
    """A list runs with the GC's first threshold raised and its Secrets frozen out of collections: both end with it."""
    before = gc.get_threshold()
    service = _service(_Kind())
    service.handle(SecretEvent(LISTING, "alice", []))
    service.handle(SecretEvent(PAGE, "alice", [_meta("a")]))
    assert gc.get_threshold()[0] > before[0] and gc.get_freeze_count() > 0
    service.handle(SecretEvent(SYNC, "alice", []))
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
