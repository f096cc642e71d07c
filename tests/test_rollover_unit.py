"""A re-issue's rollover, simulated: the pods' token must never lapse (issue 28).

Everything is injected: a token server with a renew interval and a max lifetime that refuses expired
tokens, a KubeClient holding one Secret (merge patches, resourceVersions, 409), a simulated clock, and a
kubelet that projects the Secret's main token file into "the pods" D seconds after each write. At every
step the token the pods hold must be valid on the server, over the orderings the issue names; the control
(no keep-alive) shows the test can fail.
"""

from __future__ import annotations

import base64
import copy
import heapq
import logging
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import InvalidTokenError, KubernetesConflict, NameNodeUnavailable, TokenExpiredError
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.renew.policy import RENEW, REISSUE, Policy
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.watch import DELETED, LISTING, PAGE, SYNC, SecretEvent
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import (ANNOTATION_EXPIRY, ANNOTATION_OUTGOING_EXPIRY, ANNOTATION_OUTGOING_RENEWED_AT,
                                       ANNOTATION_OUTGOING_TOKENS, ANNOTATION_OUTGOING_UNTIL,
                                       ANNOTATION_OUTGOING_VERIFIED, ANNOTATION_VERIFIED, OUTGOING_ANNOTATIONS, Outgoing,
                                       TokenSecret, parse_rfc3339, rfc3339_ms, schedule_annotations, token_handles)

SEAL = Seal(b"s" * 32)
ISSUED = 1_795_000_000_000
SECOND, MINUTE, HOUR = 1_000, 60_000, 3_600_000
MAX_LIFETIME = 2 * HOUR
REISSUE_BEFORE = 10 * MINUTE
REISSUE_AT = ISSUED + MAX_LIFETIME - REISSUE_BEFORE  # when the first token's re-issue window opens
STEP = 250
KEY, OUT_KEY = "hadoop-tokens", "hadoop-tokens.outgoing"


# -- the token server ---------------------------------------------------------------------------------------
@dataclass
class _Issued:
    password: bytes
    expiry: int
    max_date: int
    cancelled: bool = False


class _Server:
    """A NameNode in miniature: renew moves the expiry to min(now + interval, max date), refuses expired,
    cancelled or unknown tokens and wrong passwords; ``fail_next`` renewals and renewals while ``down`` get
    no answer (a paused NameNode)."""

    def __init__(self, sim: _Sim, interval: int) -> None:
        self.sim, self.interval = sim, interval
        self.tokens: dict[bytes, _Issued] = {}
        self.renewed: list[tuple[int, int]] = []  # (time, sequence number) of each successful renewal
        self.attempts: list[tuple[int, int]] = []  # (time, sequence number) of each renewal asked for
        self.fail_next = 0
        self.down: tuple[int, int] = (0, 0)
        self._seq = 100
        self._rng = random.Random(7)

    def issue(self, owner: str = "alice", issued: int | None = None, expiry: int | None = None) -> Token:
        issued = self.sim.now if issued is None else issued
        self._seq += 1
        ident = DelegationTokenIdentifier(owner, "spark-renewer", "", issued, issued + MAX_LIFETIME, self._seq, 1)
        password = self._rng.randbytes(20)
        self.tokens[ident.encode()] = _Issued(password, issued + self.interval if expiry is None else expiry,
                                              issued + MAX_LIFETIME)
        return Token(ident.encode(), password, "HDFS_DELEGATION_TOKEN", "ha-hdfs:ns1")

    def renew(self, token: Token) -> int:
        now, seq = self.sim.now, _seq(token)
        self.attempts.append((now, seq))
        if self.fail_next > 0 or self.down[0] <= now < self.down[1]:
            self.fail_next = max(0, self.fail_next - 1)
            raise NameNodeUnavailable("no NameNode answered (paused)")
        issued = self.tokens.get(token.identifier)
        if issued is None or issued.cancelled or issued.password != token.password:
            raise InvalidTokenError("the NameNode does not know this token")
        if now >= issued.expiry:
            raise TokenExpiredError("the token has expired")
        issued.expiry = min(now + self.interval, issued.max_date)
        self.renewed.append((now, seq))
        return issued.expiry

    def cancel(self, token: Token) -> None:
        issued = self.tokens.get(token.identifier)
        if issued is None or issued.cancelled:
            raise InvalidTokenError("the NameNode does not know this token")
        issued.cancelled = True

    def valid(self, token: Token) -> bool:
        issued = self.tokens.get(token.identifier)
        return (issued is not None and not issued.cancelled and issued.password == token.password
                and self.sim.now < issued.expiry)

    def cancelled(self, token: Token) -> bool:
        return self.tokens[token.identifier].cancelled


