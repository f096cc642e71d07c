"""A re-issue's outgoing tokens, kept alive until the pods can have the new ones.

A re-issue writes new tokens into the Secret, but the pods keep using the outgoing ones until kubelet
projects the new file (about 11 s at a 10 s ``syncFrequency``, about 73 s at kubelet's default 60 s) and
the plugin reloads it. One extension before the re-issue is not enough: the token server's renew interval
may be shorter than that, and the extension may fail (a NameNode paused for a few seconds). So the
re-issue keeps the outgoing tokens in the Secret under ``<key>.outgoing`` (the main key's file format),
with annotations saying until when they are kept alive (the write plus the policy's projection bound,
capped at their max date), their expiry and last renewal, all under the service's outgoing seal
(:meth:`.Seal.of_outgoing`): a section the service did not write is never renewed or cancelled.

Until then the service renews them at the policy's ratio of their time left, as the main ones, retrying an
outage soon (never later than a third of their time left); the next write after it drops them. They are not
cancelled then (a slower projection may still use them) but with the Secret, when the job ends.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from spark_secrets.errors import HdfsPermissionError, InvalidTokenError, SparkSecretsError
from spark_secrets.renew.housekeeping import Key
from spark_secrets.renew.kinds import TokenKind
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.policy import Policy
from spark_secrets.renew.seal import Seal
from spark_secrets.hadoop.token import Token
from spark_secrets.secrets.tokensecret import (ANNOTATION_OUTGOING_EXPIRY, ANNOTATION_OUTGOING_RENEWED_AT,
                                       ANNOTATION_OUTGOING_TOKENS, ANNOTATION_OUTGOING_UNTIL,
                                       ANNOTATION_OUTGOING_VERIFIED, OUTGOING_ANNOTATIONS, Outgoing, TokenSecret,
                                       distinct_tokens, outgoing_key, rfc3339, rfc3339_ms, token_handles)

log = logging.getLogger("spark_secrets.renew")

#: After a failed renewal of outgoing tokens: wait from the first, doubling up to the last, but never more
#: than a third of their time left (nor less than the floor: a server that is down needs a moment).
RETRY_FIRST_MS, RETRY_MAX_MS, RETRY_FLOOR_MS = 1_000, 30_000, 250


@dataclasses.dataclass
class Step:
    """What one write does to the outgoing section: ``data`` and ``notes`` to merge into the patch (None
    removes), the section as it will then be, and an outage that kept it from being renewed."""

    data: dict[str, str | None] = dataclasses.field(default_factory=dict, repr=False)  # token files: passwords
    notes: dict[str, str | None] = dataclasses.field(default_factory=dict)
    outgoing: Outgoing | None = None
    failed: SparkSecretsError | None = None

    def patch(self, notes: Mapping[str, str | None], data: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The merge patch of a write of ``notes`` (and ``data``) with this step's changes in it."""
        patch: dict[str, Any] = {"metadata": {"annotations": {**notes, **self.notes}}}
        if data or self.data:
            patch["data"] = {**(data or {}), **self.data}
        return patch


def renew_each(tokens: list[Token], kind_of: Callable[[Token], TokenKind], metrics: Metrics) -> list[int]:
    """Renew ``tokens`` at their servers (counted by kind); their new expiries. The first failure stops it."""
    expiries = []
    for token in tokens:
        kind = kind_of(token)
        expiries.append(kind.renew(token))
        metrics.count(kind.name, "renew")
    return expiries


