"""Kafka delegation tokens behind the provider interface, stored exactly as Spark's own
``KafkaDelegationTokenProvider`` stores them, and configured in Spark's vocabulary.

Settings (Spark's ``KafkaTokenSparkConf``; ``<id>`` names a cluster):

* ``spark.kafka.clusters.<id>.auth.bootstrap.servers``: where tokens are asked for (required);
* ``...security.protocol`` (``SASL_SSL``), ``...sasl.kerberos.service.name`` (``kafka``),
  ``...target.bootstrap.servers.regex`` (``.*``: which consumers' servers the token serves),
  ``...sasl.token.mechanism`` (``SCRAM-SHA-512``), ``...ssl.truststore.type``/``location`` (a ``PEM``
  truststore is this client's CA file; others leave the CA bundle as configured), and
  ``...kafka.<param>``, which overrides the same Kafka client parameter, as in Spark;
* ``spark.security.credentials.kafka.enabled`` (``true``): Spark's switch for the provider.

The token (Spark's ``KafkaTokenUtil.obtainToken``): kind ``KAFKA_DELEGATION_TOKEN``, service and alias
``kafka.server.delegation.token.<id>``, identifier the token id's bytes, password the Base64 text of the
HMAC. Executors select it by matching the consumer's bootstrap servers with the cluster's regex and
log in with SCRAM (username the token id, password that text, ``tokenauth=true``).

A target is ``kafka://<servers>/<id>`` with the non-default settings as a query (what a token Secret's
annotation and ``status`` show). Renewing and cancelling find the servers of a token's cluster (a token
names only its cluster) in ``ctx.conf``; so does obtaining when the targets are not the caller's own
(``ctx.targets_trusted`` False): the renew service contacts only the clusters it was configured with
(``renewer --kafka-cluster``, read by :func:`conf_of_targets`), whatever a Secret's writer named.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode

from spark_secrets.errors import ConfigError, KafkaError, KafkaTokenNotFound, UnusableSecret
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.token import Token, TokenFacts, short_name
from spark_secrets.tokens.kafkaclient import SASL_SSL, BrokerSettings, Connector, KafkaTokenClient
from spark_secrets.tokens.kafkaproto import TokenInfo
from spark_secrets.tokens.provider import JobSettings, Shortfall, TokenContext

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Spark's ``KafkaTokenUtil.TOKEN_KIND`` and ``TOKEN_SERVICE_PREFIX``.
KAFKA_DELEGATION_KIND = "KAFKA_DELEGATION_TOKEN"
SERVICE_PREFIX = "kafka.server.delegation.token"
#: Spark's ``KafkaTokenSparkConf``: the prefix, and the defaults of the cluster settings.
CLUSTERS_PREFIX = "spark.kafka.clusters."
ENABLED_KEY = "spark.security.credentials.kafka.enabled"
AUTH_SERVERS, TARGET_REGEX = "auth.bootstrap.servers", "target.bootstrap.servers.regex"
PROTOCOL, SERVICE_NAME, TOKEN_MECHANISM = "security.protocol", "sasl.kerberos.service.name", "sasl.token.mechanism"
TRUSTSTORE_TYPE, TRUSTSTORE_LOCATION = "ssl.truststore.type", "ssl.truststore.location"
DEFAULTS = {TARGET_REGEX: ".*", PROTOCOL: SASL_SSL, SERVICE_NAME: "kafka", TOKEN_MECHANISM: "SCRAM-SHA-512"}
#: Security protocols Spark obtains tokens for (``delegationTokensRequired``); PLAINTEXT needs none.
TOKEN_PROTOCOLS = ("SASL_SSL", "SSL", "SASL_PLAINTEXT")
#: Cluster settings a target carries when not at their default.
_CARRIED = (PROTOCOL, SERVICE_NAME)
SCHEME = "kafka://"


def token_service(cluster: str) -> str:
    """Spark's ``KafkaTokenUtil.getTokenService``: the service and alias of a cluster's token."""
    return f"{SERVICE_PREFIX}.{cluster}"


def cluster_of(token: Token) -> str:
    if not token.service.startswith(SERVICE_PREFIX + "."):
        raise UnusableSecret(f"a {token.kind} token has service {token.service!r}, which names no Kafka cluster",
                             f"obtain Kafka tokens with spark-secrets (service {SERVICE_PREFIX}.<id>)")
    return token.service[len(SERVICE_PREFIX) + 1:]


def spark_token(info: TokenInfo, cluster: str) -> Token:
    """``info`` as Spark stores it: identifier = the token id, password = the HMAC's Base64 text."""
    return Token(identifier=info.token_id.encode("utf-8"), password=base64.b64encode(info.hmac),
                 kind=KAFKA_DELEGATION_KIND, service=token_service(cluster))


