"""KMS delegation tokens (``kms-dt``): which KMS a filesystem's encryption zones use, and its tokens.

Reading or writing a file in an HDFS encryption zone asks the KMS to decrypt the file's key, so a
job needs a KMS token beside its HDFS token. Hadoop's ``KMSClientProvider`` (3.x) names the token
so (the rule a token-only JVM selects by, checked against one in the tests):

* kind ``kms-dt``; **service** = the key provider URI exactly as configured (``#fragment`` dropped),
  e.g. ``kms://http@kms1;kms2:9600/kms``: one token serves every instance of a load-balanced KMS;
* **alias** = ``ip:port`` of the provider's first host (``SecurityUtil.buildTokenService``); clients
  look the alias up first, then select by kind and service, so the service is what matters;
* the secret key ``dfs-kms-<scheme>://<authority>`` of the filesystem holds the provider URI: the
  HDFS client prefers it to asking the NameNode (``HdfsKMSUtil.getKeyProviderUri``).
"""

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar
from urllib.parse import urlsplit

from spark_secrets.logs import get_logger
from spark_secrets.transport import HttpAuth

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import ConfigError, ServerUnavailable
from spark_secrets.hadoop.conf import HadoopConf, token_service_address
from spark_secrets.hadoop.identifier import KMS_DELEGATION_KIND
from spark_secrets.hadoop.token import Token, TokenFacts
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext
from spark_secrets.tokens.webhdfs import TokenHttpClient

log = get_logger(__name__)  # logging itself only where a record goes (spark_secrets.logs)
T = TypeVar("T")

#: Where a Hadoop client configuration names the key provider (the first set wins).
KEY_PROVIDER_KEYS = ("hadoop.security.key.provider.path", "dfs.encryption.key.provider.uri")
#: When true, HDFS clients ignore the provider the NameNode names and use their own configuration's.
IGNORE_NAMENODE_PROVIDER = "dfs.client.ignore.namenode.default.kms.uri"
SECRET_KEY_PREFIX = "dfs-kms-"


class KmsClient(TokenHttpClient):
    """Delegation-token calls against one KMS instance (``http(s)://host:port/kms``)."""

    PATH = "/kms/v1/"
    SERVER = "KMS"

    def __init__(self, url: str, auth: HttpAuth | None = None, **kwargs: object) -> None:
        super().__init__(url, auth, **kwargs)  # type: ignore[arg-type]
        # The instance's context path (``/kms`` unless deployed elsewhere) comes before ``/v1/``.
        path = urlsplit(url).path.rstrip("/")
        self.PATH = f"{path or '/kms'}/v1/"


class KeyProvider(NamedTuple):
    """One ``kms://`` key provider: the URI clients name tokens by, and its instances' URLs."""

    uri: str
    urls: tuple[str, ...]

    @property
    def service(self) -> str:
        return self.uri

    @property
    def alias(self) -> str:
        """``ip:port`` of the first instance (what Hadoop stores the token under)."""
        return token_service_address(self.urls[0])

    @classmethod
    def parse(cls, uri: str) -> "KeyProvider":
        """``kms://http@host1;host2:9600/kms`` (Hadoop's load-balancing form) into its instances."""
        text = uri.strip().split("#", 1)[0]
        parts = urlsplit(text)
        proto, at, hosts = parts.netloc.rpartition("@")
        if parts.scheme != "kms" or not at or proto not in ("http", "https") or not hosts:
            raise ConfigError(f"key provider {uri!r} is not a KMS URI",
                              "use kms://http@<host>[;<host>...]:<port>/kms (or kms://https@...)")
        names, _, port = hosts.rpartition(":") if ":" in hosts else (hosts, "", "")
        if port and not port.isdigit():
            raise ConfigError(f"key provider {uri!r} has a port that is not a number", "write kms://http@host:9600/kms")
        # No port means the scheme's own (80/443), as Hadoop's provider reads it; all hosts share one.
        urls = tuple(f"{proto}://{host}{':' + port if port else ''}{parts.path or '/kms'}"
                     for host in names.split(";") if host)
        if not urls:
            raise ConfigError(f"key provider {uri!r} names no host", "write kms://http@host:9600/kms")
        return cls(text, urls)

    def clients(self, auth: HttpAuth | None, verify: bool | str = True) -> list[KmsClient]:
        return [KmsClient(url, auth, verify=verify) for url in self.urls]


