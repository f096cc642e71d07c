"""A standby replica renews, and only renews, a sealed token once the leader is late (spark_secrets.renew.standby):
the service as a standby, fed the Secret's versions as its watch would, an injected clock, a fake API server and a
fake token server; no test bed."""

from __future__ import annotations

import base64
import copy
import logging
from typing import Any

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import InvalidTokenError, KerberosError, KubernetesNotFound, NameNodeUnavailable
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.policy import Policy
from spark_secrets.renew.rollover import Step
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.watch import DELETED, LISTING, MODIFIED, PAGE, SYNC, SecretEvent
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import ANNOTATION_VERIFIED, TokenSecret, schedule_annotations

import test_rollover_unit as rollover_sim
from test_renewal_unit import DAY, HOUR, ISSUED, PASSWORD, _secret

SEAL = Seal(b"k" * 32)
MINUTE = 60_000
MAX_DATE = ISSUED + 7 * DAY
#: The leader renewed at T0 for a day: the margin is (1 - 0.75) x 1 day = 6 h, so the standby steps in at 3 h left.
T0 = ISSUED + DAY
LATE = T0 + DAY - 3 * HOUR
KEY = ("alice", "job")


class _Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


class _Server:
    """A token server: a renewal moves the expiry to min(now + a day, max date); records every call."""

    name = "fake"

    def __init__(self, clock: _Clock, error: Exception | None = None, interval: int = DAY) -> None:
        self.clock, self.error, self.interval = clock, error, interval
        self.renewed: list[int] = []  # when each renewal was asked for
        self.obtained: list[str] = []
        self.cancelled: list[bytes] = []

    def owns_token(self, token: Token) -> bool:
        return True

    def owns_target(self, target: str) -> bool:
        return True

    def renew(self, token: Token) -> int:
        self.renewed.append(self.clock.ms)
        if self.error is not None:
            raise self.error
        return min(self.clock.ms + self.interval, MAX_DATE)

    def obtain(self, targets: Any, owner: str) -> Credentials:
        self.obtained.append(owner)
        raise KerberosError("no new tokens in this test")

    def cancel(self, token: Token) -> None:
        self.cancelled.append(token.identifier)