def hmac_of(token: Token) -> bytes:
    try:
        return base64.b64decode(token.password, validate=True)
    except (binascii.Error, ValueError):
        raise UnusableSecret(f"the Kafka token of {token.service} has a password that is not Base64 text",
                             "obtain Kafka tokens with spark-secrets") from None


@dataclass(frozen=True)
class KafkaCluster:
    """One ``spark.kafka.clusters.<id>`` as Spark reads it (``KafkaTokenSparkConf.getClusterConfig``)."""

    cluster: str
    servers: tuple[str, ...]
    settings: Mapping[str, str]

    def get(self, key: str) -> str | None:
        """``kafka.<key>`` (Spark's pass-through Kafka parameters win), else ``<key>``, else Spark's default."""
        return self.settings.get(f"kafka.{key}") or self.settings.get(key) or DEFAULTS.get(key)

    @property
    def prefix(self) -> str:
        return f"{CLUSTERS_PREFIX}{self.cluster}."

    @property
    def protocol(self) -> str:
        return (self.get(PROTOCOL) or SASL_SSL).upper()

    @classmethod
    def from_conf(cls, conf: Mapping[str, str], cluster: str) -> KafkaCluster | None:
        """The cluster's settings; ``None`` when it names no ``auth.bootstrap.servers``."""
        prefix = f"{CLUSTERS_PREFIX}{cluster}."
        settings = {k[len(prefix):]: v for k, v in conf.items() if k.startswith(prefix)}
        servers = settings.get("kafka.bootstrap.servers") or settings.get(AUTH_SERVERS) or ""
        found = tuple(s.strip() for s in servers.split(",") if s.strip())
        return cls(cluster, found, settings) if found else None

    @property
    def target(self) -> str:
        carried = {k: v for k in _CARRIED if (v := self.get(k)) != DEFAULTS[k] and v}
        query = f"?{urlencode(carried)}" if carried else ""
        return f"{SCHEME}{','.join(self.servers)}/{quote(self.cluster, safe='')}{query}"

    @classmethod
    def parse(cls, target: str) -> KafkaCluster:
        servers, slash, rest = target[len(SCHEME):].partition("/") if target.startswith(SCHEME) else ("", "", "")
        path, _, query = rest.partition("?")
        if not slash or not servers or not path:
            raise ConfigError(f"{target!r} is not a Kafka target", "write kafka://<host:port>[,...]/<cluster id>")
        return cls(unquote(path), tuple(s for s in servers.split(",") if s), dict(parse_qsl(query)))

    def broker_settings(self, ctx: TokenContext) -> BrokerSettings:
        if self.protocol not in ("SASL_SSL", "SASL_PLAINTEXT"):
            raise KafkaError(f"Kafka cluster {self.cluster}: security.protocol {self.protocol} cannot ask for "
                             "delegation tokens (this client asks over Kerberos: SASL GSSAPI)",
                             f"set {self.prefix}{PROTOCOL} to SASL_SSL or SASL_PLAINTEXT")
        pem = (self.get(TRUSTSTORE_TYPE) or "").upper() == "PEM" and self.get(TRUSTSTORE_LOCATION)
        return BrokerSettings(self.cluster, self.servers, self.protocol, self.get(SERVICE_NAME) or "kafka",
                              pem or ctx.verify, prefix=self.prefix)


