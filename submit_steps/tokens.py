"""Step 1: delegation tokens from the user's ticket cache, from every registered token provider the job
needs (:mod:`spark_secrets.tokens.registry`): its filesystems' (with the KMS tokens of their
encryption zones), the Hive metastore's, ..."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from spark_secrets.errors import KerberosError, SparkSecretsError
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.login.kerberos import TicketCache, current_ticket_cache
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.tokens.hdfs import HdfsProvider, kms_shortfall, merge
from spark_secrets.tokens.provider import Shortfall, TokenContext, TokenProvider
from spark_secrets.tokens.registry import cancel_any, providers
from submit_steps.context import JobContext
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep

#: A stand-in for the filesystems' obtain (tests): (filesystems, renewer, ticket, CA bundle, KMS problems) -> tokens.
Fetch = Callable[[Sequence[str], "str | None", TicketCache, "str | bool", "list[SparkSecretsError]"], Credentials]


class DelegationTokenStep(SubmitStep):
    """Checks the TGT, then asks each registered token provider the job needs for its tokens, with
    the renew service as renewer. A provider that is not essential (a KMS, the metastore) and fails
    is named in a warning and the other tokens still go in: jobs that do not need that server keep
    working. ``providers`` replaces the registry's; ``fetch`` the filesystems' obtain (tests)."""

    def __init__(self, context: JobContext | Settings, *, ticket: Callable[[], TicketCache] | None = None,
                 fetch: Fetch | None = None, providers: Sequence[TokenProvider] | None = None) -> None:
        super().__init__(context)
        settings = self.settings
        self._ticket = ticket or (lambda: current_ticket_cache(min_lifetime=settings.min_ticket_lifetime))
        self._fetch = fetch
        self._providers = tuple(providers) if providers is not None else None

    @property
    def providers(self) -> tuple[TokenProvider, ...]:
        """The providers asked, in order (the registry's when none were given)."""
        return self._providers if self._providers is not None else providers()

    @property
    def enabled(self) -> bool:
        return any(provider.required(self.settings) for provider in self.providers)

    @property
    def disabled_note(self) -> str | None:
        return "no spark.secrets.hadoop.filesystems: no delegation tokens obtained"

    def check_ticket(self) -> TicketCache:
        """The TGT, checked for lifetime; raises a one-line KerberosError otherwise."""
        return self._ticket()

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec.add_note("no spark.secrets.hadoop.filesystems: no delegation tokens obtained")
        ticket = self.check_ticket()
        renewer = self.settings.renewer or ticket.short_name
        auth = SpnegoAuth(ticket.credentials)
        ctx = TokenContext(auth=lambda: auth, hadoop=self.settings.hadoop_conf, verify=self.settings.ca_bundle,
                           renewer=renewer, user=ticket.short_name, metastore=self.settings.hive_metastore,
                           conf=self.settings.conf)
        wanted = [(provider, provider.required(self.settings)) for provider in self.providers]
        asked = [(provider, targets) for provider, targets in wanted if targets]
        creds = Credentials()
        came_along: list[Shortfall] = []  # tokens that come with another's (a KMS's): the first is raised if none
        shortfalls: list[Shortfall] = []
        failed: SparkSecretsError | None = None
        for (provider, _), (got, along, error) in zip(asked, self._obtain_all(asked, ctx, ticket)):
            merge(creds, got)  # in the providers' order, whichever answered first
            came_along.extend(along)
            if error is not None and provider.essential:
                failed = failed or error
            elif error is not None:
                shortfalls.append(Shortfall(provider.title, provider.consequence, error))
        if failed is not None:
            _cancel_obtained(creds, ctx)  # the submission stops here: leave no token behind
            raise failed
        if not len(creds):
            raise (came_along[0].error if came_along else
                   KerberosError("no token could be obtained", "see the warnings above"))
        spec = replace(spec, credentials=creds, principal=ticket.principal)
        sources = [s for provider, targets in wanted if (s := provider.summary(targets, creds))]
        spec = spec.add_note(f"obtained {len(creds)} token(s) for {ticket.principal} from {' and '.join(sources)}, "
                             f"renewer {renewer}")
        for shortfall in came_along + shortfalls:  # the other tokens still go in: jobs that do not need that server work
            spec = spec.add_note(shortfall.warning())
        return spec

    def _obtain_all(self, asked: Sequence[tuple[TokenProvider, Sequence[str]]], ctx: TokenContext,
                    ticket: TicketCache) -> list[tuple[Credentials, list[Shortfall], SparkSecretsError | None]]:
        """Each provider's tokens, what came along short and its failure, asked all at once (a thread each beside
        the first): the servers answer in parallel, and a client's first import (kafka-python's is a tenth of a
        second) overlaps the other servers' round trips. Any other exception is raised once all have ended."""
        results: list[tuple[Credentials, list[Shortfall], SparkSecretsError | None]] = [
            (Credentials(), [], None) for _ in asked]
        unexpected: list[BaseException] = []

        def one(i: int) -> None:
            provider, targets = asked[i]
            got, along = results[i][0], results[i][1]
            try:
                self._obtain(provider, targets, ctx, got, along, ticket)
            except SparkSecretsError as exc:
                results[i] = (got, along, exc)
            except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
                unexpected.append(exc)

        threads = [threading.Thread(target=one, args=(i,), name=f"tokens-{asked[i][0].kind}", daemon=True)
                   for i in range(1, len(asked))]
        for thread in threads:
            thread.start()
        if asked:
            one(0)
        for thread in threads:
            thread.join()
        if unexpected:
            raise unexpected[0]
        return results

    def _obtain(self, provider: TokenProvider, targets: Sequence[str], ctx: TokenContext, creds: Credentials,
                shortfalls: list[Shortfall], ticket: TicketCache) -> None:
        if self._fetch is not None and isinstance(provider, HdfsProvider):  # the tests' stand-in
            problems: list[SparkSecretsError] = []
            merge(creds, self._fetch(targets, ctx.renewer, ticket, ctx.verify, problems))
            shortfalls.extend(kms_shortfall(p) for p in problems)
            return
        provider.obtain(targets, ctx, creds, shortfalls=shortfalls)


def _cancel_obtained(creds: Credentials, ctx: TokenContext) -> None:
    """Cancel what earlier providers obtained for a submission that fails; a token that will not cancel is
    left to its expiry (the failure that stops the submission is the one to report)."""
    for token in {t.identifier: t for t in creds}.values():
        try:
            cancel_any(token, ctx)
        except SparkSecretsError:
            pass
