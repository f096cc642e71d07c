"""Every kind of delegation token this project speaks, in one list: a new kind is a module with a
provider and one line in :data:`_PROVIDERS`."""

from __future__ import annotations

import threading

from spark_secrets.errors import UnusableSecret
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.hdfs import HdfsProvider
from spark_secrets.tokens.hive import HiveProvider
from spark_secrets.tokens.kafka import KafkaProvider
from spark_secrets.tokens.kms import KmsProvider
from spark_secrets.tokens.provider import TokenContext, TokenProvider

#: In the order a submission obtains them (the HDFS provider brings the KMS tokens along).
_PROVIDERS: list[TokenProvider] = [
    HdfsProvider(),
    KmsProvider(),
    HiveProvider(),
    KafkaProvider(),
]
_LOCK = threading.Lock()


def providers() -> tuple[TokenProvider, ...]:
    """Every registered provider, in registration order."""
    with _LOCK:
        return tuple(_PROVIDERS)


def register(provider: TokenProvider) -> TokenProvider:
    """Add ``provider`` (replacing one of the same kind, in its place); returns it."""
    with _LOCK:
        for i, known in enumerate(_PROVIDERS):
            if known.kind == provider.kind:
                _PROVIDERS[i] = provider
                break
        else:
            _PROVIDERS.append(provider)
    return provider


def unregister(kind: str) -> None:
    """Forget the provider of ``kind`` (tests that registered one)."""
    with _LOCK:
        _PROVIDERS[:] = [p for p in _PROVIDERS if p.kind != kind]


def for_kind(kind: str) -> TokenProvider:
    """The provider named ``kind`` (``"hdfs"``, ``"kms"``, ``"hive"``, ...)."""
    for provider in providers():
        if provider.kind == kind:
            return provider
    raise KeyError(kind)


def for_token(token: Token) -> TokenProvider:
    """The provider that renews and cancels ``token``; :class:`UnusableSecret` if none does."""
    for provider in providers():
        if token.kind in provider.token_kinds:
            return provider
    raise UnusableSecret(f"no token kind renews {token.kind} tokens", "upgrade spark-secrets")


def renew_any(token: Token, ctx: TokenContext) -> int:
    """Renew ``token`` at its issuing server, whatever its kind; the new expiry in ms since the epoch."""
    return for_token(token).renew(token, ctx)


def cancel_any(token: Token, ctx: TokenContext) -> None:
    """Cancel ``token`` at its issuing server, whatever its kind."""
    for_token(token).cancel(token, ctx)
