"""Token kinds: what the renew service does with one kind of delegation token, behind one interface.

The service groups a Secret's tokens by kind and asks each kind to obtain new ones for the owner,
renew them, or cancel them. A new kind (KMS, the Hive metastore) is one new class here and one entry
in :func:`default_kinds`, not edits across the service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from requests.auth import AuthBase

from spark_secrets.credentials import Credentials
from spark_secrets.fetcher import cancel_token, obtain_tokens, renew_token
from spark_secrets.hadoopconf import FILESYSTEM_SCHEMES, HadoopConf
from spark_secrets.identifier import KMS_DELEGATION_KIND
from spark_secrets.kms import cancel_kms_token, renew_kms_token
from spark_secrets.token import Token


class TokenKind(Protocol):
    """One kind of delegation token and the server that issues it."""

    name: str

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


_HDFS_KINDS = ("HDFS_DELEGATION_TOKEN", "WEBHDFS delegation", "SWEBHDFS delegation")


@dataclass
class HdfsTokens:
    """HDFS delegation tokens, spoken to over WebHDFS (SPNEGO as the service's own principal), and
    when re-issuing, the KMS tokens of the filesystems' encryption zones with them."""

    auth: Callable[[], AuthBase]
    renewer: str
    conf: HadoopConf | None = None
    verify: bool | str = True
    name: str = "hdfs"

    def owns_token(self, token: Token) -> bool:
        return token.kind in _HDFS_KINDS

    def owns_target(self, target: str) -> bool:
        return target.split("://", 1)[0] in FILESYSTEM_SCHEMES

    def obtain(self, targets: Sequence[str], owner: str) -> Credentials:
        return obtain_tokens(targets, self.renewer, self.auth(), doas=owner, conf=self.conf, verify=self.verify)

    def renew(self, token: Token) -> int:
        return renew_token(token, self.auth(), conf=self.conf, verify=self.verify)

    def cancel(self, token: Token) -> None:
        cancel_token(token, self.auth(), conf=self.conf, verify=self.verify)


@dataclass
class KmsTokens:
    """KMS delegation tokens (``kms-dt``), spoken to over the KMS REST API (SPNEGO as the service).

    They come with the filesystems whose encryption zones use that KMS (:class:`HdfsTokens`
    obtains them), so this kind names no targets of its own; it renews and cancels them at any
    instance of the KMS the token's service names."""

    auth: Callable[[], AuthBase]
    verify: bool | str = True
    name: str = "kms"

    def owns_token(self, token: Token) -> bool:
        return token.kind == KMS_DELEGATION_KIND

    def owns_target(self, target: str) -> bool:
        return False

    def obtain(self, targets: Sequence[str], owner: str) -> Credentials:
        return Credentials()

    def renew(self, token: Token) -> int:
        return renew_kms_token(token, self.auth(), verify=self.verify)

    def cancel(self, token: Token) -> None:
        cancel_kms_token(token, self.auth(), verify=self.verify)


def default_kinds(auth: Callable[[], AuthBase], renewer: str, *, conf: HadoopConf | None = None,
                  verify: bool | str = True) -> list[TokenKind]:
    return [HdfsTokens(auth, renewer, conf, verify), KmsTokens(auth, verify)]