class _Kube:
    """The API server: each Secret as last written; records reads and writes (a standby must make none)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.reads: list[str] = []
        self.writes: list[Any] = []

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads.append(name)
        if name not in self.objects:
            raise KubernetesNotFound(f"secrets {name!r} not found")
        return self.objects[name]

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(patch)
        raise AssertionError("the Secret was written")

    def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.writes.append(event)


def _object(renewed_at: int, expiry: int, version: str = "1", *, seal: Seal | None = SEAL, name: str = "job",
            creds: Credentials | None = None) -> dict[str, Any]:
    """A token Secret as the leader leaves it once it renewed at ``renewed_at`` (``seal`` None: never sealed)."""
    held = _secret(ISSUED + DAY).credentials
    assert held is not None
    notes = {k: v for k, v in schedule_annotations(held, expiry, renewed_at_ms=renewed_at).items() if v}
    obj: dict[str, Any] = {
        "metadata": {"namespace": "alice", "name": name, "uid": f"u-{name}", "resourceVersion": version,
                     "labels": {"spark-secrets.io/owner": "alice"},
                     "annotations": {**notes, "spark-secrets.io/filesystems": "hdfs://ns1"}},
        "data": {"hadoop-tokens": base64.b64encode((creds or held).to_bytes()).decode()}}
    if seal is not None:
        obj["metadata"]["annotations"][ANNOTATION_VERIFIED] = seal.of(TokenSecret.from_metadata(obj))
    return obj


class _Replica:
    """A replica that does not hold the Lease (unless ``leading`` is set), turn by turn."""

    def __init__(self, *objects: dict[str, Any], error: Exception | None = None, policy: Policy | None = None,
                 interval: int = DAY) -> None:
        self.clock = _Clock(T0)
        self.kube = _Kube()
        self.server = _Server(self.clock, error, interval)
        self.leading = False
        self.service = RenewService(  # type: ignore[arg-type]
            ServiceConfig(renewer="spark-renewer", namespaces=("alice",), policy=policy or Policy(jitter=0)),
            self.kube, [self.server], clock=self.clock, seal=SEAL, leader=lambda: self.leading)
        for obj in objects:
            self.kube.objects[obj["metadata"]["name"]] = obj
        self.service.handle(SecretEvent(LISTING, "alice", []))
        self.service.handle(SecretEvent(PAGE, "alice", [{"metadata": o["metadata"]} for o in objects]))
        self.service.handle(SecretEvent(SYNC, "alice", []))

    def written(self, obj: dict[str, Any]) -> None:
        """The leader wrote a new version: the API server has it, and the watch brings its metadata."""
        self.kube.objects[obj["metadata"]["name"]] = obj
        self.service.handle(SecretEvent(MODIFIED, "alice", [{"metadata": obj["metadata"]}]))

    def at(self, ms: int) -> int:
        """One turn of the main loop at ``ms``: how many renewals the token server has seen."""
        self.clock.ms = ms
        self.service.run_due()
        return len(self.server.renewed)


def test_a_leader_renewing_on_time_leaves_the_standby_nothing_to_do() -> None:
    """The control: three renewals by the leader at 0.75 of the day, the standby looking every 10 minutes."""
    replica = _Replica(_object(T0, T0 + DAY))
    renewed_at, version = T0, 1
    for now in range(T0, T0 + 3 * DAY, 10 * MINUTE):
        if now >= renewed_at + DAY * 3 // 4:  # the leader's renewal, seen by the watch
            renewed_at, version = now, version + 1
            replica.written(_object(now, now + DAY, str(version)))
        assert replica.at(now) == 0
    assert version == 4 and replica.kube.reads == [] and replica.service.metrics.standby_renewals == 0


def test_with_the_leader_gone_the_standby_renews_once_within_half_the_margin_and_writes_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    replica = _Replica(_object(T0, T0 + DAY))
    caplog.set_level(logging.INFO, "spark_secrets.renew")
    assert replica.at(T0 + DAY * 3 // 4 + MINUTE) == 0  # the leader's renewal is due: it is the leader's to do
    assert replica.at(LATE - MINUTE) == 0 and replica.kube.reads == []  # late, but not yet half the margin
    assert replica.at(LATE + MINUTE) == 1
    assert replica.kube.reads == ["job"] and replica.kube.writes == []  # read the token file, wrote nothing
    assert replica.service.metrics.standby_renewals == 1 and replica.service.metrics.renewals == 0
    assert replica.service.metrics.by_kind == {("fake", "renew"): 1}
    (line,) = [r.getMessage() for r in caplog.records if "standby renewed" in r.getMessage()]
    assert "alice/job" in line and "sequence 5" in line
    held = _secret(ISSUED + DAY).credentials
    assert held is not None
    for secret in (PASSWORD.hex(), base64.b64encode(PASSWORD).decode(), held.tokens["ha-hdfs:ns1"].encode_url()):
        assert secret not in caplog.text  # never the password, nor the token that holds it
    # Not again at the next turns: the server's answer (a day from LATE + 1 min) is kept in memory.
    assert replica.at(LATE + MINUTE + 1_000) == 1 and replica.at(LATE + 2 * HOUR) == 1
    answered = LATE + MINUTE + DAY
    assert replica.service.standby.notes[KEY].expiry_ms == answered
    assert replica.at(answered - 3 * HOUR - MINUTE) == 1
    assert replica.at(answered - 3 * HOUR + MINUTE) == 2  # that expiry in turn came close
    assert replica.kube.writes == [] and replica.service.secrets[KEY].resource_version == "1"


def test_a_token_of_twenty_seconds_never_lapses_under_a_standby_alone() -> None:
    """The test bed's tokens (renewable for 20 s): half the margin is 2.5 s, and the standby's passes, sparse for
    tokens of a day, must come often enough for it."""
    replica = _Replica(_object(T0, T0 + 20_000), interval=20_000)
    expiry = T0 + 20_000
    for now in range(T0, T0 + 5 * MINUTE, 100):
        before = len(replica.server.renewed)
        if replica.at(now) > before:
            expiry = now + 20_000
        assert now < expiry - 1_000, "the token came within a second of lapsing"
    assert 15 <= len(replica.server.renewed) <= 18  # about every 17.5 s: once per answered expiry
    assert replica.kube.writes == []


def test_a_standby_renews_but_never_reissues_a_token_past_its_reissue_window() -> None:
    """With the re-issue window 3 days before the max date, the leader would have re-issued a day ago."""
    renewed_at = ISSUED + 3 * DAY + 12 * HOUR
    replica = _Replica(_object(renewed_at, renewed_at + DAY), policy=Policy(reissue_before_ms=3 * DAY, jitter=0))
    assert replica.at(renewed_at + DAY - 3 * HOUR + MINUTE) == 1  # ISSUED + 4 d 9 h: past the window's opening
    assert replica.at(renewed_at + 2 * DAY - 6 * HOUR + 2 * MINUTE) == 2  # its answer in turn came close
    assert replica.server.obtained == [] and replica.kube.writes == []
    # The control: the same replica, once it leads, re-issues (its new tokens' server is down here).
    replica.leading = True
    replica.at(renewed_at + 2 * DAY - 5 * HOUR)
    assert replica.server.obtained == ["alice"]


def test_the_standby_cancels_nothing_itself_and_forgets_a_deleted_secret() -> None:
    """The standby's renewals leave the tokens to the delete path (service.handle, every replica)."""
    obj = _object(T0, T0 + DAY)
    replica = _Replica(obj)
    assert replica.at(LATE + MINUTE) == 1 and KEY in replica.service.standby.notes
    replica.service.handle(SecretEvent(DELETED, "alice", [{"metadata": obj["metadata"]}]))
    del replica.kube.objects["job"]
    cancelled = list(replica.server.cancelled)
    for now in range(LATE + 2 * MINUTE, LATE + 2 * DAY, 10 * MINUTE):
        assert replica.at(now) == 1
    assert replica.server.cancelled == cancelled and replica.service.standby.notes == {}
    assert replica.server.obtained == [] and replica.kube.writes == []


