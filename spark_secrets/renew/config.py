"""What the renew service's loop is told, already parsed: who it is, where it looks, when it acts."""

from __future__ import annotations

from dataclasses import dataclass, field

from spark_secrets.renew.policy import Policy


@dataclass(frozen=True)
class ServiceConfig:
    """The settings of one :class:`~spark_secrets.renew.service.RenewService` (its clients come apart)."""

    #: The short name tokens name as their renewer (its Kerberos login's).
    renewer: str
    #: Who the service is in the Secrets it writes (``acted-by``); default: :attr:`renewer`.
    principal: str | None = None
    #: Namespaces to watch; None: every namespace.
    namespaces: tuple[str, ...] | None = None
    policy: Policy = field(default_factory=Policy)
    #: Seconds the API server keeps a watch open before it is made again.
    watch_timeout: int = 60
    #: Seconds between ownership sweeps (0: never).
    sweep_interval: float = 30.0
    #: A token Secret no pod has used for this long is deleted (or emptied, if pre-created).
    orphan_grace_ms: int = 600_000

    @property
    def acted_by(self) -> str:
        return self.principal or self.renewer