def cluster_ids(conf: Mapping[str, str]) -> tuple[str, ...]:
    """Every ``<id>`` of ``spark.kafka.clusters.<id>.*``, sorted (Spark's ``getAllClusterConfigs``)."""
    return tuple(sorted({k[len(CLUSTERS_PREFIX):].split(".", 1)[0] for k in conf
                         if k.startswith(CLUSTERS_PREFIX) and k[len(CLUSTERS_PREFIX):].split(".", 1)[0]}))


def clusters(conf: Mapping[str, str]) -> list[KafkaCluster]:
    """The clusters a job wants tokens from: with auth servers and a security protocol that needs them."""
    if (conf.get(ENABLED_KEY) or "true").strip().lower() == "false":
        return []
    found = []
    for cluster in cluster_ids(conf):
        settings = KafkaCluster.from_conf(conf, cluster)
        if settings is None:
            log.warning("Kafka cluster %s has no %s%s.%s: no token for it", cluster, CLUSTERS_PREFIX, cluster,
                        AUTH_SERVERS)
        elif settings.protocol in TOKEN_PROTOCOLS:
            found.append(settings)
    return found


def conf_of_targets(targets: Sequence[str]) -> dict[str, str]:
    """The ``spark.kafka.clusters.*`` settings that Kafka ``targets`` carry (for a renew service's ``ctx.conf``)."""
    conf: dict[str, str] = {}
    for target in targets:
        if target.startswith(SCHEME):
            cluster = KafkaCluster.parse(target)
            conf[f"{cluster.prefix}{AUTH_SERVERS}"] = ",".join(cluster.servers)
            conf.update({f"{cluster.prefix}{k}": v for k, v in cluster.settings.items()})
    return conf