def test_a_secret_this_service_never_sealed_is_never_renewed_by_the_standby() -> None:
    """The attack: a Secret written to look due (unsealed, forged, a seal moved from elsewhere, or a sealed
    Secret's token file swapped) must not make the standby call a token server."""
    unsealed = _object(T0, T0 + DAY, seal=None, name="unsealed")
    forged = _object(T0, T0 + DAY, seal=Seal(b"not the service's key" * 2), name="forged")
    moved = _object(T0, T0 + DAY, name="elsewhere")
    moved["metadata"].update(name="moved", uid="u-moved")  # a seal is for one Secret, not another
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", ISSUED, MAX_DATE, 6, 2)
    other = Token(ident.encode(), b"x" * 20, "HDFS_DELEGATION_TOKEN", "ha-hdfs:ns1")
    swapped = _object(T0, T0 + DAY, name="swapped", creds=Credentials({"ha-hdfs:ns1": other}))  # sealed notes, other file
    replica = _Replica(unsealed, forged, moved, swapped)
    assert [replica.service.secrets["alice", n].verified for n in ("unsealed", "forged", "moved", "swapped")] == [
        False, False, False, True]  # the swap shows only in the data
    for now in range(LATE + MINUTE, T0 + DAY, MINUTE):
        assert replica.at(now) == 0
    assert replica.kube.reads == ["swapped"] and replica.kube.writes == []
    # The control: the same, sealed over its own file, is renewed.
    replica = _Replica(unsealed, _object(T0, T0 + DAY, name="sealed"))
    assert replica.at(LATE + MINUTE) == 1 and replica.kube.reads == ["sealed"]


