"""Hive metastore delegation tokens behind the provider interface (the Thrift client is
:mod:`spark_secrets.tokens.metastore`)."""

from __future__ import annotations

from collections.abc import Sequence

from spark_secrets.errors import SparkSecretsError, UnusableSecret
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.tokens.metastore import (
    Metastore,
    add_hive_token,
    cancel_hive_token,
    metastore_version,
    obtain_hive_token,
    renew_hive_token,
)
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext


class HiveProvider:
    """Hive metastore delegation tokens, spoken to over Thrift with SASL GSSAPI.

    A job needs one when a metastore is configured; its targets are the metastore's URIs. The
    principal and token signature come from ``ctx.metastore`` (a token's service is only the
    signature clients select it by, not an address), so renewing and cancelling ask that metastore."""

    kind = "hive"
    title = "Hive metastore"
    consequence = "Spark SQL on the metastore will fail"
    essential = False
    token_kinds: tuple[str, ...] = (HIVE_DELEGATION_KIND,)
    check_name = "metastore"

    def __repr__(self) -> str:
        return "HiveProvider()"

    def required(self, job: JobSettings) -> tuple[str, ...]:
        metastore = job.hive_metastore
        return metastore.uris if metastore is not None else ()

    def owns_target(self, target: str) -> bool:
        return target.startswith("thrift://")

    @staticmethod
    def _configured(ctx: TokenContext) -> Metastore:
        if ctx.metastore is None:
            raise UnusableSecret("a Hive metastore token is to be obtained, renewed or cancelled, but no metastore "
                                 "is configured",
                                 "give --hive-metastore-uris and --hive-principal (or a hive-site.xml in "
                                 "HADOOP_CONF_DIR)")
        return ctx.metastore

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        configured = self._configured(ctx)
        metastore = Metastore(tuple(targets), configured.principal, configured.signature)
        who, renewer = owner or ctx.user, ctx.renewer or ctx.user
        if not who or not renewer:
            raise UnusableSecret("a Hive metastore token names its owner and renewer, and neither is known",
                                 "log in with kinit or a keytab")
        add_hive_token(creds, obtain_hive_token(metastore, who, renewer, ctx.gssapi_credentials()))
        return None

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        return "the Hive metastore" if any(t.kind == HIVE_DELEGATION_KIND for t in creds) else None

    def renew(self, token: Token, ctx: TokenContext) -> int:
        return renew_hive_token(token, self._configured(ctx), ctx.gssapi_credentials())

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        cancel_hive_token(token, self._configured(ctx), ctx.gssapi_credentials())

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        """The first answering metastore's version, through a Kerberos (SASL GSSAPI) login."""
        configured = self._configured(ctx)
        metastore = Metastore(tuple(targets), configured.principal, configured.signature)
        try:
            version = metastore_version(metastore, ctx.gssapi_credentials())
        except SparkSecretsError as exc:
            if exc.fix:
                raise
            raise SparkSecretsError(exc.problem, "check spark.secrets.hive.metastoreUris") from exc
        return f"Hive metastore {version}".rstrip()

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        return TokenFacts.of_identifier(token)