class KafkaProvider:
    """Kafka delegation tokens over the Kafka protocol with SASL GSSAPI, one per cluster.

    ``connect`` opens a channel to a broker (:func:`spark_secrets.tokens.kafkaclient.open_channel`
    when ``None``; the tests inject a broker of their own). The provider remembers the issue and max
    dates of the last tokens it created (by token id, never the HMAC): a broker describes, renews and
    expires from its metadata cache, which in KRaft learns of a new token a moment after the answer
    that created it; so a token created here is also renewed or expired again while it is that new."""

    kind = "kafka"
    title = "Kafka"
    consequence = "Kafka sources and sinks will fail to log in"
    #: A job names a Kafka cluster only to read or write it: without the token it cannot, so the submission stops.
    essential = True
    token_kinds: tuple[str, ...] = (KAFKA_DELEGATION_KIND,)
    check_name = "kafka"
    #: How many created tokens' facts are remembered; how long :meth:`facts` asks the brokers otherwise;
    #: how long after creating a token a broker may not know it yet.
    REMEMBERED, DESCRIBE_WAIT_S, FRESH_S = 256, 5.0, 5.0

    def __init__(self, connect: Connector | None = None) -> None:
        self.connect = connect
        self._dates: OrderedDict[str, tuple[TokenFacts, float]] = OrderedDict()  # and when created (monotonic)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "KafkaProvider()"

    def required(self, job: JobSettings) -> tuple[str, ...]:
        return tuple(cluster.target for cluster in clusters(job.conf))

    def owns_target(self, target: str) -> bool:
        return target.startswith(SCHEME)

    def client(self, cluster: KafkaCluster, ctx: TokenContext) -> KafkaTokenClient:
        return KafkaTokenClient(cluster.broker_settings(ctx), ctx.gssapi_credentials(), connect=self.connect)

    def _configured(self, token: Token, ctx: TokenContext) -> KafkaCluster:
        return self._known(cluster_of(token), ctx)

    @staticmethod
    def _known(name: str, ctx: TokenContext) -> KafkaCluster:
        cluster = KafkaCluster.from_conf(ctx.conf, name)
        if cluster is None:
            raise UnusableSecret(f"no bootstrap servers are configured for Kafka cluster {name}",
                                 f"give {CLUSTERS_PREFIX}{name}.{AUTH_SERVERS} (to the renew service: "
                                 f"--kafka-cluster kafka://<host:port>/{name})")
        return cluster

    def obtain(self, targets: Sequence[str], ctx: TokenContext, creds: Credentials, *, owner: str | None = None,
               shortfalls: list[Shortfall] | None = None) -> int | None:
        renewer = ctx.renewer or ctx.user
        for_owner = owner if owner and owner != ctx.user else None
        expiries = []
        for target in targets:
            cluster = self._target(target, ctx)
            info = self.client(cluster, ctx).create([renewer] if renewer else [], owner=for_owner)
            creds.add(spark_token(info, cluster.cluster))  # alias = service, as Spark's creds.addToken(service, ...)
            self._remember(info)
            expiries.append(info.expiry_ms)
        return min(expiries) if expiries else None

    @classmethod
    def _target(cls, target: str, ctx: TokenContext) -> KafkaCluster:
        """The cluster to ask: as the caller's conf configures it (truststore, protocol), else, for the
        caller's own targets only, as the target says."""
        cluster = KafkaCluster.parse(target)
        if not ctx.targets_trusted:
            return cls._known(cluster.cluster, ctx)
        known = KafkaCluster.from_conf(ctx.conf, cluster.cluster)  # the job's conf (truststore), if here
        return replace(cluster, settings={**known.settings, **cluster.settings}) if known is not None else cluster

    def _remember(self, info: TokenInfo) -> None:
        with self._lock:
            self._dates[info.token_id] = (TokenFacts(short_name(info.owner), info.issue_ms, info.max_ms),
                                          time.monotonic())
            while len(self._dates) > self.REMEMBERED:
                self._dates.popitem(last=False)

    def reach(self, targets: Sequence[str], ctx: TokenContext) -> str:
        """A SASL GSSAPI login to a broker of each cluster that asks for nothing."""
        reached = []
        for target in targets:
            client = self.client(self._target(target, ctx), ctx)
            client.login()
            reached.append(client.settings.where)
        return ", ".join(reached)

    def facts(self, token: Token, ctx: TokenContext) -> TokenFacts | None:
        """From the create answer when this provider created ``token``, else as the brokers describe it to
        the caller (its owner or a renewer; asked again for a few seconds while they do not know it yet)."""
        known = self._created(token)
        if known is not None:
            return known[0]
        deadline = time.monotonic() + self.DESCRIBE_WAIT_S
        while (info := self.describe(token, ctx)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return TokenFacts(short_name(info.owner), info.issue_ms, info.max_ms) if info is not None else None

    def summary(self, targets: Sequence[str], creds: Credentials) -> str | None:
        count = sum(t.kind == KAFKA_DELEGATION_KIND for t in creds)
        return f"{count} Kafka cluster(s)" if count else None

    def _created(self, token: Token) -> tuple[TokenFacts, float] | None:
        with self._lock:
            return self._dates.get(token.identifier.decode("utf-8", "replace"))

    def _while_fresh(self, token: Token, call: Callable[[], T]) -> T:
        """``call``, again while the brokers do not know a token this provider created moments ago."""
        while True:
            try:
                return call()
            except KafkaTokenNotFound:
                known = self._created(token)
                if known is None or time.monotonic() - known[1] > self.FRESH_S:
                    raise
                time.sleep(0.2)

    def renew(self, token: Token, ctx: TokenContext) -> int:
        client = self.client(self._configured(token, ctx), ctx)
        return self._while_fresh(token, lambda: client.renew(hmac_of(token)))

    def cancel(self, token: Token, ctx: TokenContext) -> None:
        """Expires ``token`` now. Without its password (a handle: the renew service cancelling after the
        Secret is gone) the HMAC is read from the brokers, which describe a token to its renewers."""
        client = self.client(self._configured(token, ctx), ctx)
        if token.password:
            self._while_fresh(token, lambda: client.expire(hmac_of(token)))
            return
        info = self.describe(token, ctx)
        if info is None:
            raise KafkaTokenNotFound(f"Kafka cluster {cluster_of(token)} knows no token {token.fingerprint} this "
                                     "service may see (expired or cancelled already)")
        client.expire(info.hmac)

    def describe(self, token: Token, ctx: TokenContext) -> TokenInfo | None:
        """What the brokers know of ``token`` (``None``: nothing, e.g. after it was cancelled)."""
        token_id = token.identifier.decode("utf-8", "replace")
        infos = self.client(self._configured(token, ctx), ctx).describe()
        return next((i for i in infos if i.token_id == token_id), None)
