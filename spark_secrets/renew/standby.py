"""A standby replica renews, and only renews, a sealed token that the leader let come close to lapsing.

A dead leader (SIGKILL, node loss) is replaced only once its Lease runs out (its duration plus up to a
third of it between checks), and a token whose renewal falls due in that gap could lapse in the pods. A
renewal is idempotent at the token server (it only moves the expiry to min(now + renew interval, max
date)), so two replicas renewing one token is harmless, while two re-issues make two tokens and a cancel
is final: so a standby renews a token only once the leader is clearly late (less than half the renewal
margin, ``(1 - ratio) × (expiry - last renewal)``, left and no newer version of the Secret written), only
a token this service verified (its seal: a forged Secret must not make it call a server), and it never
writes the Secret, re-issues or cancels. What it renewed it keeps in memory (the answered expiry, until
the leader writes a newer version), so it renews again only when that expiry in turn comes close.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping

from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, KubernetesNotFound, SparkSecretsError, UnusableSecret
from spark_secrets.kube import KubeClient
from spark_secrets.renew.housekeeping import Key
from spark_secrets.renew.kinds import TokenKind
from spark_secrets.renew.metrics import Metrics
from spark_secrets.token import Token
from spark_secrets.tokensecret import TokenSecret, rfc3339

log = logging.getLogger("spark_secrets.renew")

#: A standby looks over every Secret when the nearest one turns late, else at least every half of the
#: shortest half margin seen, within these bounds (a pass over 100,000 Secrets takes under 0.1 s).
PASS_MIN_MS, PASS_MAX_MS = 1_000, 10_000
#: After a failed standby renewal: wait from the first, doubling up to the last, never past a third of what is left.
RETRY_FIRST_MS, RETRY_MAX_MS = 1_000, 60_000
#: An expiry this close to the max date is as far as a renewal goes (annotations keep whole seconds).
CAPPED_MS = 1_000


@dataclasses.dataclass(slots=True)
class Note:
    """What the standby did for one version of one Secret; dropped once the Secret changes or goes."""

    version: str  # the Secret's resourceVersion
    expiry_ms: int = 0  # the token server's answer to the standby's last renewal (0: none)
    renewed_at_ms: int = 0
    retry_at_ms: int = 0  # after a failure, not before this
    delay_ms: int = 0
    done: bool = False  # refused (or unusable): nothing more for the standby to do with this version


class Standby:
    """A standby's renewals over the service's view of the Secrets (``secrets``, owned by the main loop)."""

    def __init__(self, kube: KubeClient, secrets: Mapping[Key, TokenSecret], metrics: Metrics, *,
                 kind_of: Callable[[Token], TokenKind], checked: Callable[[TokenSecret], TokenSecret],
                 ratio: Callable[[], float], now_ms: Callable[[], int], leading: Callable[[], bool]) -> None:
        self.kube, self.secrets, self.metrics = kube, secrets, metrics
        #: The token kind of a token, and the service's seal check (sets ``verified``): the service's own.
        self.kind_of, self.checked = kind_of, checked
        self.ratio, self.now_ms, self.leading = ratio, now_ms, leading
        self.notes: dict[Key, Note] = {}
        self._next_pass = 0

    def __repr__(self) -> str:
        return f"Standby(notes={len(self.notes)})"

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
        """``(expiry, key, Secret)`` of each sealed token with less than half its renewal margin left, and
        when to look again: when the nearest of the others turns late, or a retry is due, or sooner."""
        for key in [k for k, n in self.notes.items() if k not in self.secrets
                    or self.secrets[k].resource_version != n.version]:
            del self.notes[key]  # gone, or the leader wrote a newer version: its annotations say the rest
        share = (1 - self.ratio()) / 2  # half the renewal margin, as a share of the time since the last renewal
        notes, found, upcoming, shortest = self.notes, [], now + PASS_MAX_MS, 2 * PASS_MAX_MS
        for key, ts in self.secrets.items():
            if not ts.verified or ts.renewed_at_ms is None or ts.expiry_estimated:
                continue  # not sealed by this service, or no expiry from a token server: the leader's alone
            expiry, base = ts.expiry_ms, ts.renewed_at_ms
            note = notes.get(key) if notes else None
            if note is not None:
                if note.done:
                    continue
                if now < note.retry_at_ms:
                    upcoming = min(upcoming, note.retry_at_ms)
                    continue
                if note.expiry_ms:
                    expiry, base = note.expiry_ms, note.renewed_at_ms
            half = share * (expiry - base)
            if expiry - half >= upcoming and half >= shortest:
                continue  # the common case, kept cheap: not late, and nothing nearer than seen so far
            if now >= expiry or expiry >= ts.max_date_ms - CAPPED_MS:
                continue  # lapsed (the leader re-issues), or as far as a renewal goes
            shortest = min(shortest, int(half))  # also of the late ones: their renewed tokens turn late in turn
            if expiry - now < half:
                found.append((expiry, key, ts))
            else:
                upcoming = min(upcoming, int(expiry - half) + 1)
        return found, max(now + PASS_MIN_MS, min(upcoming, now + shortest // 2))

    def _renew(self, key: Key, ts: TokenSecret, expiry: int, now: int) -> None:
        note = self.notes.setdefault(key, Note(ts.resource_version))
        try:
            self.metrics.api_requests += 1
            obj = self.kube.read_secret(ts.namespace, ts.name)
            if str((obj.get("metadata") or {}).get("resourceVersion")) != ts.resource_version:
                return  # the leader wrote a newer version meanwhile: the watch brings it
            full = self.checked(TokenSecret.from_object(obj))
            if not full.verified:  # its file no longer matches what was sealed: the leader refuses it
                raise UnusableSecret(f"{ts.ref}: its token file is not the one this service verified")
            expiries = []
            for token in full.distinct_tokens():
                kind = self.kind_of(token)
                expiries.append(kind.renew(token))
                self.metrics.count(kind.name, "renew")
        except KubernetesNotFound:
            return  # deleted: the watch brings the delete
        except (InvalidTokenError, HdfsPermissionError, UnusableSecret) as exc:
            note.done = True  # final for this version: the leader re-issues (or refuses) it
            log.info("standby: not renewing %s: %s; left to the leader", ts.ref, exc.problem)
            return
        except SparkSecretsError as exc:  # an outage: try again soon, but never wait past a third of what is left
            note.delay_ms = min(max(note.delay_ms * 2, RETRY_FIRST_MS), RETRY_MAX_MS)
            wait = min(note.delay_ms, max(RETRY_FIRST_MS, (expiry - now) // 3))
            note.retry_at_ms = now + wait
            log.warning("standby: could not renew %s for a late leader: %s; retrying in %.0f s", ts.ref, exc.problem,
                        wait / 1000)
            return
        note.expiry_ms, note.renewed_at_ms, note.retry_at_ms, note.delay_ms = min(expiries), now, 0, 0
        self.metrics.standby_renewals += 1
        log.info("standby renewed %s (%d token(s), sequence %s) for a late leader: now expires %s; the Secret is "
                 "left to the leader", ts.ref, len(expiries), ",".join(str(i.sequence_number) for i in
                                                                       full.identifiers[:1]), rfc3339(note.expiry_ms))
