"""When to renew and when to re-issue the tokens in a token Secret (pure: no I/O, injectable clock).

Renewal extends a token's expiry on the NameNode but never past its max date; before the max date
the renew service must obtain a new token for the owner. After a re-issue the pods keep using the
outgoing tokens until kubelet projects the new file, so those are renewed too, until the Secret says
(:mod:`.rollover`). Times are milliseconds since the epoch, as the token servers answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from spark_secrets.duration import duration_text
from spark_secrets.secrets.tokensecret import TokenSecret

RENEW = "renew"
REISSUE = "reissue"


@dataclass(frozen=True)
class Policy:
    """Renew at ``ratio`` of the time left since the last renewal; re-issue ``reissue_before_ms``
    before the max date; spread actions by up to ``jitter`` of their lead time; keep a re-issue's
    outgoing tokens alive for ``projection_bound_ms`` after it (0: not at all)."""

    ratio: float = 0.75
    reissue_before_ms: int = 3_600_000
    jitter: float = 0.05
    #: How long pods may still use the outgoing tokens after a re-issue's write: kubelet's default 60 s
    #: sync period plus its cache TTL and jitter, and the plugin's reaction to the new file.
    projection_bound_ms: int = 120_000
    #: How late a re-issue due at its window's opening may start (a busy loop, a lease handover, a slow
    #: server): tokens that would lapse sooner after the opening are renewed once more before it.
    reissue_slack_ms: int = 60_000

    def next_action(self, ts: TokenSecret, now_ms: int, rng: random.Random | None = None) -> tuple[str, int]:
        """``(RENEW | REISSUE, due time)``: the earlier of :meth:`main_action` and :meth:`outgoing_due` (a
        renewal); a due time in the past means now. Once the main action is due it comes first: a
        renewal of the main tokens renews due outgoing ones in the same write, a re-issue replaces them."""
        action, due = self.main_action(ts, now_ms, rng)
        outgoing = self.outgoing_due(ts, now_ms)
        if outgoing is not None and outgoing < due and due > now_ms:
            return RENEW, outgoing
        return action, due

    def outgoing_due(self, ts: TokenSecret, now_ms: int) -> int | None:
        """When the outgoing tokens of a re-issue need renewing, at ``ratio`` of their time left as the
        main ones; None when there are none the service sealed, their window has passed, they lapsed
        (renewing is no use), or they outlive the window already."""
        out = ts.outgoing
        if out is None or not out.verified or not now_ms < out.expiry_ms < out.until_ms:
            return None
        return out.renewed_at_ms + int(self.ratio * (out.expiry_ms - out.renewed_at_ms))

    def main_action(self, ts: TokenSecret, now_ms: int, rng: random.Random | None = None,
                    spread: bool = True) -> tuple[str, int]:
        """``(RENEW | REISSUE, due time)`` for the tokens in the Secret's main key (``spread``: brought
        earlier by the jitter, to schedule; without it: whether the action is due yet).

        A token whose expiry the service has not learnt from its server is renewed at first sight, as
        YARN's ResourceManager does at submission: the submission's expiry is a guess, and a NameNode
        whose renew interval is shorter than the guess would let the token lapse before a renewal
        scheduled from it. The same holds for a Secret the service has not verified (sealed): until it
        renewed the tokens itself, nothing says they are genuine, and the annotations are the writer's.
        """
        reissue_at = ts.max_date_ms - self.reissue_before_ms
        if not (ts.expiry_known and ts.verified):  # annotations the service did not seal are the writer's word
            return (REISSUE if reissue_at <= now_ms else RENEW), now_ms
        base = ts.renewed_at_ms or ts.issue_date_ms
        renew_at = base + int(self.ratio * (ts.expiry_ms - base))
        if ts.expiry_ms <= now_ms or reissue_at <= now_ms:
            return REISSUE, now_ms  # expired (renewing is no use), or inside the re-issue window
        # No renewal before the window opens if the tokens outlive its opening by the renewal's own margin,
        # or by the slack for a late start if that is less; or if a renewal cannot extend them (max date).
        margin = min(ts.expiry_ms - renew_at, self.reissue_slack_ms)
        if ts.expiry_ms - reissue_at >= margin or ts.expiry_ms >= ts.max_date_ms:
            return REISSUE, reissue_at
        lead = max(0, renew_at - now_ms)
        early = int(lead * self.jitter * (rng or random).random()) if spread else 0
        return RENEW, renew_at - early


def estimate_warning(ts: TokenSecret, expiry_ms: int, now_ms: int) -> str | None:
    """The line to log when the submission's estimated renew interval was off by more than a tenth
    (``expiry_ms``: the token server's answer to the first renewal at ``now_ms``)."""
    if expiry_ms >= ts.max_date_ms:
        return None  # capped at the max date: the answer does not say what the interval is
    actual, guessed = expiry_ms - now_ms, ts.expiry_ms - ts.issue_date_ms
    # The estimate was cut at the max date (it was at least this); older annotations kept whole seconds.
    capped = ts.expiry_ms >= ts.max_date_ms - 1000
    if guessed > 0 and (capped or abs(actual - guessed) > max(0.1 * actual, 2_000)):
        return (f"{ts.ref}: the token server's renew interval is about {duration_text(actual)}, the submission "
                f"estimated {'at least ' if capped else ''}{duration_text(guessed)}; set "
                f"spark.secrets.renewInterval={duration_text(actual)} (or dfs.namenode.delegation.token.renew-interval "
                "in the submitters' HADOOP_CONF_DIR) so expiry annotations are right")
    return None