def test_a_newer_version_from_the_leader_drops_the_note() -> None:
    replica = _Replica(_object(T0, T0 + DAY))
    assert replica.at(LATE + MINUTE) == 1
    back = LATE + 2 * HOUR  # the leader is back (late) and renews: version 2
    replica.written(_object(back, back + DAY, "2"))
    assert replica.at(back + MINUTE) == 1 and replica.service.standby.notes == {}
    # The standby's own answer (LATE + 1 min + a day) would be late from LATE + 1 day - 2 h 59 min;
    # version 2's expiry only from back + 1 day - 3 h = LATE + 1 day - 1 h.
    assert replica.at(LATE + DAY - 2 * HOUR) == 1
    assert replica.at(LATE + DAY - HOUR + MINUTE) == 2


def test_a_refusal_is_only_logged_and_an_outage_retried_at_a_bounded_pace(caplog: pytest.LogCaptureFixture) -> None:
    replica = _Replica(_object(T0, T0 + DAY), error=InvalidTokenError("NameNode refused renew: token not found"))
    caplog.set_level(logging.INFO, "spark_secrets.renew")
    for now in range(LATE + MINUTE, T0 + DAY, MINUTE):
        replica.at(now)
    assert len(replica.server.renewed) == 1 and "left to the leader" in caplog.text  # once for this version
    assert replica.server.obtained == [] and replica.kube.writes == [] and replica.service.metrics.standby_renewals == 0

    replica = _Replica(_object(T0, T0 + DAY), error=NameNodeUnavailable("no NameNode answered"))
    for now in range(LATE + MINUTE, LATE + 11 * MINUTE, 500):  # ten minutes of turns twice a second
        replica.at(now)
    assert 10 <= len(replica.server.renewed) <= 20  # 1, 2, 4 ... s apart, then once a minute
    replica.server.error = None
    replica.at(LATE + 12 * MINUTE)
    assert replica.service.metrics.standby_renewals == 1 and replica.kube.writes == []


def test_a_secret_whose_owner_binding_fails_is_never_renewed_by_the_standby(caplog: pytest.LogCaptureFixture) -> None:
    """Sealed, but labelled for bob while it holds alice's tokens: the leader refuses it (``_bound``), so the
    standby does too, reading it once and logging it once for this version."""
    obj = _object(T0, T0 + DAY, seal=None)
    obj["metadata"]["labels"]["spark-secrets.io/owner"] = "bob"
    obj["metadata"]["annotations"][ANNOTATION_VERIFIED] = SEAL.of(TokenSecret.from_metadata(obj))
    replica = _Replica(obj)
    assert replica.service.secrets[KEY].verified
    caplog.set_level(logging.INFO, "spark_secrets.renew")
    for now in range(LATE + MINUTE, T0 + DAY, MINUTE):
        assert replica.at(now) == 0
    assert replica.kube.reads == ["job"] and replica.kube.writes == []
    (line,) = [r.getMessage() for r in caplog.records if "not renewing" in r.getMessage()]
    assert "alice/job" in line and "bob" in line


def test_a_newer_version_read_by_the_standby_goes_into_its_view_and_is_not_read_again() -> None:
    """The leader renewed (late) and the watch lags: the read brings version 2, which is not late."""
    replica = _Replica(_object(T0, T0 + DAY))
    replica.kube.objects["job"] = _object(LATE, LATE + DAY, "2")
    for now in range(LATE + MINUTE, LATE + 10 * MINUTE, 1_000):
        assert replica.at(now) == 0
    assert replica.kube.reads == ["job"] and replica.service.secrets[KEY].resource_version == "2"
    assert replica.service.standby.notes == {} and replica.kube.writes == []


