"""Obtain delegation tokens from NameNodes into ``Credentials`` that Hadoop clients select by service."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from requests.auth import AuthBase

from spark_secrets.credentials import Credentials
from spark_secrets.errors import HdfsError
from spark_secrets.identifier import HDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND
from spark_secrets.webhdfs import WebHdfsClient


def http_token_service(url: str) -> str:
    """The service text ``webhdfs://host:port`` clients select by: the HTTP address as ``ip:port``."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise HdfsError(f"not a NameNode HTTP address: {url!r}")
    port = parts.port or (9871 if parts.scheme == "https" else 9870)
    try:
        ip = socket.gethostbyname(parts.hostname)
    except OSError:
        raise HdfsError(f"cannot resolve NameNode host {parts.hostname!r}") from None
    return f"{ip}:{port}"


def obtain_tokens(namenodes: Iterable[str], renewer: str | None, auth: AuthBase | None, *,
                  doas: str | None = None, credentials: Credentials | None = None) -> Credentials:
    """One delegation token from each NameNode HTTP address, stored for ``hdfs://`` and WebHDFS use.

    The NameNode mints the token for its RPC address (``ip:port``); the same identifier and
    password are also stored as a WebHDFS token under the HTTP address.
    """
    creds = credentials if credentials is not None else Credentials()
    for url in namenodes:
        client = WebHdfsClient(url, auth)
        token = client.get_delegation_token(renewer, doas=doas)
        creds.add(token.with_service(token.service, kind=HDFS_DELEGATION_KIND))
        web_kind = SWEBHDFS_DELEGATION_KIND if url.startswith("https") else WEBHDFS_DELEGATION_KIND
        creds.add(token.with_service(http_token_service(url), kind=web_kind))
    return creds
