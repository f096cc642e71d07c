"""The token functions callers have used by name: obtain a job's filesystem (and KMS) tokens, and
renew or cancel a token of any kind through its provider (:mod:`spark_secrets.tokens.registry`)."""

from __future__ import annotations

from spark_secrets.transport import HttpAuth

from spark_secrets.hadoop.conf import FileSystemTarget, HadoopConf
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.hdfs import MAX_PARALLEL_FETCHES, obtain_tokens
from spark_secrets.tokens.namenodes import namenodes_for
from spark_secrets.tokens.provider import TokenContext

__all__ = ["MAX_PARALLEL_FETCHES", "cancel_token", "namenodes_for", "obtain_tokens", "renew_token"]


def _context(auth: HttpAuth | None, target: FileSystemTarget | None, conf: HadoopConf | None,
             verify: bool | str) -> TokenContext:
    return TokenContext(auth=lambda: auth, hadoop=conf, verify=verify,
                        filesystem=target)


def renew_token(token: Token, auth: HttpAuth | None, *, target: FileSystemTarget | None = None,
                conf: HadoopConf | None = None, verify: bool | str = True) -> int:
    """Renew at the server that issued the token (the active NameNode of ``target`` or of the one its
    service names, any instance of its KMS, ...); returns the new expiry in ms since the epoch."""
    from spark_secrets.tokens.registry import renew_any  # every kind's client: not for a fetch

    return renew_any(token, _context(auth, target, conf, verify))


def cancel_token(token: Token, auth: HttpAuth | None, *, target: FileSystemTarget | None = None,
                 conf: HadoopConf | None = None, verify: bool | str = True) -> None:
    """Cancel at the server that issued the token (the active NameNode, any instance of its KMS, ...)."""
    from spark_secrets.tokens.registry import cancel_any

    cancel_any(token, _context(auth, target, conf, verify))
