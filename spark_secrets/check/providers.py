"""The check of every kind of token a job would get besides its filesystems' (the Hive metastore,
Kafka, any registered kind), through the one provider interface: a Kerberos login that changes
nothing, and with ``--probe`` real tokens, obtained, renewed and cancelled, whose lifetimes the
duration check weighs with the filesystems'. A new kind needs no edit here."""

from __future__ import annotations

import time
from collections.abc import Sequence

from spark_secrets.check.lifetimes import Lifetimes, weigh
from spark_secrets.check.report import FAIL, OK, Check
from spark_secrets.duration import duration_text
from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.provider import TokenContext, TokenProvider


def check_name(provider: TokenProvider, targets: Sequence[str]) -> str:
    """``metastore thrift://...``, ``kafka kafka://...``: the provider's name for its check and its targets."""
    return f"{provider.check_name} {','.join(targets)}".rstrip()


def check_provider(provider: TokenProvider, targets: Sequence[str], ctx: TokenContext,
                   probe: bool) -> tuple[Check, Lifetimes | None]:
    """``ctx.renewer`` is the caller, so that it may renew and cancel the probe's tokens."""
    name = check_name(provider, targets)
    try:
        reached = provider.reach(targets, ctx)
    except SparkSecretsError as exc:
        return Check(name, FAIL, exc.problem, exc.fix or ""), None
    server = f"{reached} accepts your Kerberos login"
    if not probe:
        return Check(name, OK, server), None
    creds = Credentials()
    try:
        provider.obtain(targets, ctx, creds)
        obtained = time.monotonic()
    except SparkSecretsError as exc:
        _cancel_all(provider, _mine(provider, creds), ctx)  # a token of an earlier target
        return Check(name, FAIL, f"{server}, but gives no delegation token: {exc.problem}",
                     exc.fix or f"check that the {provider.title} has delegation tokens enabled"), None
    tokens = _mine(provider, creds)
    if not tokens:
        return Check(name, FAIL, f"{server}, but gave no delegation token"), None
    measured: list[Lifetimes] = []
    failed: Check | None = None
    for token in tokens:  # each is cancelled, whatever its neighbours' fate
        try:
            facts = provider.facts(token, ctx)
            dates = (facts.issue_ms, facts.max_ms) if facts is not None else None
        except SparkSecretsError:
            dates = None
        found = weigh(name, provider.title, token, ctx, obtained, dates)
        if isinstance(found, Check):
            failed = failed or found
        else:
            measured.append(found)
    if failed is not None:
        return failed, None
    lifetimes = Lifetimes(renew_ms=min(m.renew_ms for m in measured), max_ms=min(m.max_ms for m in measured))
    what = "a token: it lives" if len(tokens) == 1 else f"{len(tokens)} tokens: the shortest lives"
    return Check(name, OK, f"{server}; obtained, renewed and cancelled {what} "
                           f"{duration_text(lifetimes.renew_ms)} after each renewal, "
                           f"{duration_text(lifetimes.max_ms)} at most"), lifetimes


def _mine(provider: TokenProvider, creds: Credentials) -> list[Token]:
    """The tokens of this kind, one per identifier (a kind may store one token under two services)."""
    return list({t.identifier: t for t in creds if t.kind in provider.token_kinds}.values())


def _cancel_all(provider: TokenProvider, tokens: list[Token], ctx: TokenContext) -> None:
    for token in tokens:
        try:
            provider.cancel(token, ctx)
        except SparkSecretsError:
            pass  # it expires by itself
