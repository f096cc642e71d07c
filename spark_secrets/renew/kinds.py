"""Token kinds: what the renew service does with one kind of delegation token, behind one interface.

The service groups a Secret's tokens by kind and asks each kind to obtain new ones for the owner,
renew them, or cancel them. A new kind (KMS, the Hive metastore) is one new class here and one entry
in :func:`default_kinds`, not edits across the service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import gssapi
from requests.auth import AuthBase

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.tokens.fetcher import cancel_token, obtain_tokens, renew_token
from spark_secrets.hadoop.conf import FILESYSTEM_SCHEMES, HadoopConf
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND, KMS_DELEGATION_KIND
from spark_secrets.errors import UnusableSecret
from spark_secrets.tokens.kms import cancel_kms_token, renew_kms_token
from spark_secrets.tokens.metastore import (
    Metastore,
    add_hive_token,
    cancel_hive_token,
    obtain_hive_token,
    renew_hive_token,
)
from spark_secrets.hadoop.token import Token


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


@dataclass
class HiveTokens:
    """Hive metastore delegation tokens, spoken to over Thrift with SASL GSSAPI as the service.

    Re-issue asks the metastore URIs the Secret names (its ``thrift://`` targets); renewal and
    cancelling ask the metastore the service is configured with (a token's service is only the
    signature clients select it by, not an address)."""

    credentials: Callable[[], gssapi.Credentials | None]
    renewer: str
    metastore: Metastore | None = None
    name: str = "hive"

    def owns_token(self, token: Token) -> bool:
        return token.kind == HIVE_DELEGATION_KIND

    def owns_target(self, target: str) -> bool:
        return target.startswith("thrift://")

    def _configured(self) -> Metastore:
        if self.metastore is None:
            raise UnusableSecret("a Secret holds a Hive metastore token, but the renew service knows no metastore",
                                 "give the renew service --hive-metastore-uris and --hive-principal (or a "
                                 "hive-site.xml in its HADOOP_CONF_DIR)")
        return self.metastore

    def obtain(self, targets: Sequence[str], owner: str) -> Credentials:
        configured = self._configured()
        metastore = Metastore(tuple(targets), configured.principal, configured.signature)
        creds = Credentials()
        add_hive_token(creds, obtain_hive_token(metastore, owner, self.renewer, self.credentials()))
        return creds

    def renew(self, token: Token) -> int:
        return renew_hive_token(token, self._configured(), self.credentials())

    def cancel(self, token: Token) -> None:
        cancel_hive_token(token, self._configured(), self.credentials())


def default_kinds(auth: Callable[[], AuthBase], renewer: str, *, conf: HadoopConf | None = None,
                  verify: bool | str = True, metastore: Metastore | None = None) -> list[TokenKind]:
    return [HdfsTokens(auth, renewer, conf, verify), KmsTokens(auth, verify),
            HiveTokens(lambda: getattr(auth(), "credentials", None), renewer, metastore)]
