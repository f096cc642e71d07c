"""A small Kafka client for delegation tokens: one connection per call to the first bootstrap server
that answers, logged in with SASL ``GSSAPI``, one request, closed.

The connection is the project's own rather than kafka-python's: kafka-python's GSSAPI mechanism logs
in with the process's default ticket cache only, while the renew service logs in from a keytab into
credentials of its own (:meth:`~spark_secrets.tokens.provider.TokenContext.gssapi_credentials`);
and its connection manager (an event loop, metadata, reconnects) is more than one request needs.
The messages (``ApiVersions``, ``SaslHandshake``, ``SaslAuthenticate`` and the four token requests)
are kafka-python's; the SASL exchange is :class:`~spark_secrets.login.sasl.GssapiSaslClient`, as for
the Hive metastore. :class:`Channel` is the seam the tests replace.
"""

from __future__ import annotations

import itertools
import logging
import socket
import ssl
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gssapi

from spark_secrets.errors import KafkaError, KafkaUnavailable, KerberosError
from spark_secrets.login.sasl import GssapiSaslClient
from spark_secrets.tokens import kafkaproto as proto
from spark_secrets.tokens.kafkaproto import TokenInfo

log = logging.getLogger(__name__)
CLIENT_ID = "spark-secrets"
SASL_PLAINTEXT, SASL_SSL = "SASL_PLAINTEXT", "SASL_SSL"
_correlation = itertools.count(1)


@dataclass(frozen=True)
class BrokerSettings:
    """How to reach and log in to one Kafka cluster's brokers.

    ``servers`` are ``host:port`` (``[v6]:port``); ``verify`` is the TLS trust for ``SASL_SSL`` (a CA
    file, ``True`` for the system's, ``False`` for none); ``prefix`` is where the job's settings name
    this cluster (``spark.kafka.clusters.<id>.``), for the fixes in messages."""

    cluster: str
    servers: tuple[str, ...]
    security_protocol: str = SASL_SSL
    service_name: str = "kafka"
    verify: bool | str = True
    timeout: float = 30.0
    prefix: str = ""

    @property
    def where(self) -> str:
        return f"Kafka cluster {self.cluster} ({','.join(self.servers)})"


class Channel(Protocol):
    """One authenticated connection to one broker."""

    server: str
    #: The broker's ``ApiVersions``: api key -> (lowest, highest) version.
    versions: Mapping[int, tuple[int, int]]

    def roundtrip(self, frame: bytes) -> bytes:
        """Send one framed request; the response's bytes after its size (header and body)."""
        ...

    def close(self) -> None: ...


#: Opens a channel: the settings, one of their servers, the Kerberos credentials (``None``: the default cache).
Connector = Callable[[BrokerSettings, str, "gssapi.Credentials | None"], Channel]


def split_server(server: str) -> tuple[str, int]:
    host, sep, port = server.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise KafkaError(f"Kafka bootstrap server {server!r} is not host:port", "write it as broker.example.com:9093")
    return host.strip("[]"), int(port)


def exchange(channel: Channel, request: Any, *, need: int = 0, where: str = "") -> Any:
    """``request`` at the highest version both sides speak (at least ``need``); the decoded response."""
    version = proto.negotiate(request, channel.versions, need, where or channel.server)
    return _call(channel, request, proto.response_class(request), version)


def _call(channel: Channel, request: Any, response_cls: Any, version: int) -> Any:
    correlation = next(_correlation) % 2**31
    request.with_header(correlation_id=correlation, client_id=CLIENT_ID)
    payload = channel.roundtrip(request.encode(version=version, header=True, framed=True))
    try:
        response = response_cls.decode(payload, version=version, header=True)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as exc:
        raise KafkaError(f"broker {channel.server} answered {type(request).__name__} v{version} with bytes that are "
                         f"not its response ({type(exc).__name__})") from None
    if response.header is not None and response.header.correlation_id != correlation:
        raise KafkaError(f"broker {channel.server} answered out of turn (correlation id "
                         f"{response.header.correlation_id}, not {correlation})")
    return response