class Rollover:
    """The service's outgoing sections: sealing, checking, renewing and dropping them."""

    def __init__(self, seal: Seal, policy: Policy, kind_of: Callable[[Token], TokenKind], metrics: Metrics) -> None:
        self.seal, self.policy, self.kind_of, self.metrics = seal, policy, kind_of, metrics
        self._backoff: dict[Key, int] = {}  # Secret -> last retry delay of its outgoing tokens

    def __repr__(self) -> str:
        return f"Rollover(bound={self.policy.projection_bound_ms} ms, retrying={len(self._backoff)})"

    def check(self, ts: TokenSecret) -> None:
        """Set the outgoing section's ``verified`` from its seal (and, with the data read, the file matching it)."""
        out = ts.outgoing
        if out is not None:
            out.verified = self.seal.holds_outgoing(ts) and (ts.credentials is None or out.data_matches_handles)
            out.seal = ""  # checked: the flag is all the service keeps

    def begin(self, ts: TokenSecret, extended: tuple[int, int] | None, now_ms: int) -> Step:
        """The section a re-issue of ``ts`` writes: its current tokens, kept alive from ``extended`` (their
        expiry and when it was learnt; None: a server refused them, nothing to keep) until the projection
        bound has passed. It replaces any earlier section (not cancelled: it lapses by itself)."""
        until = min(now_ms + self.policy.projection_bound_ms, ts.max_date_ms)
        if extended is None or self.policy.projection_bound_ms <= 0 or not now_ms < extended[0] or until <= now_ms:
            return self.drop(ts)
        assert ts.credentials is not None
        out = Outgoing(token_handles(ts.credentials), until, extended[0], extended[1], credentials=ts.credentials,
                       verified=True)
        data = base64.b64encode(ts.credentials.to_bytes(ts.file_format)).decode("ascii")
        self._backoff.pop((ts.namespace, ts.name), None)
        return Step({outgoing_key(ts.key): data}, self._notes(ts, out), out)

    def at_write(self, ts: TokenSecret, now_ms: int) -> Step:
        """What a write of the main tokens does to ``ts``'s section: nothing, renew it if due, or drop it
        (its window passed, or the service did not write it)."""
        out = ts.outgoing
        if out is None:
            return Step()
        if not out.verified or now_ms >= out.until_ms:
            return self.drop(ts)
        due = self.policy.outgoing_due(ts, now_ms)
        return self.renew(ts, now_ms) if due is not None and due <= now_ms else Step(outgoing=out)

    def drop(self, ts: TokenSecret) -> Step:
        """Remove the section (the key and every ``outgoing-*`` annotation), if there is one."""
        self._backoff.pop((ts.namespace, ts.name), None)
        if ts.outgoing is None:
            return Step()
        return Step({outgoing_key(ts.key): None}, {name: None for name in OUTGOING_ANNOTATIONS})

    def renew(self, ts: TokenSecret, now_ms: int) -> Step:
        """Renew the section's tokens (sealed, data read): the updated section; dropped if a server refuses
        them (cancelled, expired: nothing left to keep alive); unchanged with ``failed`` on an outage."""
        out = ts.outgoing
        assert out is not None and out.verified and out.credentials is not None
        try:
            expiries = renew_each(distinct_tokens(out.credentials), self.kind_of, self.metrics)
        except (InvalidTokenError, HdfsPermissionError) as exc:
            log.info("%s: the token server no longer renews the outgoing tokens (%s); dropping them", ts.ref,
                     exc.problem)
            return self.drop(ts)
        except SparkSecretsError as exc:
            self.metrics.failures += 1
            return Step(outgoing=out, failed=exc)
        self._backoff.pop((ts.namespace, ts.name), None)
        renewed = dataclasses.replace(out, expiry_ms=min(expiries), renewed_at_ms=now_ms)
        log.info("kept the outgoing tokens of %s alive until %s: now expire %s", ts.ref, rfc3339(out.until_ms),
                 rfc3339(renewed.expiry_ms))
        return Step(notes=self._notes(ts, renewed), outgoing=renewed)

    def retry_at(self, ts: TokenSecret, now_ms: int) -> int:
        """When to try renewing ``ts``'s outgoing tokens again after an outage: soon, and well before they lapse."""
        key = (ts.namespace, ts.name)
        delay = min(max(self._backoff.get(key, 0) * 2, RETRY_FIRST_MS), RETRY_MAX_MS)
        self._backoff[key] = delay
        left = (ts.outgoing.expiry_ms if ts.outgoing is not None else now_ms) - now_ms
        return now_ms + max(RETRY_FLOOR_MS, min(delay, left // 3))

    def _notes(self, ts: TokenSecret, out: Outgoing) -> dict[str, str | None]:
        return {ANNOTATION_OUTGOING_TOKENS: out.handles, ANNOTATION_OUTGOING_UNTIL: rfc3339_ms(out.until_ms),
                ANNOTATION_OUTGOING_EXPIRY: rfc3339_ms(out.expiry_ms),
                ANNOTATION_OUTGOING_RENEWED_AT: rfc3339_ms(out.renewed_at_ms),
                ANNOTATION_OUTGOING_VERIFIED: self.seal.of_outgoing(ts, out)}
