"""The one interface every kind of delegation token is spoken to through, in the spirit of Spark's
``HadoopDelegationTokenProvider``: a name, whether a job needs its tokens, obtain them into
credentials, renew (returning the new expiry) and cancel; for ``doctor``, a login that changes
nothing (:meth:`TokenProvider.reach`); for ``doctor`` and the renew service, whose a token is and its issue
and max dates (:meth:`TokenProvider.facts`).

The submission, ``spark-secrets tokens``, ``doctor --probe`` and the renew service all go through
:mod:`spark_secrets.tokens.registry`, so a new kind is one module with a provider and one line there.
"""

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol

import gssapi
from spark_secrets.transport import HttpAuth

from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.conf import FileSystemTarget, HadoopConf
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token, TokenFacts

if TYPE_CHECKING:  # a metastore's client only where one is used: a cold `tokens fetch` does not load it
    from spark_secrets.tokens.metastore import Metastore


class JobSettings(Protocol):
    """What a provider reads a job's wishes from (``submit_steps.Settings`` is one). A kind with
    settings of its own reads them with :meth:`get`, or finds them in :attr:`conf` when their keys
    name things (Spark's ``spark.kafka.clusters.<id>.*``)."""

    @property
    def conf(self) -> Mapping[str, str]: ...

    @property
    def filesystems(self) -> tuple[str, ...]: ...

    @property
    def hive_metastore(self) -> "Metastore | None": ...

    def get(self, key: str) -> str | None: ...


def _no_auth() -> HttpAuth | None:
    return None


class TokenContext(NamedTuple):
    """How to reach and log in to the servers that issue tokens; the same for every kind.

    ``auth`` is called for each server call, so a service that logs in again from its keytab hands
    out a fresh login; its GSSAPI credentials (SASL servers such as the metastore) come from it.
    ``user`` is the caller's short name, for servers that want a token's owner named even when it
    is the caller (the metastore); ``renewer`` goes into every token obtained.
    ``metastore`` is the Hive metastore to renew and cancel at (a Hive token's service names no
    address); ``filesystem`` is the NameNodes to ask instead of those an HDFS token's service names
    (``tokens renew --filesystem``); ``conf`` is the Spark conf, for kinds with settings of their own.
    ``targets_trusted`` False: the targets are someone else's input (a Secret's annotation, read by the
    renew service), so a kind whose targets carry servers and login settings (Kafka's) contacts only
    those of :attr:`conf`, the caller's own configuration.
    """

    auth: Callable[[], HttpAuth | None] = _no_auth
    hadoop: HadoopConf | None = None
    verify: bool | str = True
    renewer: str | None = None
    user: str | None = None
    metastore: "Metastore | None" = None
    filesystem: FileSystemTarget | None = None
    conf: Mapping[str, str] = MappingProxyType({})
    targets_trusted: bool = True

    def gssapi_credentials(self) -> gssapi.Credentials | None:
        """The Kerberos credentials behind :attr:`auth` (``None``: the default ticket cache)."""
        return getattr(self.auth(), "credentials", None)


class Shortfall(NamedTuple):
    """A token a job goes without, and what fails in the job for it; the other tokens still go in."""

    title: str
    consequence: str
    error: SparkSecretsError

    def warning(self) -> str:
        return f"warning: no {self.title} token, so {self.consequence}: {self.error}"


class TokenProvider(Protocol):
    """One kind of delegation token and the servers that issue it."""

    #: Short name: metrics label, :func:`~spark_secrets.tokens.registry.for_kind`.
    kind: str
    #: How messages name its server ("Hive metastore").
    title: str
    #: What fails in a job that goes without its token.
    consequence: str
    #: Whether failing to obtain it stops a submission (else a :class:`Shortfall` is noted).
    essential: bool
    #: The Hadoop token kinds it renews and cancels.
    token_kinds: tuple[str, ...]
    #: How ``doctor`` names its check, before the targets ("metastore").
    check_name: str

    def required(self, job: JobSettings) -> tuple[str, ...]:
        """The targets (URIs) this job needs tokens from; empty when it needs none of this kind."""
        ...

    def owns_target(self, target: str) -> bool:
        """Whether this kind obtains tokens for ``target`` (a filesystem URI, a metastore URI, ...)."""
        ...

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        """New tokens from ``targets`` into ``creds``, for ``owner`` (a proxy user; ``None``: the caller)
        with ``ctx.renewer`` as renewer. Tokens that come along and fail (a KMS's) go to ``shortfalls``
        when given, else raise. Returns the next renewal time (ms since the epoch) when known."""
        ...

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        """Where ``creds``' tokens of this kind came from, for a note ("2 filesystem(s)"); ``None``: none."""
        ...

    def renew(self, token: Token, ctx: TokenContext) -> int:
        """Renew at the issuing server; the new expiry in ms since the epoch."""
        ...

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        """Cancel at the issuing server (servers authorize by identity: no password needed)."""
        ...

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        """A login to ``targets`` that changes nothing (``doctor``); what answered ("Hive metastore 4.0.1").
        Raises the project's errors, each a one-line problem and its fix."""
        ...

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        """``token``'s owner, issue and max date as its server knows them: ``doctor --probe`` weighs lifetimes
        by the dates, the renew service binds the owner to the Secret's. From a Hadoop identifier without
        asking; a kind whose identifier says nothing asks its server. ``None``: the server knows no such
        token that the caller may see."""
        ...