def configured_provider(conf: HadoopConf) -> str | None:
    """The key provider the client configuration names, if any."""
    for key in KEY_PROVIDER_KEYS:
        value = (conf.get(key) or "").strip()
        if value:
            return value
    return None


def secret_key_for(filesystem_uri: str) -> str:
    """``dfs-kms-<scheme>://<authority>``: where a token file tells HDFS clients the filesystem's KMS."""
    parts = urlsplit(filesystem_uri)
    return f"{SECRET_KEY_PREFIX}{parts.scheme}://{parts.netloc}"


def _on_any(provider: KeyProvider, op: str, call: Callable[[KmsClient], T], auth: HttpAuth | None,
            verify: bool | str) -> T:
    """``call`` on the first instance that answers, as Hadoop's load-balancing provider fails over."""
    skipped: list[str] = []
    for client in provider.clients(auth, verify):
        try:
            return call(client)
        except ServerUnavailable as exc:
            log.info("skipping KMS %s for %s: %s", client.host, op, exc.problem)
            skipped.append(exc.problem)
    raise ServerUnavailable(f"no KMS of {provider.uri} answered {op} ({'; '.join(skipped)})",
                            "check that the KMS is running and reachable from here")


def obtain_kms_token(provider: KeyProvider, renewer: str | None, auth: HttpAuth | None, *,
                     doas: str | None = None, verify: bool | str = True) -> Token:
    """A ``kms-dt`` token named as Hadoop's client names it (service = the provider URI)."""
    token = _on_any(provider, "GETDELEGATIONTOKEN", lambda c: c.get_delegation_token(renewer, doas=doas),
                    auth, verify)
    log.info("obtained a KMS delegation token from %s", provider.uri)
    return token.with_service(provider.service, kind=KMS_DELEGATION_KIND)


def add_kms_token(creds: Credentials, provider: KeyProvider, token: Token, filesystems: list[str]) -> None:
    """Store ``token`` under Hadoop's alias, and map each filesystem to the provider."""
    creds.add(token, alias=provider.alias)
    for fs in filesystems:
        creds.secret_keys[secret_key_for(fs)] = provider.uri.encode()


def renew_kms_token(token: Token, auth: HttpAuth | None, *, verify: bool | str = True) -> int:
    """Renew at any instance of the token's KMS; the new expiry in ms since the epoch."""
    return _on_any(KeyProvider.parse(token.service), "RENEWDELEGATIONTOKEN",
                   lambda c: c.renew_delegation_token(token), auth, verify)


def cancel_kms_token(token: Token, auth: HttpAuth | None, *, verify: bool | str = True) -> None:
    """Cancel at any instance of the token's KMS."""
    _on_any(KeyProvider.parse(token.service), "CANCELDELEGATIONTOKEN",
            lambda c: c.cancel_delegation_token(token), auth, verify)


class KmsProvider:
    """KMS delegation tokens (``kms-dt``) over the KMS REST API with SPNEGO.

    They come with the filesystems whose encryption zones use that KMS (the HDFS provider obtains
    them), so this kind names no targets of its own; it renews and cancels them at any instance of
    the KMS the token's service names."""

    kind = "kms"
    title = "KMS"
    consequence = "reading or writing encryption zones will fail"
    essential = False
    token_kinds: tuple[str, ...] = (KMS_DELEGATION_KIND,)
    check_name = "kms"

    def __repr__(self) -> str:
        return "KmsProvider()"

    def required(self, job: JobSettings) -> tuple[str, ...]:
        return ()

    def owns_target(self, target: str) -> bool:
        return False

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        return None

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        count = sum(t.kind == KMS_DELEGATION_KIND for t in creds)
        return f"{count} KMS" if count else None

    def renew(self, token: Token, ctx: TokenContext) -> int:
        return renew_kms_token(token, ctx.auth(), verify=ctx.verify)

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        cancel_kms_token(token, ctx.auth(), verify=ctx.verify)

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        """Nothing asked: a KMS comes with the filesystems whose encryption zones use it (no targets)."""
        return "the filesystems' KMS"

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        return TokenFacts.of_identifier(token)
