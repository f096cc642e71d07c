"""Apache Kafka (4.4.0, from Maven Central) as one Kerberized KRaft broker, with delegation tokens and ACLs.

One JVM is broker and controller at once (KRaft combined mode, no ZooKeeper). Clients reach it on one
listener, ``SASL_PLAINTEXT://localhost:<port>``, with SASL ``GSSAPI`` (Kerberos, service ``kafka``,
principal ``kafka/localhost``) or ``SCRAM-SHA-512`` with a delegation token (``tokenauth=true``).
Tokens have short lifetimes, checked every second; ``StandardAuthorizer`` refuses what no ACL allows. The
tests drive it with Kafka's own tools (token, ACL and topic commands, console producer and consumer).
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.jvmconf import daemon_env
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, java_home

KAFKA_VERSION = "4.4.0"
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
TOKEN_COMMAND = "org.apache.kafka.tools.DelegationTokenCommand"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
TOPIC_COMMAND = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
#: ``sasl.kerberos.service.name``: clients ask the KDC for ``kafka/<broker host>``.
SERVICE_NAME = "kafka"
BROKER_PRINCIPAL = f"{SERVICE_NAME}/localhost"
#: The mechanism delegation tokens authenticate with (Spark's default, ``spark.kafka.clusters.*.sasl.token.mechanism``).
TOKEN_MECHANISM = "SCRAM-SHA-512"

_LOG4J2 = """status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %d{{HH:mm:ss,SSS}} %p %c{{1}}: %m%n
rootLogger.level = {level}
rootLogger.appenderRef.err.ref = STDERR
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.log.name = org.apache.kafka.storage
logger.log.level = WARN
logger.periodic.name = org.apache.kafka.controller.PeriodicTaskControlManager
logger.periodic.level = WARN
"""


def kafka_lib() -> Path:
    """The broker's and Kafka's tools' jars (their own class path: nothing of Hadoop's goes beside them)."""
    lib = cache_dir() / "kafka" / "lib"
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise TestbedError(f"Kafka jars not found in {lib}", INSTALL_HINT)
    return lib


def kafka_user(name: str) -> str:
    """``User:<name>``, the Kafka principal of a short name (as the broker's principal mapping makes it)."""
    return name if ":" in name else f"User:{name}"


@dataclass(frozen=True)
class DelegationToken:
    """One token as Kafka's ``DelegationTokenCommand`` prints it (dates to the minute, broker's local time)."""

    token_id: str
    hmac: str
    owner: str
    requester: str
    renewers: tuple[str, ...]
    issue_date: str
    expiry_date: str
    max_date: str


def parse_tokens(output: str) -> list[DelegationToken]:
    """The token rows of ``DelegationTokenCommand`` output (``--create`` and ``--describe``)."""
    tokens: list[DelegationToken] = []
    rows = output.splitlines()
    for i, line in enumerate(rows):
        if not line.startswith("TOKENID"):
            continue
        for row in rows[i + 1:]:
            fields = row.split()
            if not fields:
                continue
            if len(fields) < 8:
                break
            renewers = " ".join(fields[4:-3]).strip("[]")
            tokens.append(DelegationToken(fields[0], fields[1], fields[2], fields[3],
                                          tuple(r.strip() for r in renewers.split(",") if r.strip()),
                                          fields[-3], fields[-2], fields[-1]))
        break
    return tokens


def _properties(props: Mapping[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


class KafkaBroker:
    """One Kerberized KRaft broker on ``localhost``; :attr:`bootstrap` is what clients configure."""

    def __init__(self, workdir: Path, kdc: Kdc, *, token_max_lifetime_ms: int = 86_400_000,
                 token_expiry_ms: int = 3_600_000, token_expiry_check_ms: int = 1_000,
                 heap: str = "512m") -> None:
        self.dir = workdir
        self.kdc = kdc
        self.token_max_lifetime_ms = token_max_lifetime_ms
        #: The renew interval: a token lives this long after its creation or last renewal (up to the max).
        self.token_expiry_ms = token_expiry_ms
        self.token_expiry_check_ms = token_expiry_check_ms
        self.heap = heap
        self.port = free_port()
        self.controller_port = free_port()
        self.conf_dir = workdir / "conf"
        self.data_dir = workdir / "data"
        self.keytab = workdir / "kafka.keytab"
        self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self._secret = secrets.token_hex(32)
        self._configs = 0
        self.daemon = Daemon("kafka", [], workdir)

    def __repr__(self) -> str:
        return f"KafkaBroker({self.bootstrap})"

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers``: the SASL_PLAINTEXT listener (the only one clients may use)."""
        return f"localhost:{self.port}"

    @property
    def principal(self) -> str:
        return self.kdc.principal(BROKER_PRINCIPAL)

    def server_properties(self) -> dict[str, str]:
        realm = self.kdc.realm
        jaas = (f'com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true '
                f'useTicketCache=false doNotPrompt=true keyTab="{self.keytab}" principal="{self.principal}";')
        return {
            # KRaft combined mode: this JVM is node 1, the only broker and the only voter.
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@localhost:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "listeners": f"SASL_PLAINTEXT://localhost:{self.port},CONTROLLER://localhost:{self.controller_port}",
            "advertised.listeners": f"SASL_PLAINTEXT://localhost:{self.port}",
            "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "log.dirs": str(self.data_dir),
            # SASL: Kerberos for people and services, SCRAM for delegation tokens.
            "sasl.enabled.mechanisms": f"GSSAPI,{TOKEN_MECHANISM}",
            "sasl.mechanism.inter.broker.protocol": "GSSAPI",
            "sasl.kerberos.service.name": SERVICE_NAME,
            "listener.name.sasl_plaintext.gssapi.sasl.jaas.config": jaas,
            f"listener.name.sasl_plaintext.{TOKEN_MECHANISM.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            # alice@REALM -> User:alice, kafka/localhost@REALM -> User:kafka, spark-renewer/localhost@REALM ->
            # User:spark-renewer (a list: no comma inside a rule).
            "sasl.kerberos.principal.to.local.rules":
                f"RULE:[1:$1@$0](.*@{realm})s/@.*//,RULE:[2:$1@$0](.*@{realm})s/@.*//,DEFAULT",
            # Delegation tokens (KIP-48; in KRaft since 3.6): the HMAC key, the lifetimes, a prompt expiry.
            "delegation.token.secret.key": self._secret,
            "delegation.token.max.lifetime.ms": str(self.token_max_lifetime_ms),
            "delegation.token.expiry.time.ms": str(self.token_expiry_ms),
            "delegation.token.expiry.check.interval.ms": str(self.token_expiry_check_ms),
            # KIP-368 as hardened clusters run it: sessions re-authenticate (every 10 s, and at a token's expiry).
            "connections.max.reauth.ms": "10000",
            # ACLs on: nothing is allowed that no ACL allows. The broker itself (kafka/localhost) is a super
            # user; so is ANONYMOUS, which only the PLAINTEXT controller listener yields (the broker half of
            # this JVM talks to its controller half there); the client-facing listener is SASL only.
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:kafka;User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
            # One node: internal topics with one replica, one partition, no waiting for more members.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "2",
        }

    # -- client configurations -------------------------------------------------------------------
    def kerberos_client_config(self, ccache: Path) -> dict[str, str]:
        """A client logged in from the ticket cache ``ccache`` (no keytab, never a prompt)."""
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "GSSAPI", "sasl.kerberos.service.name": SERVICE_NAME,
                "sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required useTicketCache=true "
                                    f'ticketCache="{ccache}" doNotPrompt=true;'}

    def token_client_config(self, token_id: str, hmac: str) -> dict[str, str]:
        """A client authenticated by a delegation token, as Spark configures one (``KafkaTokenUtil``)."""
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": TOKEN_MECHANISM,
                "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                                    f'tokenauth=true serviceName="{SERVICE_NAME}" username="{token_id}" password="{hmac}";'}

    def admin_config(self) -> dict[str, str]:
        """The broker's own identity (``User:kafka``, a super user) from its keytab: for ACLs and topics."""
        return {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "GSSAPI", "sasl.kerberos.service.name": SERVICE_NAME,
                "sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
                                    f'storeKey=true useTicketCache=false doNotPrompt=true keyTab="{self.keytab}" '
                                    f'principal="{self.principal}";'}

    def write_config(self, props: Mapping[str, str]) -> Path:
        """``props`` as a fresh client properties file (``--command-config``) in the broker's directory."""
        self._configs += 1
        path = self.dir / "clients" / f"client-{self._configs}.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_properties(props))
        path.chmod(0o600)
        return path

    # -- Kafka's own tools -----------------------------------------------------------------------
    def java(self, main: str, args: Sequence[str], *, heap: str = "256m", log_level: str = "WARN") -> list[str]:
        log_conf = self.conf_dir / f"log4j2-{log_level.lower()}.properties"
        if not log_conf.exists():
            log_conf.parent.mkdir(parents=True, exist_ok=True)
            log_conf.write_text(_LOG4J2.format(level=log_level))
        return [str(java_home() / "bin" / "java"), f"-Xmx{heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                *self.kdc.java_options(), f"-Dlog4j2.configurationFile={log_conf}",
                "-cp", f"{kafka_lib()}/*", main, *args]

    def tool(self, main: str, args: Sequence[str], config: Mapping[str, str] | None = None, *,
             config_flag: str = "--command-config", stdin: str = "", check: bool = True,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's command-line tools against this broker with the client ``config``."""
        argv = list(args)
        if config is not None:
            argv += [config_flag, str(self.write_config(config))]
        proc = subprocess.run(self.java(main, argv), env=self.kdc.env(self.dir / "no-such-ccache"),
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise TestbedError(f"{main.rsplit('.', 1)[-1]} {' '.join(args[:3])} failed (exit {proc.returncode})",
                               (proc.stderr + proc.stdout).strip()[-1500:])
        return proc

    def create_topic(self, name: str, partitions: int = 1) -> None:
        self.tool(TOPIC_COMMAND, ["--bootstrap-server", self.bootstrap, "--create", "--if-not-exists",
                                  "--topic", name, "--partitions", str(partitions), "--replication-factor", "1"],
                  self.admin_config())

    def acl(self, principal: str, operations: Iterable[str], *, topic: str | None = None, group: str | None = None,
            user: str | None = None, cluster: bool = False, prefixed: bool = False, remove: bool = False) -> None:
        """Allow (or with ``remove``, no longer allow) ``principal`` the ``operations`` on one resource:
        a topic, a consumer group, a user (``CreateTokens``/``DescribeTokens`` for that user) or the cluster."""
        resource: list[str] = []
        if topic is not None:
            resource += ["--topic", topic]
        if group is not None:
            resource += ["--group", group]
        if user is not None:
            resource += ["--user-principal", kafka_user(user)]
        if cluster:
            resource.append("--cluster")
        if len(resource) != (1 if cluster else 2):
            raise TestbedError("acl() takes exactly one resource", "give one of topic, group, user, cluster")
        args = ["--bootstrap-server", self.bootstrap, "--remove" if remove else "--add", "--force",
                "--allow-principal", kafka_user(principal), *resource]
        for operation in operations:
            args += ["--operation", operation]
        if prefixed:
            args += ["--resource-pattern-type", "prefixed"]
        self.tool(ACL_COMMAND, args, self.admin_config())

    def grant_client(self, principal: str, topic: str, group: str | None = None) -> None:
        """What a streaming job's identity needs: read and write ``topic`` (and read with ``group``)."""
        self.acl(principal, ("Read", "Write", "Describe"), topic=topic)
        if group is not None:
            self.acl(principal, ("Read", "Describe"), group=group)

    def grant_create_tokens(self, requester: str, owner: str) -> None:
        """Let ``requester`` (the renew service) create tokens owned by ``owner`` (Kafka >= 3.3, KIP-373)."""
        self.acl(requester, ("CreateTokens", "DescribeTokens"), user=owner)

    def create_token_command(self, config: Mapping[str, str], *, renewers: Iterable[str] = (),
                             owner: str | None = None, max_lifetime_ms: int = -1) -> subprocess.CompletedProcess[str]:
        """``CreateDelegationToken`` by Kafka's own ``DelegationTokenCommand`` as the client of ``config``,
        unchecked (for tests of refusals): the finished tool, its exit code and output."""
        args = ["--bootstrap-server", self.bootstrap, "--create", "--max-life-time-period", str(max_lifetime_ms)]
        for renewer in renewers:
            args += ["--renewer-principal", kafka_user(renewer)]
        if owner is not None:
            args += ["--owner-principal", kafka_user(owner)]
        return self.tool(TOKEN_COMMAND, args, config, check=False)

    def create_token(self, config: Mapping[str, str], *, renewers: Iterable[str] = (), owner: str | None = None,
                     max_lifetime_ms: int = -1) -> DelegationToken:
        """A new token (owned by ``owner``, by default the client of ``config``); -1: the broker's max lifetime."""
        proc = self.create_token_command(config, renewers=renewers, owner=owner, max_lifetime_ms=max_lifetime_ms)
        tokens = parse_tokens(proc.stdout)
        if proc.returncode != 0 or len(tokens) != 1:
            raise TestbedError(f"DelegationTokenCommand --create failed (exit {proc.returncode})",
                               (proc.stderr + proc.stdout).strip()[-1500:])
        return tokens[0]

    def describe_tokens(self, config: Mapping[str, str], owners: Iterable[str]) -> list[DelegationToken]:
        """``DescribeDelegationToken`` of the tokens owned by ``owners`` that the client of ``config`` may see
        (its own, those it renews, those a ``DescribeTokens`` ACL opens to it). Owners are required: without
        one, Kafka 4's ``DelegationTokenCommand`` sends an empty owner list, which matches no token."""
        args = ["--bootstrap-server", self.bootstrap, "--describe"]
        for owner in owners:
            args += ["--owner-principal", kafka_user(owner)]
        if len(args) == 3:
            raise TestbedError("describe_tokens() needs at least one owner", "name the owners, e.g. ['alice']")
        return parse_tokens(self.tool(TOKEN_COMMAND, args, config).stdout)

    def delegation_tokens(self, ccache: Path, owners: Iterable[str]) -> list[DelegationToken]:
        """The tokens of ``owners`` the holder of the ticket cache ``ccache`` may see."""
        return self.describe_tokens(self.kerberos_client_config(ccache), owners)

    def renew_token(self, config: Mapping[str, str], hmac: str, period_ms: int = -1) -> str:
        """``RenewDelegationToken``; returns what the tool printed (the new expiry)."""
        return self.tool(TOKEN_COMMAND, ["--bootstrap-server", self.bootstrap, "--renew", "--hmac", hmac,
                                         "--renew-time-period", str(period_ms)], config).stdout

    def expire_token(self, config: Mapping[str, str], hmac: str, period_ms: int = -1) -> str:
        """``ExpireDelegationToken`` (``period_ms`` -1: at once, which removes the token)."""
        return self.tool(TOKEN_COMMAND, ["--bootstrap-server", self.bootstrap, "--expire", "--hmac", hmac,
                                         "--expiry-time-period", str(period_ms)], config).stdout

    def produce(self, topic: str, records: Iterable[str], config: Mapping[str, str]) -> None:
        """Write ``records`` (one value a line) with Kafka's console producer, acknowledged by the broker."""
        proc = self.tool(CONSOLE_PRODUCER, ["--bootstrap-server", self.bootstrap, "--topic", topic,
                                            "--command-property", "acks=all"], config,
                         stdin="".join(f"{r}\n" for r in records))
        if "Error when sending" in proc.stderr:  # the console producer logs a failed send and exits 0
            raise TestbedError(f"the console producer could not write to {topic}", proc.stderr.strip()[-1500:])

    def producer(self, topic: str, config: Mapping[str, str], log: Path) -> subprocess.Popen[str]:
        """Kafka's console producer, running: a line to stdin is a record (acks=all), stderr goes to ``log``."""
        argv = self.java(CONSOLE_PRODUCER, ["--bootstrap-server", self.bootstrap, "--topic", topic, "--command-property",
                                            "acks=all", "--command-config", str(self.write_config(config))])
        with log.open("w") as err:
            return subprocess.Popen(argv, env=self.kdc.env(self.dir / "no-such-ccache"), text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)

    def consume(self, topic: str, count: int, config: Mapping[str, str], *, group: str | None = None,
                timeout_ms: int = 30_000, check: bool = True) -> list[str]:
        """Read ``count`` records from the beginning of ``topic`` with Kafka's console consumer."""
        args = ["--bootstrap-server", self.bootstrap, "--topic", topic, "--from-beginning",
                "--max-messages", str(count), "--timeout-ms", str(timeout_ms)]
        if group is not None:
            args += ["--group", group]
        proc = self.tool(CONSOLE_CONSUMER, args, config, check=check, timeout=timeout_ms / 1000 + 60)
        return proc.stdout.splitlines()

    # -- lifecycle -------------------------------------------------------------------------------
    def _format(self) -> None:
        """Format the metadata log once (KRaft needs a cluster id before the first start)."""
        if (self.data_dir / "meta.properties").exists():
            return
        # --cluster-id=: an id may begin with "-", which the tool would read as an option after a bare flag.
        self.tool(STORAGE_TOOL, ["format", f"--cluster-id={self.cluster_id}", "-c",
                                 str(self.conf_dir / "server.properties"), "--ignore-formatted"])

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.kdc.add_principal(BROKER_PRINCIPAL)
        if not self.keytab.exists():
            self.kdc.export_keytab(self.keytab, BROKER_PRINCIPAL)
        (self.conf_dir / "server.properties").write_text(_properties(self.server_properties()))
        self._format()
        argv = self.java(KAFKA_MAIN, [str(self.conf_dir / "server.properties")], heap=self.heap, log_level="INFO")
        argv[2:4] = ["-XX:+UseG1GC", "-Djava.awt.headless=true"]  # a server: G1 and the C2 compiler
        self.daemon = Daemon("kafka", argv, self.dir, env=daemon_env(self.kdc, self.dir), cwd=self.dir)
        seen = self.daemon.log.stat().st_size if self.daemon.log.exists() else 0  # the log is appended to
        self.daemon.start()
        self.daemon.wait_until(lambda: port_open(self.port) and b"Kafka Server started" in
                               self.daemon.log.read_bytes()[seen:], 180, "serving")

    def stop(self) -> None:
        self.daemon.stop(timeout=30)

    @property
    def running(self) -> bool:
        return self.daemon.running


__all__ = ["BROKER_PRINCIPAL", "DelegationToken", "KAFKA_VERSION", "KafkaBroker", "SERVICE_NAME", "TOKEN_MECHANISM",
           "kafka_lib", "kafka_user", "parse_tokens"]