def test_a_standby_waits_for_its_next_check_not_for_the_leaders_past_due_work() -> None:
    replica = _Replica(_object(T0, T0 + DAY))
    service = replica.service
    assert replica.at(T0 + DAY * 3 // 4 + MINUTE) == 0  # the leader's renewal, past due on this replica's heap
    assert service._due and service._due[0][0] < replica.clock.ms
    assert service.standby.next_check_in() == 5.0
    assert service._seconds_to_next_due() == 1.0  # not a wake every 50 ms; a second, to act soon once leading
    replica.clock.ms = service.standby._next_pass
    assert service._seconds_to_next_due() == 0.05  # a pass to make
    replica.leading = True
    assert service._seconds_to_next_due() < 0  # leading: the heap's head


def test_a_rollover_step_shows_no_token_file() -> None:
    held = _secret(ISSUED + DAY).credentials
    assert held is not None
    data = base64.b64encode(held.to_bytes()).decode()
    assert data not in repr(Step({"hadoop-tokens.outgoing": data}, {"spark-secrets.io/outgoing-tokens": "handles"}))


# -- a re-issue's outgoing tokens, with the leader dead right after it (the rollover simulation) ---------------------
class _Replicas:
    """What a rollover simulation steps: the leader until it dies, and a standby replica (fed every write as its
    watch would) at every step unless ``standing_by`` is False (the control)."""

    def __init__(self, sim: rollover_sim._Sim) -> None:
        self.leader, self.alive, self.standing_by = sim.service, True, True
        self.standby = RenewService(  # type: ignore[arg-type, return-value]
            ServiceConfig(renewer="spark-renewer", namespaces=("alice",), policy=sim.policy), sim.kube,
            [rollover_sim._Kind(sim.server)], seal=rollover_sim.SEAL, leader=lambda: False,
            clock=lambda: (sim.now + 0.5) / 1000)
        for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [sim.kube.read_secret("", "")]),
                      SecretEvent(SYNC, "alice", [])):
            self.standby.handle(event)
        projected = sim.written

        def watched(obj: dict[str, Any]) -> None:
            projected(obj)
            self.standby.handle(SecretEvent(MODIFIED, "alice", [{"metadata": copy.deepcopy(obj["metadata"])}]))

        sim.written = watched  # type: ignore[method-assign]
        sim.service = self  # type: ignore[assignment]

    def run_due(self) -> None:
        if self.alive:
            self.leader.run_due()
        if self.standing_by:
            self.standby.run_due()


def _reissue_then_die(interval: int, projection: int, edge: int, start: str) -> tuple[rollover_sim._Sim, _Replicas]:
    """The leader re-issues (after a failed extension, if so started) and dies at once."""
    sim = rollover_sim._Sim(interval=interval, projection=projection, bound=120 * rollover_sim.SECOND, edge=edge)
    replicas = _Replicas(sim)
    sim.run_until(rollover_sim.REISSUE_AT - rollover_sim.STEP)
    if start.startswith("extension fails"):
        sim.server.fail_next = 1  # the first renewal in the window is the extension before the re-issue
    while replicas.leader.metrics.reissues == 0:
        sim.run_until(sim.now + rollover_sim.STEP)
    assert sim.server.fail_next == 0 and replicas.standby.metrics.standby_renewals == 0  # none while the leader lived
    replicas.alive = False
    return sim, replicas


SCENARIOS = {"renew interval 8 s": (8 * rollover_sim.SECOND, "on time"),
             "renew interval 20 s, extension failed": (20 * rollover_sim.SECOND, "extension fails once")}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
