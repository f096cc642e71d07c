"""A standby replica renews, and only renews, a sealed token that the leader let come close to lapsing.

A dead leader (SIGKILL, node loss) is replaced only once its Lease runs out, and a token whose renewal
falls due in that gap could lapse in the pods. A
renewal is idempotent at the token server (it only moves the expiry to min(now + renew interval, max
date)), so two replicas renewing one token is harmless, while two re-issues make two tokens and a cancel
is final: so a standby renews a token only once the leader is clearly late (less than half the renewal
margin, ``(1 - ratio) × (expiry - last renewal)``, left and no newer version of the Secret written), only
a token this service verified (its seal: a forged Secret must not make it call a server), and it never
writes the Secret, re-issues or cancels. What it renewed it keeps in memory (the answered expiry, until
the leader writes a newer version), so it renews again only when that expiry in turn comes close.

A re-issue's outgoing tokens (:mod:`.rollover`) are the pods' until kubelet projects the new file, and a
leader that dies right after the re-issue leaves them as short a life as the main ones: so the standby keeps
a sealed outgoing section alive by the same rule (its own expiry and last renewal, until its window closes).
Before renewing anything it checks, as the leader would, the seals against the token files it read and the
owner binding (``bound``): a forged section or Secret never makes it call a token server.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, KubernetesNotFound, SparkSecretsError, UnusableSecret
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.housekeeping import Key
from spark_secrets.renew.kinds import TokenKind
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.rollover import renew_each
from spark_secrets.hadoop.token import Token
from spark_secrets.renew.actions import which_tokens
from spark_secrets.secrets.tokensecret import TokenSecret, distinct_tokens, rfc3339

log = logging.getLogger("spark_secrets.renew")

#: A standby looks over every Secret when the nearest one turns late, else at least every half of the
#: shortest half margin seen, within these bounds (a pass over 100,000 Secrets takes under 0.1 s). Passes are
#: PASS_MIN_MS apart, or a quarter of that margin if less (it is 1 s for tokens renewable for 8 s), so the pass
#: after a token turns late still finds most of its margin left; never under the floor.
PASS_MIN_MS, PASS_MAX_MS, PASS_FLOOR_MS = 1_000, 10_000, 100
#: After a failed standby renewal: wait from the first, doubling up to the last, never past a third of what is left.
RETRY_FIRST_MS, RETRY_MAX_MS = 1_000, 60_000
#: An expiry this close to the max date is as far as a renewal goes (older annotations kept whole seconds).
CAPPED_MS = 1_000


@dataclasses.dataclass(slots=True)
class Note:
    """What the standby did for one version of one Secret; dropped once the Secret changes or goes."""

    version: str  # the Secret's resourceVersion
    expiry_ms: int = 0  # the token server's answer to the standby's last renewal (0: none)
    renewed_at_ms: int = 0
    #: The same for a re-issue's outgoing tokens, which are renewed (and lapse) on their own schedule.
    out_expiry_ms: int = 0
    out_renewed_at_ms: int = 0
    retry_at_ms: int = 0  # after a failure, not before this
    delay_ms: int = 0
    done: bool = False  # refused (or unusable): nothing more for the standby to do with this version's main tokens
    out_done: bool = False  # ... nor with its outgoing ones


class Standby:
    """A standby's renewals over the service's view of the Secrets (``secrets``, owned by the main loop)."""

    def __init__(self, kube: KubeClient, secrets: Mapping[Key, TokenSecret], metrics: Metrics, *,
                 kind_of: Callable[[Token], TokenKind], checked: Callable[[TokenSecret], TokenSecret],
                 bound: Callable[[TokenSecret], None], track: Callable[[dict[str, Any]], object],
                 ratio: Callable[[], float], now_ms: Callable[[], int], leading: Callable[[], bool]) -> None:
        self.kube, self.secrets, self.metrics = kube, secrets, metrics
        #: The token kind of a token, the service's seal check (sets ``verified``, main and outgoing), its owner
        #: binding check (raises :class:`TokenRefused`) and its tracking of a newer version read: the service's own.
        self.kind_of, self.checked, self.bound, self.track = kind_of, checked, bound, track
        self.ratio, self.now_ms, self.leading = ratio, now_ms, leading
        self.notes: dict[Key, Note] = {}
        self._next_pass = 0

    def __repr__(self) -> str:
        return f"Standby(notes={len(self.notes)})"

    def next_check_in(self) -> float:
        """Seconds (0.05 to 5) until :meth:`run` has a pass to make: how long a standby's main loop may wait
        for events (its due heap is never popped, so it says nothing of when the standby has work)."""
        return min(max((self._next_pass - self.now_ms()) / 1000, 0.05), 5.0)

    def run(self) -> None:
        """One turn of a standby's main loop: renew what is late, nearest expiry first."""
        now = self.now_ms()
        if now < self._next_pass:
            return
        late, self._next_pass = self.late(now)
        for expiry, key, ts in sorted(late, key=lambda found: found[0]):
            if self.leading():
                return  # the leader's own schedule takes over from here
            self._renew(key, ts, expiry, now)

    def late(self, now: int) -> tuple[list[tuple[int, Key, TokenSecret]], int]:
        """``(expiry, key, Secret)`` of each Secret with sealed tokens (main, or a re-issue's outgoing ones) with
        less than half their renewal margin left (``expiry``: the nearest such tokens'), and when to look again:
        when the nearest of the others turns late, or a retry is due, or sooner."""
        for key in [k for k, n in self.notes.items() if k not in self.secrets
                    or self.secrets[k].resource_version != n.version]:
            del self.notes[key]  # gone, or the leader wrote a newer version: its annotations say the rest
        share = (1 - self.ratio()) / 2  # half the renewal margin, as a share of the time since the last renewal
        notes, found, upcoming, shortest = self.notes, [], now + PASS_MAX_MS, 2 * PASS_MAX_MS
        for key, ts in self.secrets.items():
            note = notes.get(key) if notes else None
            spans: Sequence[tuple[int, int, int | None]]
            if note is None and ts.outgoing is None:  # the common case, kept cheap (as in the loop below)
                if not ts.verified or ts.renewed_at_ms is None or ts.expiry_estimated:
                    continue  # not sealed by this service, or no expiry from a token server: the leader's alone
                expiry, base = ts.expiry_ms, ts.renewed_at_ms
                half = share * (expiry - base)
                if expiry - half >= upcoming and half >= shortest:
                    continue
                spans = ((expiry, base, None),)
            elif note is not None and now < note.retry_at_ms:
                upcoming = min(upcoming, note.retry_at_ms)
                continue
            else:
                spans = _spans(ts, note)
            nearest = 0  # the expiry of this Secret's nearest late tokens (0: none late)
            for expiry, base, until in spans:
                half = share * (expiry - base)
                if expiry - half >= upcoming and half >= shortest:
                    continue  # not late, and nothing nearer than seen so far
                if now >= expiry or expiry >= (ts.max_date_ms - CAPPED_MS if until is None else until):
                    continue  # lapsed (the leader re-issues), or as far as a renewal goes (or needs to go)
                shortest = min(shortest, int(half))  # also of the late ones: their renewed tokens turn late in turn
                if expiry - now < half:
                    nearest = min(nearest or expiry, expiry)
                else:
                    upcoming = min(upcoming, int(expiry - half) + 1)
            if nearest:
                found.append((nearest, key, ts))
        gap = max(PASS_FLOOR_MS, min(PASS_MIN_MS, shortest // 4))
        return found, max(now + gap, min(upcoming, now + shortest // 2))

    def _renew(self, key: Key, ts: TokenSecret, expiry: int, now: int) -> None:
        """Renew every part of ``ts`` still the standby's to renew (the late one and, on the same read, the other),
        each only if its seal holds for the token file read and the owner binding holds for the Secret."""
        note = self.notes.setdefault(key, Note(ts.resource_version))
        try:
            obj = self.kube.read_secret(ts.namespace, ts.name)
            if str((obj.get("metadata") or {}).get("resourceVersion")) != ts.resource_version:
                # The leader wrote a newer version meanwhile: into the view now (dropping this note), so that a
                # lagging watch does not make the standby read it again at every pass.
                self.track(obj)
                return
            full = self.checked(TokenSecret.from_object(obj))
            self.bound(full)  # TokenRefused: not the owner's tokens, or no admission policy binds the owner label
        except KubernetesNotFound:
            return  # deleted: the watch brings the delete
        except UnusableSecret as exc:  # and TokenRefused: final for this version (logged once), the leader's to report
            note.done = note.out_done = True
            log.info("standby: not renewing %s: %s; left to the leader", ts.ref, exc.problem)
            return
        except SparkSecretsError as exc:
            self._retry(note, ts, expiry, now, exc)
            return
        for span_expiry, _, until in _spans(ts, note):
            if not now < span_expiry < (ts.max_date_ms - CAPPED_MS if until is None else until):
                continue
            outgoing = until is not None
            try:
                if outgoing:
                    out = full.outgoing
                    if out is None or not out.verified or out.credentials is None:
                        raise UnusableSecret("its outgoing token file is not the one this service verified")
                    tokens = distinct_tokens(out.credentials)
                elif not full.verified:  # its file no longer matches what was sealed: the leader refuses it
                    raise UnusableSecret("its token file is not the one this service verified")
                else:
                    tokens = full.distinct_tokens()
                answered = min(self._renew_tokens(tokens))
            except (InvalidTokenError, HdfsPermissionError, UnusableSecret) as exc:
                if outgoing:  # final for this version: the leader drops the section (or refuses the Secret)
                    note.out_done = True
                else:
                    note.done = True
                log.info("standby: not renewing the %stokens of %s: %s; left to the leader",
                         "outgoing " if outgoing else "", ts.ref, exc.problem)
                continue
            except SparkSecretsError as exc:
                self._retry(note, ts, expiry, now, exc)
                return
            note.retry_at_ms = note.delay_ms = 0
            self.metrics.standby_renewals += 1
            if outgoing:
                note.out_expiry_ms, note.out_renewed_at_ms = answered, now
                assert full.outgoing is not None
                log.info("standby kept the outgoing tokens of %s (%d token(s)) alive for a late leader until %s: now "
                         "expire %s; the Secret is left to the leader", ts.ref, len(tokens),
                         rfc3339(full.outgoing.until_ms), rfc3339(answered))
            else:
                note.expiry_ms, note.renewed_at_ms = answered, now
                log.info("standby renewed %s (%d token(s), %s) for a late leader: now expires %s; the Secret "
                         "is left to the leader", ts.ref, len(tokens),
                         which_tokens(full), rfc3339(answered))

    def _renew_tokens(self, tokens: list[Token]) -> list[int]:
        expiries = renew_each(tokens, self.kind_of, self.metrics)
        if not expiries:
            raise UnusableSecret("it holds no delegation tokens")
        return expiries

    @staticmethod
    def _retry(note: Note, ts: TokenSecret, expiry: int, now: int, exc: SparkSecretsError) -> None:
        """An outage: try again soon, but never wait past a third of what is left."""
        note.delay_ms = min(max(note.delay_ms * 2, RETRY_FIRST_MS), RETRY_MAX_MS)
        wait = min(note.delay_ms, max(RETRY_FIRST_MS, (expiry - now) // 3))
        note.retry_at_ms = now + wait
        log.warning("standby: could not renew %s for a late leader: %s; retrying in %.0f s", ts.ref, exc.problem,
                    wait / 1000)


def _spans(ts: TokenSecret, note: Note | None) -> list[tuple[int, int, int | None]]:
    """``(expiry, last renewal, until)`` of each part of ``ts`` the standby may renew, as its own last renewal
    left it if it made one: the main tokens if sealed with an expiry from a token server (until None: their max
    date), and a re-issue's sealed outgoing tokens (until their window closes: the pods then have the new ones)."""
    spans: list[tuple[int, int, int | None]] = []
    if ts.verified and ts.renewed_at_ms is not None and not ts.expiry_estimated and not (note and note.done):
        if note is not None and note.expiry_ms:
            spans.append((note.expiry_ms, note.renewed_at_ms, None))
        else:
            spans.append((ts.expiry_ms, ts.renewed_at_ms, None))
    out = ts.outgoing
    if out is not None and out.verified and not (note and note.out_done):
        if note is not None and note.out_expiry_ms:
            spans.append((note.out_expiry_ms, note.out_renewed_at_ms, out.until_ms))
        else:
            spans.append((out.expiry_ms, out.renewed_at_ms, out.until_ms))
    return spans
