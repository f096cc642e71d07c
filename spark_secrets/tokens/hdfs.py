"""HDFS delegation tokens over WebHDFS: obtained from each filesystem's active NameNode (with the KMS
tokens of its encryption zones), stored where Hadoop clients select them, renewed and cancelled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from spark_secrets.logs import get_logger
from spark_secrets.transport import HttpAuth

from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.conf import FILESYSTEM_SCHEMES, FileSystemTarget, HadoopConf, resolve_filesystem
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import (
    HDFS_DELEGATION_KIND,
    SWEBHDFS_DELEGATION_KIND,
    WEBHDFS_DELEGATION_KIND,
)
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.tokens.kms import (
    IGNORE_NAMENODE_PROVIDER,
    KeyProvider,
    KmsProvider,
    add_kms_token,
    configured_provider,
    obtain_kms_token,
)
from spark_secrets.tokens.namenodes import Failover, namenodes_for
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext
from spark_secrets.tokens.webhdfs import WebHdfsClient

log = get_logger(__name__)  # logging itself only where a record goes (spark_secrets.logs)
#: At most this many filesystems are asked at the same time.
MAX_PARALLEL_FETCHES = 8


def obtain_tokens(filesystems: Iterable[str | FileSystemTarget], renewer: str | None, auth: HttpAuth | None, *,
                  doas: str | None = None, credentials: Credentials | None = None,
                  conf: HadoopConf | None = None, verify: bool | str = True,
                  kms_problems: list[SparkSecretsError] | None = None, failover: Failover | None = None) -> Credentials:
    """One delegation token per filesystem, stored for ``hdfs://`` and for WebHDFS use, and a KMS
    token for each key provider (KMS) the filesystems' encryption zones use.

    Each filesystem's NameNodes are asked in order (``failover`` remembers which answered last); an
    unreachable or standby one is skipped. The token is stored twice with the same identifier and
    password: as ``HDFS_DELEGATION_TOKEN`` under the service ``hdfs://`` clients select (RPC
    ``ip:port``, or ``ha-hdfs:<ns>`` for a nameservice), and as a (S)WebHDFS token under the HTTP
    ``ip:port`` (or ``ha-webhdfs:<ns>``). Several filesystems are asked at the same time; the tokens
    are stored in the order given, and the first filesystem (in that order) that fails is the error raised.

    The key provider is the one the active NameNode names (its server defaults), else the client
    configuration's, as the HDFS client chooses. A KMS that fails raises too, unless
    ``kms_problems`` is given: then the failure is appended there and the HDFS tokens still returned.
    """
    creds = credentials if credentials is not None else Credentials()
    failover = failover or Failover()
    wanted = list(filesystems)
    if conf is None and any(isinstance(fs, str) for fs in wanted):
        conf = HadoopConf.load()  # once, not once per filesystem
    targets = [fs if isinstance(fs, FileSystemTarget) else resolve_filesystem(fs, conf) for fs in wanted]

    def one(target: FileSystemTarget) -> tuple[Token, Token, str | None]:
        return _obtain_one(target, renewer, auth, doas, verify, conf, failover)

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


def _obtain_one(target: FileSystemTarget, renewer: str | None, auth: HttpAuth | None, doas: str | None,
                verify: bool | str, conf: HadoopConf | None, failover: Failover) -> tuple[Token, Token, str | None]:
    """The token for ``hdfs://`` clients, its (S)WebHDFS twin, and the filesystem's key provider (if
    any), from the first active NameNode."""
    def fetch(url: str) -> tuple[Token, Token, str | None]:
        client = WebHdfsClient(url, auth, verify=verify)
        token = client.get_delegation_token(renewer, doas=doas)
        used = next(nn for nn in target.namenodes if nn.http_url == url)
        web_kind = SWEBHDFS_DELEGATION_KIND if target.https else WEBHDFS_DELEGATION_KIND
        log.info("obtained a delegation token for %s from %s", target.uri, client.host)
        return (token.with_service(target.hdfs_service(token.service), kind=HDFS_DELEGATION_KIND),
                token.with_service(target.web_service(used), kind=web_kind), _key_provider(client, conf))

    return failover.call(_urls(target), target.uri, "GETDELEGATIONTOKEN", fetch)


def _urls(target: FileSystemTarget) -> tuple[str, ...]:
    return tuple(nn.http_url for nn in target.namenodes)


def _key_provider(client: WebHdfsClient, conf: HadoopConf | None) -> str | None:
    """The KMS for the filesystem's encryption zones: the NameNode's (unless the configuration says to
    ignore it), else the client configuration's, in ``HdfsKMSUtil``'s order."""
    ignore = conf is not None and (conf.get(IGNORE_NAMENODE_PROVIDER) or "").strip().lower() == "true"
    provider = None if ignore else client.key_provider_uri()
    return provider or (configured_provider(conf) if conf is not None else None)


def renew_hdfs_token(token: Token, auth: HttpAuth | None, *, target: FileSystemTarget | None = None,
                     conf: HadoopConf | None = None, verify: bool | str = True,
                     failover: Failover | None = None) -> int:
    """Renew at the active NameNode of ``target`` (default: the one the token's service names); the
    new expiry in ms since the epoch."""
    target = target or namenodes_for(token, conf)
    return (failover or Failover()).call(
        _urls(target), target.uri, "RENEWDELEGATIONTOKEN",
        lambda url: WebHdfsClient(url, auth, verify=verify).renew_delegation_token(token))


def cancel_hdfs_token(token: Token, auth: HttpAuth | None, *, target: FileSystemTarget | None = None,
                      conf: HadoopConf | None = None, verify: bool | str = True,
                      failover: Failover | None = None) -> None:
    """Cancel at the active NameNode of ``target`` (default: the one the token's service names)."""
    target = target or namenodes_for(token, conf)
    (failover or Failover()).call(
        _urls(target), target.uri, "CANCELDELEGATIONTOKEN",
        lambda url: WebHdfsClient(url, auth, verify=verify).cancel_delegation_token(token))


class HdfsProvider:
    """HDFS delegation tokens, spoken to over WebHDFS with SPNEGO; obtaining them brings the KMS
    tokens of the filesystems' encryption zones along (a KMS that fails is a :class:`Shortfall`).
    The provider remembers each filesystem's last active NameNode for as long as it lives."""

    kind = "hdfs"
    title = "HDFS"
    consequence = "the job cannot read or write its filesystems"
    essential = True
    token_kinds: tuple[str, ...] = (HDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND)
    check_name = "filesystem"

    def __init__(self, failover: Failover | None = None) -> None:
        self.failover = failover or Failover()

    def __repr__(self) -> str:
        return "HdfsProvider()"

    def required(self, job: JobSettings) -> tuple[str, ...]:
        return tuple(job.filesystems)

    def owns_target(self, target: str) -> bool:
        return target.split("://", 1)[0] in FILESYSTEM_SCHEMES

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        problems: list[SparkSecretsError] | None = [] if shortfalls is not None else None
        fetched = obtain_tokens(targets, ctx.renewer, ctx.auth(), conf=ctx.hadoop, verify=ctx.verify,
                                kms_problems=problems, doas=owner, failover=self.failover)
        merge(creds, fetched)
        if shortfalls is not None and problems:
            shortfalls.extend(kms_shortfall(p) for p in problems)
        return None  # the NameNode tells a token's expiry only when it is renewed

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        return f"{len(targets)} filesystem(s)" if targets else None

    def renew(self, token: Token, ctx: TokenContext) -> int:
        return renew_hdfs_token(token, ctx.auth(), target=ctx.filesystem, conf=ctx.hadoop, verify=ctx.verify,
                                failover=self.failover)

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        cancel_hdfs_token(token, ctx.auth(), target=ctx.filesystem, conf=ctx.hadoop, verify=ctx.verify,
                          failover=self.failover)

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        """Nothing asked: ``doctor`` checks each filesystem's NameNodes by itself (which one is active)."""
        return f"{len(targets)} filesystem(s)"

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        return TokenFacts.of_identifier(token)


def kms_shortfall(problem: SparkSecretsError) -> Shortfall:
    """A KMS that would not give the token a filesystem's encryption zones need."""
    return Shortfall(KmsProvider.title, KmsProvider.consequence, problem)


def merge(into: Credentials, more: Credentials) -> None:
    """``more``'s tokens (under their aliases) and secret keys into ``into``."""
    if more is into:
        return
    into.tokens.update(more.tokens)
    into.secret_keys.update(more.secret_keys)
