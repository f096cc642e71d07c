"""Step 1: delegation tokens from the user's ticket cache: every configured filesystem's (with the KMS
tokens of its encryption zones) and the Hive metastore's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import KerberosError, SparkSecretsError
from spark_secrets.tokens.fetcher import obtain_tokens
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND, KMS_DELEGATION_KIND
from spark_secrets.login.kerberos import TicketCache, current_ticket_cache
from spark_secrets.tokens.metastore import Metastore, add_hive_token, obtain_hive_token
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.hadoop.token import Token
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep

Fetch = Callable[[Sequence[str], "str | None", TicketCache, "str | bool", "list[SparkSecretsError]"], Credentials]


def _fetch(filesystems: Sequence[str], renewer: str | None, ticket: TicketCache, verify: str | bool,
           problems: list[SparkSecretsError], conf: HadoopConf | None = None) -> Credentials:
    return obtain_tokens(filesystems, renewer, SpnegoAuth(ticket.credentials), conf=conf, verify=verify,
                         kms_problems=problems)


HiveFetch = Callable[[Metastore, str, str, TicketCache], Token]


def _fetch_hive(metastore: Metastore, owner: str, renewer: str, ticket: TicketCache) -> Token:
    return obtain_hive_token(metastore, owner, renewer, ticket.credentials)


class DelegationTokenStep(SubmitStep):
    """Checks the TGT, then obtains one token per filesystem (and its KMS) and one from the metastore,
    with the renew service as renewer. A KMS or metastore that fails is named in a warning and the
    other tokens still go in: jobs that do not need that server keep working."""

    def __init__(self, settings: Settings, *, ticket: Callable[[], TicketCache] | None = None,
                 fetch: Fetch | None = None, fetch_hive: HiveFetch | None = None) -> None:
        super().__init__(settings)
        self._fetch_hive = fetch_hive or _fetch_hive
        self._ticket = ticket or (lambda: current_ticket_cache(min_lifetime=settings.min_ticket_lifetime))
        self._fetch = fetch or (lambda filesystems, renewer, ticket, verify, problems:
                                _fetch(filesystems, renewer, ticket, verify, problems, settings.hadoop_conf))

    @property
    def enabled(self) -> bool:
        return self.settings.wants_tokens

    def check_ticket(self) -> TicketCache:
        """The TGT, checked for lifetime; raises a one-line KerberosError otherwise."""
        return self._ticket()

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec.add_note("no spark.secrets.hadoop.filesystems: no delegation tokens obtained")
        ticket = self.check_ticket()
        renewer = self.settings.renewer or ticket.short_name
        problems: list[SparkSecretsError] = []
        filesystems = self.settings.filesystems
        creds = self._fetch(filesystems, renewer, ticket, self.settings.ca_bundle, problems) if filesystems \
            else Credentials()
        warnings = [f"warning: no KMS token, so reading or writing encryption zones will fail: {p}" for p in problems]
        metastore = self.settings.hive_metastore
        if metastore is not None:
            try:
                add_hive_token(creds, self._fetch_hive(metastore, ticket.short_name, renewer, ticket))
            except SparkSecretsError as exc:
                warnings.append(f"warning: no Hive metastore token, so Spark SQL on the metastore will fail: {exc}")
        if not len(creds):
            raise (problems[0] if problems else KerberosError("no token could be obtained", "see the warnings above"))
        spec = replace(spec, credentials=creds, principal=ticket.principal)
        kms = sum(t.kind == KMS_DELEGATION_KIND for t in creds)
        hive = sum(t.kind == HIVE_DELEGATION_KIND for t in creds)
        sources = [f"{len(filesystems)} filesystem(s)"] if filesystems else []
        sources += [f"{kms} KMS"] if kms else []
        sources += ["the Hive metastore"] if hive else []
        spec = spec.add_note(f"obtained {len(creds)} token(s) for {ticket.principal} from {' and '.join(sources)}, "
                             f"renewer {renewer}")
        for warning in warnings:  # the other tokens still go in: jobs that do not need that server work
            spec = spec.add_note(warning)
        return spec
