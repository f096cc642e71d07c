"""Hive metastore delegation tokens (``HIVE_DELEGATION_TOKEN``) over the metastore's Thrift API.

The three calls are ``ThriftHiveMetastore.get_delegation_token(token_owner,
renewer_kerberos_principal_name) -> string``, ``renew_delegation_token(token_str_form) -> i64`` and
``cancel_delegation_token(token_str_form)``, in Thrift's binary protocol over a SASL ``GSSAPI``
transport (``metastore.sasl.enabled``). They are written here with ``thrift``'s own protocol classes
rather than a package of generated code for the metastore's few hundred other calls, and imported by
:class:`MetastoreClient` only: :class:`Metastore` is read by every submission and ``tokens`` command, which
speak Thrift only when a job names a metastore.

How Spark and Hive name the token (what a token-only job's metastore client selects):

* kind ``HIVE_DELEGATION_TOKEN``; **service** = ``hive.metastore.token.signature`` (empty unless set),
  because Hive's client selects by kind and service == that signature;
* **alias** ``hive.server2.delegation.token``, as Spark's ``HiveDelegationTokenProvider`` stores it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import (
    ConfigError,
    HdfsError,
    HdfsPermissionError,
    InvalidTokenError,
    KerberosError,
    ServerUnavailable,
    TokenExpiredError,
)
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND
from spark_secrets.hadoop.token import Token

if TYPE_CHECKING:
    import gssapi
    from thrift.protocol.TBinaryProtocol import TBinaryProtocol

log = logging.getLogger(__name__)
# thrift's socket logs a refused connection itself, with a traceback; the error raised here says it once.
logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
T = TypeVar("T")

#: The alias Spark's HiveDelegationTokenProvider stores the token under.
SPARK_ALIAS = "hive.server2.delegation.token"
DEFAULT_PORT = 9083


#: What to do when the KDC knows no principal by the metastore's name.
PRINCIPAL_FIX = ("set spark.secrets.hive.principal (or hive.metastore.kerberos.principal) to the metastore's "
                 "principal, e.g. hive/_HOST@REALM")


@dataclass(frozen=True)
class Metastore:
    """One metastore service: its URIs (tried in turn, as Hive's client does), its Kerberos principal
    (``_HOST`` stands for each URI's host) and the token signature clients select its tokens by."""

    uris: tuple[str, ...]
    principal: str
    signature: str = ""

    @classmethod
    def configured(cls, site: Callable[[str], str | None], uris: str | None = None,
                   principal: str | None = None) -> Metastore | None:
        """The metastore given by ``uris``/``principal``, else by the Hive client settings ``site`` looks up
        (``hive-site.xml``); None when none is named (or ``none``). Every caller builds it here."""
        uris = uris or site("hive.metastore.uris") or ""
        if not uris.strip() or uris.strip().lower() == "none":
            return None
        return cls.parse(uris, principal or site("hive.metastore.kerberos.principal"),
                         site("hive.metastore.token.signature"))

    @classmethod
    def parse(cls, uris: str, principal: str | None, signature: str | None = None) -> Metastore:
        """From ``hive.metastore.uris`` (comma-separated ``thrift://host:port``) and
        ``hive.metastore.kerberos.principal``; raises ConfigError on anything else."""
        parsed = []
        for uri in (u.strip() for u in uris.split(",")):
            if not uri:
                continue
            parts = urlsplit(uri)
            try:
                port = parts.port
            except ValueError:
                port = -1
            if parts.scheme != "thrift" or not parts.hostname or port == -1:
                raise ConfigError(f"metastore URI {uri!r} is not thrift://host:port",
                                  "set spark.secrets.hive.metastoreUris (or hive.metastore.uris) to thrift://host:9083")
            parsed.append(f"thrift://{parts.hostname}:{port or DEFAULT_PORT}")
        if not parsed:
            raise ConfigError("no metastore URI given", "set spark.secrets.hive.metastoreUris to thrift://host:9083")
        if not principal or "/" not in principal:
            raise ConfigError(f"the metastore's Kerberos principal {principal or '(unset)'!r} is not service/host@REALM",
                              "set spark.secrets.hive.principal (or hive.metastore.kerberos.principal), "
                              "e.g. hive/_HOST@EXAMPLE.COM")
        return cls(tuple(parsed), principal, signature or "")

    def principal_for(self, uri: str) -> str:
        """The principal with ``_HOST`` replaced by the URI's host, as Hadoop's ``getServerPrincipal``."""
        host = (urlsplit(uri).hostname or "").lower()
        return self.principal.replace("_HOST", host)


class MetastoreClient:
    """One connection to one metastore URI, authenticated with SASL GSSAPI as ``credentials``."""

    def __init__(self, uri: str, principal: str, credentials: gssapi.Credentials | None = None, *,
                 timeout: float = 30.0) -> None:
        parts = urlsplit(uri)
        self.host, self.port = parts.hostname or "localhost", parts.port or DEFAULT_PORT
        self.principal = principal
        self.credentials = credentials
        self.timeout = timeout
        self._seqid = 0

    def __repr__(self) -> str:
        return f"MetastoreClient(thrift://{self.host}:{self.port})"

    @property
    def where(self) -> str:
        return f"metastore {self.host}:{self.port}"

    # -- operations ------------------------------------------------------------------------------
    def get_delegation_token(self, owner: str, renewer: str) -> Token:
        """A new token for ``owner`` (the caller, or someone it may act for) that ``renewer`` may renew."""
        from thrift.Thrift import TType

        text = self._call("get_delegation_token", [(1, owner), (2, renewer)], TType.STRING)
        if not isinstance(text, str) or not text:
            raise HdfsError(f"{self.where} answered get_delegation_token without a token",
                            "check that the metastore runs with metastore.sasl.enabled=true")
        return Token.decode_url(text)

    def renew_delegation_token(self, token: Token) -> int:
        """The token's new expiry (ms since the epoch)."""
        from thrift.Thrift import TType

        expiry = self._call("renew_delegation_token", [(1, token.encode_url())], TType.I64)
        if not isinstance(expiry, int):
            raise HdfsError(f"{self.where} answered renew_delegation_token without an expiry")
        return expiry

    def get_version(self) -> str:
        """The server's version (fb303's ``getVersion``): a call that changes nothing, to test a login."""
        from thrift.Thrift import TType

        version = self._call("getVersion", [], TType.STRING)
        return version if isinstance(version, str) else ""

    def cancel_delegation_token(self, token: Token) -> None:
        self._call("cancel_delegation_token", [(1, token.encode_url())], None)

    # -- transport -------------------------------------------------------------------------------
    def _call(self, method: str, args: Sequence[tuple[int, str]], result_type: int | None) -> object:
        from thrift.protocol.TBinaryProtocol import TBinaryProtocol
        from thrift.Thrift import TMessageType, TType
        from thrift.transport.TSocket import TSocket
        from thrift.transport.TTransport import TTransportException
        from thrift_sasl import TSaslClientTransport

        from spark_secrets.login.sasl import GssapiSaslClient

        sock = TSocket(self.host, self.port)
        sock.setTimeout(int(self.timeout * 1000))
        transport = TSaslClientTransport(lambda: GssapiSaslClient(self.principal, self.credentials, PRINCIPAL_FIX),
                                         "GSSAPI", sock)
        try:
            try:
                transport.open()
            except TTransportException as exc:
                if isinstance(exc.inner, (OSError, socket.timeout)) or "Could not connect" in str(exc.message):
                    raise ServerUnavailable(f"cannot connect to {self.where} for {method}",
                                            "check the address and that the metastore is running") from None
                raise KerberosError(f"the {self.where} refused the Kerberos (SASL GSSAPI) login for {method}: "
                                    f"{_short(str(exc.message))}",
                                    f"check its principal ({self.principal}) and run kinit") from None
            proto = TBinaryProtocol(transport)
            self._seqid += 1
            proto.writeMessageBegin(method, TMessageType.CALL, self._seqid)
            proto.writeStructBegin(f"{method}_args")
            for number, value in args:
                proto.writeFieldBegin(f"arg{number}", TType.STRING, number)
                proto.writeString(value)
                proto.writeFieldEnd()
            proto.writeFieldStop()
            proto.writeStructEnd()
            proto.writeMessageEnd()
            transport.flush()
            return self._read_result(proto, method, result_type)
        except (TTransportException, OSError) as exc:
            raise ServerUnavailable(f"{self.where} broke off {method} ({_short(str(exc))})",
                                    "check that the metastore is running") from None
        finally:
            transport.close()

    def _read_result(self, proto: TBinaryProtocol, method: str, result_type: int | None) -> object:
        from thrift.Thrift import TApplicationException, TMessageType

        _, mtype, _ = proto.readMessageBegin()
        if mtype == TMessageType.EXCEPTION:
            app = TApplicationException()
            app.read(proto)
            proto.readMessageEnd()
            raise HdfsError(f"{self.where} failed {method}: {_short(str(app.message))}")
        fields = _read_struct(proto)
        proto.readMessageEnd()
        if 1 in fields:  # MetaException
            message = str(fields[1].get(1, "") if isinstance(fields[1], dict) else fields[1])
            raise refusal(self.where, method, message)
        if result_type is not None and 0 not in fields:
            raise HdfsError(f"{self.where} answered {method} without a result")
        return fields.get(0)


def _read_struct(proto: TBinaryProtocol) -> dict[int, Any]:
    """A struct's string, integer and nested-struct fields by number (others skipped)."""
    from thrift.Thrift import TType

    fields: dict[int, Any] = {}
    proto.readStructBegin()
    while True:
        _, ftype, number = proto.readFieldBegin()
        if ftype == TType.STOP:
            break
        if ftype == TType.STRING:
            fields[number] = proto.readString()
        elif ftype == TType.I64:
            fields[number] = proto.readI64()
        elif ftype == TType.STRUCT:
            fields[number] = _read_struct(proto)
        else:
            proto.skip(ftype)
        proto.readFieldEnd()
    proto.readStructEnd()
    return fields


def refusal(where: str, method: str, message: str) -> HdfsError:
    """A MetaException's message as a typed, one-line error."""
    text = _short(message)
    lowered = text.lower()
    head = f"{where} refused {method}: {text}"
    if "impersonate" in lowered or "proxy" in lowered:
        return HdfsPermissionError(head, "allow the caller in the metastore's hadoop.proxyuser.<name>.hosts "
                                         "and .users/.groups")
    if ("expired" in lowered and "unexpired" not in lowered) or "max date" in lowered:
        return TokenExpiredError(head, "obtain a new token")
    # Before the renewer check: the message names the token, renewer and all ("renewer=spark-renewer").
    if any(p in lowered for p in ("does not exist", "can't be found", "not found", "unknown token", "invalid token",
                                  "wrong password", "unable to find master key")):
        return InvalidTokenError(head, "obtain a new token")
    if "non-matching renewer" in lowered or "tries to renew" in lowered or "tries to cancel" in lowered:
        return HdfsPermissionError(head, "renew as the token's renewer")
    return HdfsError(head)


def _short(text: str) -> str:
    return " ".join(text.split())[:400]


def _on_any(metastore: Metastore, op: str, call: Callable[[MetastoreClient], T],
            credentials: gssapi.Credentials | None) -> T:
    skipped: list[str] = []
    for uri in metastore.uris:
        client = MetastoreClient(uri, metastore.principal_for(uri), credentials)
        try:
            return call(client)
        except ServerUnavailable as exc:
            log.info("skipping %s for %s: %s", client.where, op, exc.problem)
            skipped.append(exc.problem)
    raise ServerUnavailable(f"no metastore of {','.join(metastore.uris)} answered {op} ({'; '.join(skipped)})",
                            "check that a metastore is running and reachable from here")


def obtain_hive_token(metastore: Metastore, owner: str, renewer: str,
                      credentials: gssapi.Credentials | None = None) -> Token:
    """A token for ``owner``, named as Spark and Hive's clients select it (service = the signature)."""
    token = _on_any(metastore, "get_delegation_token", lambda c: c.get_delegation_token(owner, renewer), credentials)
    log.info("obtained a Hive metastore delegation token from %s", ",".join(metastore.uris))
    return token.with_service(metastore.signature, kind=HIVE_DELEGATION_KIND)


def add_hive_token(creds: Credentials, token: Token) -> None:
    creds.add(token, alias=SPARK_ALIAS)


def renew_hive_token(token: Token, metastore: Metastore, credentials: gssapi.Credentials | None = None) -> int:
    return _on_any(metastore, "renew_delegation_token", lambda c: c.renew_delegation_token(token), credentials)


def metastore_version(metastore: Metastore, credentials: gssapi.Credentials | None = None) -> str:
    """The first answering metastore's version, through a Kerberos login as ``credentials``."""
    return _on_any(metastore, "getVersion", lambda c: c.get_version(), credentials)


def cancel_hive_token(token: Token, metastore: Metastore, credentials: gssapi.Credentials | None = None) -> None:
    _on_any(metastore, "cancel_delegation_token", lambda c: c.cancel_delegation_token(token), credentials)
