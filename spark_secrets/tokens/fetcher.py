"""Obtain delegation tokens from NameNodes into ``Credentials`` that Hadoop clients select by service."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from requests.auth import AuthBase

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import NameNodeUnavailable, SparkSecretsError
from spark_secrets.hadoop.conf import FileSystemTarget, HadoopConf, resolve_filesystem
from spark_secrets.hadoop.identifier import (
    HDFS_DELEGATION_KIND,
    KMS_DELEGATION_KIND,
    SWEBHDFS_DELEGATION_KIND,
    WEBHDFS_DELEGATION_KIND,
)
from spark_secrets.tokens.kms import (
    IGNORE_NAMENODE_PROVIDER,
    KeyProvider,
    add_kms_token,
    cancel_kms_token,
    configured_provider,
    obtain_kms_token,
    renew_kms_token,
)
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.webhdfs import WebHdfsClient

log = logging.getLogger(__name__)
T = TypeVar("T")
#: At most this many filesystems are asked at the same time.
MAX_PARALLEL_FETCHES = 8


def obtain_tokens(filesystems: Iterable[str | FileSystemTarget], renewer: str | None, auth: AuthBase | None, *,
                  doas: str | None = None, credentials: Credentials | None = None,
                  conf: HadoopConf | None = None, verify: bool | str = True,
                  kms_problems: list[SparkSecretsError] | None = None) -> Credentials:
    """One delegation token per filesystem, stored for ``hdfs://`` and for WebHDFS use, and a KMS
    token for each key provider (KMS) the filesystems' encryption zones use.

    Each filesystem's NameNodes are asked in order; an unreachable or standby one is skipped. The
    token is stored twice with the same identifier and password: as ``HDFS_DELEGATION_TOKEN`` under
    the service ``hdfs://`` clients select (RPC ``ip:port``, or ``ha-hdfs:<ns>`` for a nameservice),
    and as a (S)WebHDFS token under the HTTP ``ip:port`` (or ``ha-webhdfs:<ns>``). Several
    filesystems are asked at the same time; the tokens are stored in the order given, and the first
    filesystem (in that order) that fails is the error raised.

    The key provider is the one the active NameNode names (its server defaults), else the client
    configuration's, as the HDFS client chooses. A KMS that fails raises too, unless
    ``kms_problems`` is given: then the failure is appended there and the HDFS tokens still returned.
    """
    creds = credentials if credentials is not None else Credentials()
    wanted = list(filesystems)
    if conf is None and any(isinstance(fs, str) for fs in wanted):
        conf = HadoopConf.load()  # once, not once per filesystem
    targets = [fs if isinstance(fs, FileSystemTarget) else resolve_filesystem(fs, conf) for fs in wanted]

    def one(target: FileSystemTarget) -> tuple[Token, Token, str | None]:
        return _obtain_one(target, renewer, auth, doas, verify, conf)

    if len(targets) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(targets), MAX_PARALLEL_FETCHES),
                                thread_name_prefix="spark-secrets-fetch") as pool:
            futures = [pool.submit(one, target) for target in targets]
        obtained = [future.result() for future in futures]  # in order: the first failure is raised
    else:
        obtained = [one(target) for target in targets]
    providers: dict[str, list[str]] = {}
    for target, (hdfs_token, web_token, provider) in zip(targets, obtained):
        creds.add(hdfs_token)
        creds.add(web_token)
        if provider:
            providers.setdefault(provider, []).append(target.uri)
    for uri, users in providers.items():
        try:
            key_provider = KeyProvider.parse(uri)
            add_kms_token(creds, key_provider, obtain_kms_token(key_provider, renewer, auth, doas=doas, verify=verify),
                          users)
        except SparkSecretsError as exc:
            if kms_problems is None:
                raise
            log.warning("no KMS token from %s (for %s): %s", uri, ", ".join(users), exc.problem)
            kms_problems.append(exc)
    return creds


def _obtain_one(target: FileSystemTarget, renewer: str | None, auth: AuthBase | None, doas: str | None,
                verify: bool | str, conf: HadoopConf | None) -> tuple[Token, Token, str | None]:
    """The token for ``hdfs://`` clients, its (S)WebHDFS twin, and the filesystem's key provider (if
    any), from the first active NameNode."""
    def fetch(client: WebHdfsClient) -> tuple[Token, Token, str | None]:
        token = client.get_delegation_token(renewer, doas=doas)
        used = next(nn for nn in target.namenodes if nn.http_url == client.url)
        web_kind = SWEBHDFS_DELEGATION_KIND if target.https else WEBHDFS_DELEGATION_KIND
        log.info("obtained a delegation token for %s from %s", target.uri, client.host)
        return (token.with_service(target.hdfs_service(token.service), kind=HDFS_DELEGATION_KIND),
                token.with_service(target.web_service(used), kind=web_kind), _key_provider(client, conf))

    return _on_active(target, "GETDELEGATIONTOKEN", fetch, auth, verify)


def _key_provider(client: WebHdfsClient, conf: HadoopConf | None) -> str | None:
    """The KMS for the filesystem's encryption zones: the NameNode's (unless the configuration says to
    ignore it), else the client configuration's, in ``HdfsKMSUtil``'s order."""
    ignore = conf is not None and (conf.get(IGNORE_NAMENODE_PROVIDER) or "").strip().lower() == "true"
    provider = None if ignore else client.key_provider_uri()
    return provider or (configured_provider(conf) if conf is not None else None)


def namenodes_for(token: Token, conf: HadoopConf | None = None) -> FileSystemTarget:
    """The NameNodes that can renew or cancel ``token``, found from its kind and service.

    ``ha-<scheme>:<ns>`` names a nameservice in the Hadoop configuration; a WebHDFS token's
    ``ip:port`` is the HTTP address itself; an RPC ``ip:port`` is looked up in the configuration.
    """
    service = token.service
    if service.startswith("ha-") and ":" in service:
        scheme, _, ns = service[3:].partition(":")
        return resolve_filesystem(f"{scheme}://{ns}", conf)
    if token.kind == SWEBHDFS_DELEGATION_KIND:
        return resolve_filesystem(f"https://{service}", conf)
    if token.kind == WEBHDFS_DELEGATION_KIND:
        return resolve_filesystem(f"http://{service}", conf)
    return resolve_filesystem(f"hdfs://{service}", conf)


#: The NameNode that last answered, per set of NameNodes: asked first next time (HA failover order).
_LAST_ACTIVE: dict[tuple[str, ...], str] = {}


def _on_active(target: FileSystemTarget, op: str, call: Callable[[WebHdfsClient], T], auth: AuthBase | None,
               verify: bool | str) -> T:
    urls = tuple(nn.http_url for nn in target.namenodes)
    last = _LAST_ACTIVE.get(urls)
    skipped: list[str] = []
    for url in sorted(urls, key=lambda u: u != last):
        client = WebHdfsClient(url, auth, verify=verify)
        try:
            result = call(client)
        except NameNodeUnavailable as exc:
            log.info("skipping NameNode %s of %s for %s: %s", client.host, target.uri, op, exc.problem)
            skipped.append(f"{client.host}: {exc.problem.split(': ', 1)[-1]}")
            continue
        _LAST_ACTIVE[urls] = url
        return result
    raise NameNodeUnavailable(f"no NameNode of {target.uri} answered {op} ({'; '.join(skipped)})",
                              "check that an active NameNode is running and reachable")


def renew_token(token: Token, auth: AuthBase | None, *, target: FileSystemTarget | None = None,
                conf: HadoopConf | None = None, verify: bool | str = True) -> int:
    """Renew at the server that issued the token (the active NameNode, or any instance of its KMS);
    returns the new expiry in ms since the epoch."""
    if token.kind == KMS_DELEGATION_KIND:
        return renew_kms_token(token, auth, verify=verify)
    target = target or namenodes_for(token, conf)
    return _on_active(target, "RENEWDELEGATIONTOKEN", lambda c: c.renew_delegation_token(token), auth, verify)


def cancel_token(token: Token, auth: AuthBase | None, *, target: FileSystemTarget | None = None,
                 conf: HadoopConf | None = None, verify: bool | str = True) -> None:
    """Cancel at the server that issued the token (the active NameNode, or any instance of its KMS)."""
    if token.kind == KMS_DELEGATION_KIND:
        cancel_kms_token(token, auth, verify=verify)
        return
    target = target or namenodes_for(token, conf)
    _on_active(target, "CANCELDELEGATIONTOKEN", lambda c: c.cancel_delegation_token(token), auth, verify)