class BrokerChannel:
    """A TCP (``SASL_PLAINTEXT``) or TLS (``SASL_SSL``) connection, after ``ApiVersions`` and a SASL
    ``GSSAPI`` login as ``credentials`` to the service principal ``<service_name>/<host>``."""

    def __init__(self, sock: socket.socket, server: str) -> None:
        self.sock = sock
        self.server = server
        self.versions: Mapping[int, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"BrokerChannel({self.server!r})"

    @classmethod
    def open(cls, settings: BrokerSettings, server: str, credentials: gssapi.Credentials | None) -> BrokerChannel:
        if settings.security_protocol not in (SASL_PLAINTEXT, SASL_SSL):
            raise KafkaError(f"{settings.where}: security.protocol {settings.security_protocol} cannot ask for "
                             "delegation tokens (they are asked for over Kerberos)",
                             f"set {settings.prefix}security.protocol to SASL_SSL or SASL_PLAINTEXT")
        host, port = split_server(server)
        try:
            sock = socket.create_connection((host, port), timeout=settings.timeout)
        except OSError as exc:
            raise KafkaUnavailable(f"cannot connect to Kafka broker {server} ({_reason(exc)})") from None
        try:
            if settings.security_protocol == SASL_SSL:
                try:
                    sock = _tls(settings.verify).wrap_socket(sock, server_hostname=host)
                except OSError as exc:  # ssl.SSLError, or a plaintext listener that waits for more
                    raise KafkaUnavailable(f"TLS with Kafka broker {server} failed ({_reason(exc)})",
                                           f"check {settings.prefix}security.protocol (SASL_SSL needs a TLS "
                                           "listener) and the CA bundle") from None
            channel = cls(sock, server)
            channel.versions = channel._api_versions()
            channel._login(settings, host, credentials)
            return channel
        except BaseException:
            sock.close()
            raise

    def roundtrip(self, frame: bytes) -> bytes:
        try:
            self.sock.sendall(frame)
            size = struct.unpack(">i", self._read(4))[0]
            if not 0 <= size <= 100 * 1024 * 1024:
                raise KafkaError(f"broker {self.server} answered a frame of {size} bytes: is it a Kafka listener?")
            return self._read(size)
        except OSError as exc:
            raise KafkaUnavailable(f"Kafka broker {self.server} broke off the connection ({_reason(exc)})") from None

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self.sock.recv(min(left, 65536))
            if not chunk:
                raise ConnectionResetError("closed by the broker")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()

    def _api_versions(self) -> dict[int, tuple[int, int]]:
        m = proto.load("kafka.protocol.metadata")
        request = m.ApiVersionsRequest(client_software_name=CLIENT_ID, client_software_version="1")
        response = _call(self, request, m.ApiVersionsResponse, 3)
        if response.error_code == 35:  # UNSUPPORTED_VERSION: an old broker; v0 is always spoken
            response = _call(self, m.ApiVersionsRequest(), m.ApiVersionsResponse, 0)
        if response.error_code:
            raise KafkaError(f"broker {self.server} refused ApiVersions ({proto.error_name(response.error_code)})")
        return {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}

    def _login(self, settings: BrokerSettings, host: str, credentials: gssapi.Credentials | None) -> None:
        sasl = proto.load("kafka.protocol.sasl")
        principal = f"{settings.service_name}/{host}"
        handshake = _call(self, sasl.SaslHandshakeRequest(mechanism="GSSAPI"), sasl.SaslHandshakeResponse, 1)
        if handshake.error_code:
            raise KafkaError(f"Kafka broker {self.server} offers no SASL GSSAPI login "
                             f"({proto.error_name(handshake.error_code)}; it offers {', '.join(handshake.mechanisms)})",
                             f"name a listener with GSSAPI in {settings.prefix}auth.bootstrap.servers")
        fix = (f"set {settings.prefix}sasl.kerberos.service.name to the brokers' Kerberos service name "
               f"(now {settings.service_name!r}: principal {principal})")
        client = GssapiSaslClient(principal, credentials, fix)
        _, _, token = client.start("GSSAPI")
        version = proto.negotiate(sasl.SaslAuthenticateRequest(auth_bytes=b""), self.versions, 0, self.server)
        while True:
            answer = _call(self, sasl.SaslAuthenticateRequest(auth_bytes=token), sasl.SaslAuthenticateResponse,
                           version)
            if answer.error_code:
                raise KerberosError(f"Kafka broker {self.server} refused the Kerberos (SASL GSSAPI) login to "
                                    f"{principal}: {answer.error_message or proto.error_name(answer.error_code)}", fix)
            if client.done:
                return
            ok, token = client.step(bytes(answer.auth_bytes or b""))
            if not ok:
                raise KerberosError(f"Kerberos login to Kafka broker {self.server} failed ({client.getError()})", fix)


def open_channel(settings: BrokerSettings, server: str, credentials: gssapi.Credentials | None) -> Channel:
    return BrokerChannel.open(settings, server, credentials)


class KafkaTokenClient:
    """Delegation-token calls to one Kafka cluster, each over a fresh channel to the first broker
    of ``settings.servers`` that answers (as Kafka clients bootstrap)."""

    def __init__(self, settings: BrokerSettings, credentials: gssapi.Credentials | None = None, *,
                 connect: Connector | None = None) -> None:
        self.settings = settings
        self.credentials = credentials
        self.connect = connect or open_channel

    def __repr__(self) -> str:
        return f"KafkaTokenClient({self.settings.where})"

    def create(self, renewers: Sequence[str], max_lifetime_ms: int = -1, owner: str | None = None) -> TokenInfo:
        """A new token with ``renewers``, for ``owner`` (``None``: the caller; else Kafka 3.3 and a
        ``CreateTokens`` ACL on that user). ``max_lifetime_ms`` -1: the brokers' maximum."""
        request, need = proto.create_request(renewers, max_lifetime_ms, owner)
        info = proto.created(self._on_any(request, need), self.settings.where, owner)
        log.info("created Kafka delegation token %s on %s for %s", info.token_id, self.settings.where, info.owner)
        return info

    def renew(self, hmac: bytes, period_ms: int = -1) -> int:
        """The new expiry (ms since the epoch); ``period_ms`` <= 0: the brokers' renew period."""
        return proto.expiry(self._on_any(proto.renew_request(hmac, period_ms)), proto.RENEW, self.settings.where)

    def expire(self, hmac: bytes, period_ms: int = -1) -> int:
        """Expire the token (``period_ms`` < 0: now, and the brokers forget it); the expiry they set."""
        return proto.expiry(self._on_any(proto.expire_request(hmac, period_ms)), proto.EXPIRE, self.settings.where)

    def describe(self, owners: Sequence[str] | None = None) -> list[TokenInfo]:
        """The tokens of ``owners`` (``None``: every one the caller may describe)."""
        return proto.described(self._on_any(proto.describe_request(owners)), self.settings.where)

    def login(self) -> Mapping[int, tuple[int, int]]:
        """A Kerberos login to a broker that changes nothing; the versions it speaks of the four requests."""
        channel = self._open()
        try:
            return {k: v for k, v in channel.versions.items() if k in proto.API_NAMES}
        finally:
            channel.close()

    def _open(self) -> Channel:
        if not self.settings.servers:
            raise KafkaError(f"Kafka cluster {self.settings.cluster} names no bootstrap servers",
                             f"set {self.settings.prefix}auth.bootstrap.servers")
        skipped: list[KafkaUnavailable] = []
        for server in self.settings.servers:
            try:
                return self.connect(self.settings, server, self.credentials)
            except KafkaUnavailable as exc:
                log.info("skipping Kafka broker %s: %s", server, exc.problem)
                skipped.append(exc)
        fixes = [exc.fix for exc in skipped if exc.fix]  # a TLS failure knows its fix better than "is it up?"
        raise KafkaUnavailable(f"no broker of {self.settings.where} answered ({'; '.join(e.problem for e in skipped)})",
                               fixes[0] if fixes else
                               f"check {self.settings.prefix}auth.bootstrap.servers and that the brokers run")

    def _on_any(self, request: Any, need: int = 0) -> Any:
        channel = self._open()
        try:
            return exchange(channel, request, need=need, where=self.settings.where)
        finally:
            channel.close()


def _tls(verify: bool | str) -> ssl.SSLContext:
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def _reason(exc: OSError) -> str:
    return " ".join(str(getattr(exc, "strerror", None) or exc or type(exc).__name__).split())
