"""Token kinds as the renew service sees them: each registered token provider
(:mod:`spark_secrets.tokens.registry`) with the service's own login and renewer.

The service groups a Secret's tokens by kind and asks each kind to obtain new ones for the owner,
renew them, or cancel them. A new kind is a new provider in the registry; nothing here changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from spark_secrets.transport import HttpAuth

from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.tokens.metastore import Metastore
from spark_secrets.tokens.provider import TokenContext, TokenProvider
from spark_secrets.tokens.registry import providers


class TokenKind(Protocol):
    """One kind of delegation token and the server that issues it."""

    @property
    def name(self) -> str:
        """Short name, in metrics and messages."""

    def owns_token(self, token: Token) -> bool:
        """Whether ``token`` is of this kind."""

    def owns_target(self, target: str) -> bool:
        """Whether this kind obtains tokens for ``target`` (a filesystem URI, a metastore URI, ...)."""

    def obtain(self, targets: Sequence[str], owner: str) -> Credentials:
        """New tokens for ``owner`` (the service acting as a proxy user) from each of ``targets``."""

    def renew(self, token: Token) -> int:
        """Renew at the issuing server; the new expiry in ms since the epoch."""

    def cancel(self, token: Token) -> None:
        """Cancel at the issuing server (the password is not needed: servers authorize by identity)."""

    def facts(self, token: Token) -> TokenFacts | None:
        """Whose ``token`` is and when it ends, as its server says (``None``: it knows no such token)."""


@dataclass
class ProviderKind:
    """A token provider with the renew service's login (SPNEGO, or SASL GSSAPI from the same
    credentials), renewer and servers."""

    provider: TokenProvider
    context: TokenContext

    @property
    def name(self) -> str:
        return self.provider.kind

    def owns_token(self, token: Token) -> bool:
        return token.kind in self.provider.token_kinds

    def owns_target(self, target: str) -> bool:
        return self.provider.owns_target(target)

    def obtain(self, targets: Sequence[str], owner: str) -> Credentials:
        creds = Credentials()
        self.provider.obtain(targets, self.context, creds, owner=owner)
        return creds

    def renew(self, token: Token) -> int:
        return self.provider.renew(token, self.context)

    def cancel(self, token: Token) -> None:
        self.provider.cancel(token, self.context)

    def facts(self, token: Token) -> TokenFacts | None:
        return self.provider.facts(token, self.context)


def default_kinds(auth: Callable[[], HttpAuth], renewer: str, *, conf: HadoopConf | None = None,
                  verify: bool | str = True, metastore: Metastore | None = None,
                  spark_conf: Mapping[str, str] | None = None) -> list[TokenKind]:
    """Every registered provider, logged in as the service (``auth`` is called per server call).

    ``spark_conf`` holds the settings of kinds configured in Spark's vocabulary (the Kafka clusters the
    service serves); a Secret's targets are its writer's input, so only servers configured here are asked."""
    context = TokenContext(auth=auth, hadoop=conf, verify=verify, renewer=renewer, user=renewer, metastore=metastore,
                           conf=dict(spark_conf or {}), targets_trusted=False)
    return [ProviderKind(provider, context) for provider in providers()]
