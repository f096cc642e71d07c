"""What ``doctor --probe`` learns from a fresh token of any kind: renewed once (its renew interval, which
no client knows otherwise) and cancelled, so nothing is left behind."""

from __future__ import annotations

import time
from dataclasses import dataclass

from spark_secrets.check.report import FAIL, Check
from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.provider import TokenContext
from spark_secrets.tokens.registry import cancel_any, renew_any


@dataclass(frozen=True)
class Lifetimes:
    """What a server grants: a token lives ``renew_ms`` after each renewal, at most ``max_ms``."""

    renew_ms: int
    max_ms: int


def weigh(name: str, server: str, token: Token, ctx: TokenContext, obtained: float,
          dates: tuple[int, int] | None = None) -> Lifetimes | Check:
    """Renew ``token`` (obtained at monotonic ``obtained``) once, then cancel it; its lifetimes, or the
    failing check. ``dates`` (issue, max, ms since the epoch) for kinds whose identifier is not Hadoop's."""
    ident = token.decode_identifier()
    if dates is None and ident is not None:
        dates = (ident.issue_date, ident.max_date)
    try:
        waited_ms = int((time.monotonic() - obtained) * 1000)  # the server's clock moved on as much
        expiry = renew_any(token, ctx)
    except SparkSecretsError as exc:
        return Check(name, FAIL, f"a new token cannot be renewed: {exc.problem}", exc.fix or "")
    finally:
        try:
            cancel_any(token, ctx)
        except SparkSecretsError:
            pass  # it expires by itself; the renewal's answer is what counted
    if dates is None:
        return Check(name, FAIL, f"the {server}'s token has no identifier this client can read")
    issue, most = dates
    return Lifetimes(renew_ms=max(0, expiry - issue - waited_ms), max_ms=most - issue)
