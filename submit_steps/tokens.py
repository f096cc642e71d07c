"""Step 1: delegation tokens from the user's ticket cache, for every configured filesystem."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from spark_secrets.credentials import Credentials
from spark_secrets.errors import SparkSecretsError
from spark_secrets.fetcher import obtain_tokens
from spark_secrets.hadoopconf import HadoopConf
from spark_secrets.identifier import KMS_DELEGATION_KIND
from spark_secrets.kerberos import TicketCache, current_ticket_cache
from spark_secrets.spnego import SpnegoAuth
from submit_steps.settings import Settings
from submit_steps.spec import SubmissionSpec
from submit_steps.step import SubmitStep

Fetch = Callable[[Sequence[str], "str | None", TicketCache, "str | bool", "list[SparkSecretsError]"], Credentials]


def _fetch(filesystems: Sequence[str], renewer: str | None, ticket: TicketCache, verify: str | bool,
           problems: list[SparkSecretsError], conf: HadoopConf | None = None) -> Credentials:
    return obtain_tokens(filesystems, renewer, SpnegoAuth(ticket.credentials), conf=conf, verify=verify,
                         kms_problems=problems)


class DelegationTokenStep(SubmitStep):
    """Checks the TGT, then obtains one token per filesystem with the renew service as renewer."""

    def __init__(self, settings: Settings, *, ticket: Callable[[], TicketCache] | None = None,
                 fetch: Fetch | None = None) -> None:
        super().__init__(settings)
        self._ticket = ticket or (lambda: current_ticket_cache(min_lifetime=settings.min_ticket_lifetime))
        self._fetch = fetch or (lambda filesystems, renewer, ticket, verify, problems:
                                _fetch(filesystems, renewer, ticket, verify, problems, settings.hadoop_conf))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.filesystems)

    def check_ticket(self) -> TicketCache:
        """The TGT, checked for lifetime; raises a one-line KerberosError otherwise."""
        return self._ticket()

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec.add_note("no spark.secrets.hadoop.filesystems: no delegation tokens obtained")
        ticket = self.check_ticket()
        renewer = self.settings.renewer or ticket.short_name
        problems: list[SparkSecretsError] = []
        creds = self._fetch(self.settings.filesystems, renewer, ticket, self.settings.ca_bundle, problems)
        spec = replace(spec, credentials=creds, principal=ticket.principal)
        kms = sum(t.kind == KMS_DELEGATION_KIND for t in creds)
        spec = spec.add_note(f"obtained {len(creds)} token(s) for {ticket.principal} from "
                             f"{len(self.settings.filesystems)} filesystem(s){f' and {kms} KMS' if kms else ''}, "
                             f"renewer {renewer}")
        for problem in problems:  # the HDFS tokens still go in: jobs outside encryption zones work
            spec = spec.add_note(f"warning: no KMS token, so reading or writing encryption zones will fail: "
                                 f"{problem}")
        return spec