@pytest.mark.parametrize("projection", rollover_sim.PROJECTIONS.values(), ids=rollover_sim.PROJECTIONS.keys())
@pytest.mark.parametrize("edge", rollover_sim.EDGES.values(), ids=rollover_sim.EDGES.keys())
def test_the_standby_keeps_the_outgoing_tokens_of_a_dead_leaders_reissue_alive(
        caplog: pytest.LogCaptureFixture, scenario: tuple[int, str], projection: int, edge: int) -> None:
    """No takeover at all: the standby alone keeps the pods' token valid (the outgoing one until kubelet projects the
    new file, then the new one) to past the window's end, and writes nothing."""
    caplog.set_level(logging.INFO, "spark_secrets.renew")
    sim, replicas = _reissue_then_die(scenario[0], projection, edge, scenario[1])
    died, writes = sim.now, len(sim.kube.writes)
    out = replicas.standby.secrets["alice", "etl-hadoop-tokens"].outgoing
    assert out is not None and out.verified and sim.pods == sim.first
    sim.run_until(out.until_ms + 30 * rollover_sim.SECOND)
    assert sim.lapsed == [], f"the pods' token lapsed at +{(sim.lapsed[0] - died) / 1000:.2f} s"
    assert sim.pods != sim.first  # the pods have the new token
    assert len(sim.kube.writes) == writes and sim.kube.events == []  # the standby wrote nothing
    # The standby renewed the outgoing tokens past the expiry the leader left them (the control: without
    # keeping them alive, the server would still say that expiry), and only within their window.
    kept = [t for t, seq in sim.server.renewed if seq == rollover_sim._seq(sim.first) and t > died]
    assert kept and max(kept) < out.until_ms
    assert sim.server.tokens[sim.first.identifier].expiry > out.expiry_ms
    note = replicas.standby.standby.notes["alice", "etl-hadoop-tokens"]
    assert note.out_expiry_ms == sim.server.tokens[sim.first.identifier].expiry
    assert any("standby kept the outgoing tokens" in r.getMessage() for r in caplog.records)
    rollover_sim._no_password_in(caplog.text + repr(replicas.standby.standby) + repr(replicas.standby.secrets),
                                 sim.first, sim.pods)


def test_the_control_without_a_standby_the_dead_leaders_outgoing_tokens_lapse_in_the_pods() -> None:
    sim, replicas = _reissue_then_die(8 * rollover_sim.SECOND, 73 * rollover_sim.SECOND, 880, "on time")
    replicas.standing_by = False
    died = sim.now
    sim.run_until(died + 80 * rollover_sim.SECOND)
    assert sim.lapsed and sim.lapsed[0] < died + 10 * rollover_sim.SECOND  # the outgoing token, 8 s after the re-issue


@pytest.mark.parametrize("how", [*rollover_sim.FORGERIES, "sealed"])
def test_a_forged_outgoing_section_is_never_renewed_by_the_standby(how: str) -> None:
    """The attack of test_rollover_unit, with no leader at all: the service is a standby from the start. The
    control: the same section sealed as the service seals it is kept alive by the standby."""
    sim = rollover_sim._Sim(interval=45 * rollover_sim.SECOND, projection=11 * rollover_sim.SECOND,
                            bound=120 * rollover_sim.SECOND, edge=-30 * MINUTE)
    sim.service.leader = lambda: False
    sim.run_until(sim.now + 5 * rollover_sim.SECOND)
    planted = rollover_sim._forge(sim, how)
    writes = len(sim.kube.writes)
    sim.run_until(sim.now + 60 * rollover_sim.SECOND)  # past the planted tokens' expiry
    tried = [t for t, seq in sim.server.attempts if seq in {rollover_sim._seq(p) for p in planted}]
    if how == "sealed":
        assert tried and sim.server.valid(planted[0])
    else:
        assert tried == [] and not any(sim.server.valid(p) for p in planted)
    assert len(sim.kube.writes) == writes and sim.lapsed == []  # nothing written; the main token kept alive
