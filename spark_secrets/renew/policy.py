"""When to renew and when to re-issue the tokens in a token Secret (pure: no I/O, injectable clock).

Renewal extends a token's expiry on the NameNode but never past its max date; before the max date
the renew service must obtain a new token for the owner. Times are milliseconds since the epoch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from spark_secrets.duration import duration_text
from spark_secrets.tokensecret import TokenSecret

RENEW = "renew"
REISSUE = "reissue"


@dataclass(frozen=True)
class Policy:
    """Renew at ``ratio`` of the time left since the last renewal; re-issue ``reissue_before_ms``
    before the max date; spread actions by up to ``jitter`` of their lead time."""

    ratio: float = 0.75
    reissue_before_ms: int = 3_600_000
    jitter: float = 0.05

    def next_action(self, ts: TokenSecret, now_ms: int, rng: random.Random | None = None) -> tuple[str, int]:
        """``(RENEW | REISSUE, due time)``; a due time in the past means now.

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
        if ts.expiry_ms >= reissue_at or renew_at >= reissue_at:
            return REISSUE, reissue_at  # no renewal needed before the window opens
        lead = max(0, renew_at - now_ms)
        spread = int(lead * self.jitter * (rng or random).random())
        return RENEW, renew_at - spread


def estimate_warning(ts: TokenSecret, expiry_ms: int, now_ms: int) -> str | None:
    """The line to log when the submission's estimated renew interval was off by more than a tenth
    (``expiry_ms``: the token server's answer to the first renewal at ``now_ms``)."""
    if expiry_ms >= ts.max_date_ms:
        return None  # capped at the max date: the answer does not say what the interval is
    actual, guessed = expiry_ms - now_ms, ts.expiry_ms - ts.issue_date_ms
    # The estimate was cut at the max date (it was at least this); annotations keep whole seconds.
    capped = ts.expiry_ms >= ts.max_date_ms - 1000
    if guessed > 0 and (capped or abs(actual - guessed) > max(0.1 * actual, 2_000)):
        return (f"{ts.ref}: the token server's renew interval is about {duration_text(actual)}, the submission "
                f"estimated {'at least ' if capped else ''}{duration_text(guessed)}; set "
                f"spark.secrets.renewInterval={duration_text(actual)} (or dfs.namenode.delegation.token.renew-interval "
                "in the submitters' HADOOP_CONF_DIR) so expiry annotations are right")
    return None