def _seq(token: Token) -> int:
    ident = token.decode_identifier()
    return ident.sequence_number if ident is not None else -1


class _Kind:
    """The one token kind, at the simulated server."""

    name = "hdfs"

    def __init__(self, server: _Server) -> None:
        self.server = server

    def owns_token(self, token: Token) -> bool:
        return True

    def owns_target(self, target: str) -> bool:
        return True

    def obtain(self, targets: Any, owner: str) -> Credentials:
        return Credentials({"ha-hdfs:ns1": self.server.issue(owner)})

    def renew(self, token: Token) -> int:
        return self.server.renew(token)

    def cancel(self, token: Token) -> None:
        self.server.cancel(token)


# -- the API server and kubelet -----------------------------------------------------------------------------
class _Kube:
    """One Secret: reads, merge patches conditional on the resourceVersion (else 409), Events."""

    def __init__(self, sim: _Sim, obj: dict[str, Any]) -> None:
        self.sim, self.obj = sim, obj
        self.writes: list[tuple[int, dict[str, Any]]] = []  # (time, the Secret after the write)
        self.events: list[dict[str, Any]] = []

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.obj)

    def patch_secret(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        meta = self.obj["metadata"]
        if patch["metadata"].get("resourceVersion", meta["resourceVersion"]) != meta["resourceVersion"]:
            raise KubernetesConflict("the object has been modified")
        for part, into in ((patch.get("data") or {}, self.obj.setdefault("data", {})),
                           (patch["metadata"].get("annotations") or {}, meta.setdefault("annotations", {}))):
            for name_, value in part.items():
                if value is None:
                    into.pop(name_, None)
                else:
                    into[name_] = value
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        self.writes.append((self.sim.now, copy.deepcopy(self.obj)))
        self.sim.written(self.obj)
        return copy.deepcopy(self.obj)

    def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.events.append(event)


def _main_token(data: dict[str, str], key: str = KEY) -> Token:
    (token,) = Credentials.from_bytes(base64.b64decode(data[key]))
    return token


class _Sim:
    """The clock, the Secret, the service and the pods, stepped together."""

    def __init__(self, *, interval: int, projection: int, bound: int, edge: int,
                 policy: Policy | None = None) -> None:
        self.projection = projection
        self.server = _Server(self, interval)
        expiry = REISSUE_AT + edge  # the last renewal's answer, just before or after the window opens
        self.now = expiry - interval  # ... given at this moment (simulated ms since the epoch)
        self.first = self.server.issue(issued=ISSUED, expiry=expiry)
        self.kube = _Kube(self, _sealed_secret(self.first, expiry, renewed_at=self.now))
        self.pods = self.first
        self._projections: list[tuple[int, int, str]] = []  # (when, order, main token file) kubelet will project
        self.lapsed: list[int] = []
        self.busy: tuple[int, int] = (0, 0)  # the service's loop does not get to act in [from, to)
        self.policy = policy or Policy(ratio=0.75, reissue_before_ms=REISSUE_BEFORE, jitter=0,
                                       projection_bound_ms=bound)
        self.service = RenewService(  # type: ignore[arg-type, return-value]
            ServiceConfig(renewer="spark-renewer", namespaces=("alice",), policy=self.policy), self.kube,
            [_Kind(self.server)], seal=SEAL, clock=lambda: (self.now + 0.5) / 1000)  # + 0.5: whole ms after float rounding
        for event in (SecretEvent(LISTING, "alice", []), SecretEvent(PAGE, "alice", [self.kube.read_secret("", "")]),
                      SecretEvent(SYNC, "alice", [])):
            self.service.handle(event)

    def written(self, obj: dict[str, Any]) -> None:
        """Kubelet sees each write and projects the main token file ``projection`` ms later."""
        heapq.heappush(self._projections, (self.now + self.projection, len(self.kube.writes), obj["data"][KEY]))

    def run_until(self, end: int) -> None:
        while self.now < end:
            self.now += STEP
            if not self.busy[0] <= self.now < self.busy[1]:
                self.service.run_due()
            while self._projections and self._projections[0][0] <= self.now:
                self.pods = _main_token({KEY: heapq.heappop(self._projections)[2]})
            if not self.server.valid(self.pods):
                self.lapsed.append(self.now)

    @property
    def secret(self) -> dict[str, Any]:
        return self.kube.obj


def _sealed_secret(token: Token, expiry: int, renewed_at: int) -> dict[str, Any]:
    """alice's Secret as the service leaves it after a renewal (its seal on it)."""
    creds = Credentials({"ha-hdfs:ns1": token})
    notes = {k: v for k, v in schedule_annotations(creds, expiry, renewed_at_ms=renewed_at).items() if v}
    obj: dict[str, Any] = {
        "metadata": {"namespace": "alice", "name": "etl-hadoop-tokens", "uid": "uid-1", "resourceVersion": "1",
                     "labels": {"spark-secrets.io/owner": "alice"},
                     "annotations": {**notes, "spark-secrets.io/filesystems": "hdfs://ns1"}},
        "data": {KEY: base64.b64encode(creds.to_bytes()).decode()}}
    obj["metadata"]["annotations"][ANNOTATION_VERIFIED] = SEAL.of(TokenSecret.from_metadata(obj))
    return obj


def _no_password_in(text: str, *tokens: Token) -> None:
    for token in tokens:
        for form in (token.password.hex(), base64.b64encode(token.password).decode(),
                     base64.urlsafe_b64encode(token.password).decode()):
            assert form.rstrip("=") not in text


# -- the orderings --------------------------------------------------------------------------------------------
EDGES = {"expiry 0.88 s before the window opens": -880, "expiry 0.88 s after the window opens": 880}
STARTS = ("on time", "delayed 3 s", "extension fails once (server paused)")
PROJECTIONS = {"kubelet sync 10 s (11 s)": 11 * SECOND, "kubelet default (73 s)": 73 * SECOND}
INTERVALS = {"renew interval 8 s": 8 * SECOND, "renew interval 45 s": 45 * SECOND, "renew interval 300 s": 300 * SECOND}


def _simulate(interval: int, projection: int, edge: int, start: str, bound: int = 120 * SECOND) -> _Sim:
    sim = _Sim(interval=interval, projection=projection, bound=bound, edge=edge)
    if start == "delayed 3 s":
        sim.busy = (REISSUE_AT, REISSUE_AT + 3 * SECOND)
    sim.run_until(REISSUE_AT - STEP)
    assert sim.service.metrics.reissues == 0 and sim.server.valid(sim.first)
    if start.startswith("extension fails"):
        sim.server.fail_next = 1  # the first renewal in the window is the extension before the re-issue
    sim.run_until(REISSUE_AT + 2 * interval + 200 * SECOND)
    return sim


@pytest.mark.parametrize("interval", INTERVALS.values(), ids=INTERVALS.keys())
@pytest.mark.parametrize("projection", PROJECTIONS.values(), ids=PROJECTIONS.keys())
@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("edge", EDGES.values(), ids=EDGES.keys())
def test_the_pods_token_never_lapses_across_a_reissue(caplog: pytest.LogCaptureFixture, interval: int,
                                                      projection: int, start: str, edge: int) -> None:
    with caplog.at_level(logging.INFO, logger="spark_secrets.renew"):
        sim = _simulate(interval, projection, edge, start)
    assert sim.lapsed == [], f"the pods' token lapsed at +{(sim.lapsed[0] - REISSUE_AT) / 1000:.2f} s"
    assert sim.service.metrics.reissues == 1 and sim.pods != sim.first  # the pods have the new token
    if start.startswith("extension fails"):
        assert sim.server.fail_next == 0  # the pause did hit the extension
    # The re-issue wrote the outgoing tokens beside the new ones, sealed, with their expiry to the millisecond.
    written_at, reissued = next((t, obj) for t, obj in sim.kube.writes if _main_token(obj["data"]) != sim.first)
    assert _main_token(reissued["data"], OUT_KEY) == sim.first
    notes = reissued["metadata"]["annotations"]
    assert parse_rfc3339(notes[ANNOTATION_OUTGOING_UNTIL]) == written_at + 120 * SECOND
    for name in (ANNOTATION_EXPIRY, ANNOTATION_OUTGOING_UNTIL, ANNOTATION_OUTGOING_EXPIRY,
                 ANNOTATION_OUTGOING_RENEWED_AT):  # to the millisecond (the whole seconds of older versions read too)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z", notes[name]), notes[name]
        assert notes[name] == rfc3339_ms(parse_rfc3339(notes[name]))
    # ... kept alive until then, and never renewed after it.
    first_renewals = [t for t, seq in sim.server.renewed if seq == _seq(sim.first)]
    assert max(first_renewals) < written_at + 120 * SECOND
    # The next write after the window dropped them (key and annotations), without cancelling them.
    final = sim.secret
    assert OUT_KEY not in final["data"] and not set(OUTGOING_ANNOTATIONS) & set(final["metadata"]["annotations"])
    assert not sim.server.cancelled(sim.first)
    # The expiry annotation is the server's answer to the millisecond.
    assert parse_rfc3339(final["metadata"]["annotations"][ANNOTATION_EXPIRY]) == \
        sim.server.tokens[_main_token(final["data"]).identifier].expiry
    everything = "\n".join(r.getMessage() for r in caplog.records) + repr(sim.service.secrets) + "".join(
        str(obj["metadata"]) for _, obj in sim.kube.writes) + "".join(str(e) for e in sim.kube.events)
    _no_password_in(everything, sim.first, sim.pods)


def test_the_control_without_the_keep_alive_the_pods_token_lapses() -> None:
    """Projection bound 0 (only the one extension before the re-issue): a renew interval of 45 s and a
    projection of 73 s let the outgoing token lapse in the pods, so the test above can fail."""
    sim = _simulate(45 * SECOND, 73 * SECOND, 880, "on time", bound=0)
    assert sim.lapsed, "the control should have let the pods' token lapse"
    assert all(REISSUE_AT + 45 * SECOND <= t < REISSUE_AT + 75 * SECOND for t in sim.lapsed)
    assert not any(OUT_KEY in obj["data"] for _, obj in sim.kube.writes)  # nothing kept
    # The same with the keep-alive: no lapse (the test proper, for this one ordering).
    assert _simulate(45 * SECOND, 73 * SECOND, 880, "on time").lapsed == []


def test_an_outage_while_only_the_outgoing_tokens_are_due_is_retried_soon_and_not_in_a_hot_loop() -> None:
    """The extension fails (the first renewal in the window), and the server is down again when the outgoing
    tokens alone are due: they are retried within a third of their time left and saved before they lapse."""
    sim = _Sim(interval=45 * SECOND, projection=73 * SECOND, bound=120 * SECOND, edge=880)
    sim.run_until(REISSUE_AT - STEP)
    sim.server.fail_next = 1
    sim.run_until(REISSUE_AT + STEP)
    notes = sim.secret["metadata"]["annotations"]
    out_expiry, out_base = parse_rfc3339(notes[ANNOTATION_OUTGOING_EXPIRY]), parse_rfc3339(
        notes[ANNOTATION_OUTGOING_RENEWED_AT])
    due = out_base + int(0.75 * (out_expiry - out_base))
    assert due < REISSUE_AT + int(0.75 * 45 * SECOND)  # before the new tokens' first renewal: alone
    sim.server.down = (due, due + 6 * SECOND)
    sim.run_until(REISSUE_AT + 400 * SECOND)
    assert sim.lapsed == []
    tries = [t for t, seq in sim.server.attempts if seq == _seq(sim.first) and due <= t < due + 6 * SECOND]
    assert 2 <= len(tries) <= 8, tries  # retried soon, but not at every turn of the loop
    assert any(seq == _seq(sim.first) and t >= due + 6 * SECOND for t, seq in sim.server.renewed)


def test_deleting_the_secret_inside_the_window_cancels_the_sealed_outgoing_tokens_too() -> None:
    sim = _Sim(interval=45 * SECOND, projection=73 * SECOND, bound=120 * SECOND, edge=880)
    sim.run_until(REISSUE_AT + 10 * SECOND)
    assert OUT_KEY in sim.secret["data"]
    new = _main_token(sim.secret["data"])
    gone = {"metadata": copy.deepcopy(sim.secret["metadata"])}  # the watch's DELETED event: metadata only
    sim.service.handle(SecretEvent(DELETED, "alice", [gone]))
    assert sim.server.cancelled(new) and sim.server.cancelled(sim.first)


def test_a_reissue_that_loses_a_race_cancels_only_its_new_token_never_the_outgoing_ones() -> None:
    sim = _Sim(interval=45 * SECOND, projection=73 * SECOND, bound=120 * SECOND, edge=880)
    sim.run_until(REISSUE_AT - STEP)
    patch_secret = sim.kube.patch_secret

    def another_replica_first(namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        sim.kube.patch_secret = patch_secret  # type: ignore[method-assign]
        sim.kube.obj["metadata"]["resourceVersion"] += "0"  # someone else wrote meanwhile
        return patch_secret(namespace, name, patch)

    sim.kube.patch_secret = another_replica_first  # type: ignore[method-assign]
    sim.run_until(REISSUE_AT + 2 * SECOND)  # the lost write, then a re-issue from the newer version
    lost, kept = [t for t in sim.server.tokens if t != sim.first.identifier]
    assert sim.server.tokens[lost].cancelled and not sim.server.tokens[kept].cancelled
    assert _main_token(sim.secret["data"]).identifier == kept and sim.service.metrics.reissues == 1
    assert not sim.server.cancelled(sim.first) and _main_token(sim.secret["data"], OUT_KEY) == sim.first


def _forge(sim: _Sim, how: str) -> list[Token]:
    """Put an outgoing section into the Secret as a writer could (``sealed``: as the service writes it, the
    control); returns the genuine tokens of alice's it names or holds, which nobody else renews."""
    planted = sim.server.issue()
    obj = sim.kube.obj
    ts = TokenSecret.from_metadata(obj)
    creds = Credentials({"ha-hdfs:ns1": planted})
    out = Outgoing(token_handles(creds), sim.now + 100 * SECOND, sim.now + 10 * SECOND, sim.now)
    seal = Seal(b"not the service's key" * 2) if how == "a seal of another key" else SEAL
    notes = {ANNOTATION_OUTGOING_TOKENS: out.handles, ANNOTATION_OUTGOING_UNTIL: rfc3339_ms(out.until_ms),
             ANNOTATION_OUTGOING_EXPIRY: rfc3339_ms(out.expiry_ms),
             ANNOTATION_OUTGOING_RENEWED_AT: rfc3339_ms(out.renewed_at_ms),
             ANNOTATION_OUTGOING_VERIFIED: seal.of_outgoing(ts, out)}
    if how == "no seal":
        del notes[ANNOTATION_OUTGOING_VERIFIED]
    if how == "window extended after sealing":
        notes[ANNOTATION_OUTGOING_UNTIL] = rfc3339_ms(sim.now + 100 * HOUR)
    if how == "the main seal copied":
        notes[ANNOTATION_OUTGOING_VERIFIED] = SEAL.sign(ts.namespace, ts.name, ts.uid, ts.owner_label, out.handles)
    data = creds
    if how == "other tokens under sealed handles":  # the seal is genuine, the file is not what it names
        data = Credentials({"ha-hdfs:ns1": sim.server.issue()})
    if how == "a main seal":  # the section's seal is the Secret's own (main) one
        notes[ANNOTATION_OUTGOING_VERIFIED] = obj["metadata"]["annotations"][ANNOTATION_VERIFIED]
    sim.kube.patch_secret("alice", "x", {"data": {OUT_KEY: base64.b64encode(data.to_bytes()).decode()},
                                         "metadata": {"annotations": notes}})
    sim.service._track(sim.kube.read_secret("", ""))  # the watch's event
    return [planted, *(t for t in data if t != planted)]


FORGERIES = ("no seal", "a seal of another key", "window extended after sealing", "the main seal copied", "a main seal",
             "other tokens under sealed handles")


@pytest.mark.parametrize("how", [*FORGERIES, "sealed"])
def test_a_forged_outgoing_section_is_never_renewed_or_cancelled(how: str) -> None:
    """The attack: an outgoing key and annotations written by the Secret's writer, naming a genuine token of the
    owner's, to have the service keep it alive (or cancel it). The control: the same section sealed as the
    service seals it is renewed, and cancelled with the Secret."""
    sim = _Sim(interval=45 * SECOND, projection=11 * SECOND, bound=120 * SECOND, edge=-30 * MINUTE)
    sim.run_until(sim.now + 5 * SECOND)
    planted = _forge(sim, how)
    sim.run_until(sim.now + 60 * SECOND)  # past the planted tokens' expiry and two main renewals
    renewed = [t for t, seq in sim.server.attempts if seq in {_seq(p) for p in planted}]
    if how == "sealed":
        assert renewed and OUT_KEY in sim.secret["data"] and sim.server.valid(planted[0])
    else:
        assert renewed == [] and not any(sim.server.valid(p) for p in planted)
        assert OUT_KEY not in sim.secret["data"]  # the service's next write dropped it
        assert not set(OUTGOING_ANNOTATIONS) & set(sim.secret["metadata"]["annotations"])
    sim.service.handle(SecretEvent(DELETED, "alice", [{"metadata": copy.deepcopy(sim.secret["metadata"])}]))
    assert sim.server.cancelled(sim.first)  # the Secret's own tokens, in every case
    assert [sim.server.cancelled(p) for p in planted] == [how == "sealed"] * len(planted)


def test_a_forged_section_in_a_deleted_secret_is_never_cancelled() -> None:
    """Straight to the delete: handles of someone's live token in unsealed outgoing annotations."""
    sim = _Sim(interval=45 * SECOND, projection=11 * SECOND, bound=120 * SECOND, edge=-30 * MINUTE)
    (planted,) = _forge(sim, "a seal of another key")
    sim.service.handle(SecretEvent(DELETED, "alice", [{"metadata": copy.deepcopy(sim.secret["metadata"])}]))
    assert not sim.server.cancelled(planted) and sim.server.cancelled(sim.first)


# -- the policy alone ---------------------------------------------------------------------------------------
def _ts(sim: _Sim) -> TokenSecret:
    return sim.service._checked(TokenSecret.from_metadata(sim.secret))


def test_the_next_due_time_is_the_earlier_of_the_main_action_and_the_outgoing_renewal() -> None:
    sim = _Sim(interval=45 * SECOND, projection=73 * SECOND, bound=120 * SECOND, edge=880)
    sim.run_until(REISSUE_AT + STEP)
    ts = _ts(sim)
    assert ts.outgoing is not None and ts.outgoing.verified
    policy = sim.policy
    main = policy.main_action(ts, sim.now)
    outgoing = policy.outgoing_due(ts, sim.now)
    assert main[0] == RENEW and outgoing is not None
    assert policy.next_action(ts, sim.now) == (RENEW, min(main[1], outgoing))
    # Past the window: the main action alone.
    after = sim.now + 200 * SECOND
    assert policy.outgoing_due(ts, after) is None and policy.next_action(ts, after) == policy.main_action(ts, after)
    # Not sealed: ignored.
    ts.outgoing.verified = False
    assert policy.outgoing_due(ts, sim.now) is None and policy.next_action(ts, sim.now) == main


def test_an_expiry_just_after_the_window_opens_is_renewed_once_more_before_it() -> None:
    """0.88 s of margin is no margin for a late re-issue: renew first; with a minute past the opening, do not."""
    for edge, expected in ((880, RENEW), (90 * SECOND, REISSUE)):
        sim = _Sim(interval=300 * SECOND, projection=73 * SECOND, bound=120 * SECOND, edge=edge)
        action, due = sim.policy.main_action(_ts(sim), sim.now)
        assert action == expected
        assert due < REISSUE_AT if expected == RENEW else due == REISSUE_AT


def test_an_expiry_at_the_max_date_is_not_renewed_towards_the_window() -> None:
    """A renewal cannot go past the max date: however small the margin, wait for the re-issue (no loop of
    ever closer renewals)."""
    policy = Policy(ratio=0.75, reissue_before_ms=10 * SECOND, jitter=0)
    sim = _Sim(interval=45 * SECOND, projection=11 * SECOND, bound=120 * SECOND, edge=0, policy=policy)
    ts = _ts(sim)
    ts.expiry_ms = ts.max_date_ms
    assert policy.main_action(ts, sim.now) == (REISSUE, ts.max_date_ms - 10 * SECOND)


def test_millisecond_annotations_read_back_exactly() -> None:
    for ms in (ISSUED, ISSUED + 1, ISSUED + 880, ISSUED + 999, ISSUED + 123_456):
        assert parse_rfc3339(rfc3339_ms(ms)) == ms
    assert rfc3339_ms(ISSUED + 123).endswith(".123Z") and rfc3339_ms(ISSUED) == "2026-11-18T11:06:40Z"
    assert parse_rfc3339("2026-12-05T15:03:52.123Z") - parse_rfc3339("2026-12-05T15:03:52Z") == 123


@pytest.mark.parametrize(("value", "message"), [
    ("0", "spark-secrets: error: --projection-bound 0: use a positive duration"),
    ("soon", "spark-secrets: error: --projection-bound='soon' is not a duration"),
])
def test_a_bad_projection_bound_fails_before_anything_is_contacted(tmp_path: Path, value: str, message: str) -> None:
    run = subprocess.run([sys.executable, "-m", "spark_secrets", "renewer", "--keytab", str(tmp_path / "none.keytab"),
                          "--principal", "spark-renewer", "-n", "alice", "--projection-bound", value],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=60)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith(message), run.stderr
