"""Kafka's delegation-token requests (api keys 38-41) on kafka-python's protocol primitives.

kafka-python (the ``kafka`` extra) encodes and decodes Kafka's messages from JSON descriptions of
their wire format (``kafka.protocol.api_message.ApiMessage``), with the request and response headers,
the flexible (compact, tagged) versions and the error codes; it carries ``ApiVersions``, ``SaslHandshake``
and ``SaslAuthenticate`` but not the four delegation-token messages, so
:mod:`spark_secrets.tokens.kafkamessages` describes those and this module builds and reads them:

* ``CreateDelegationToken`` (38): renewers, a max lifetime and, from version 3 (Kafka 3.3, KIP-373),
  an owner other than the caller (the broker then wants a ``CreateTokens`` ACL on that user);
* ``RenewDelegationToken`` (39) and ``ExpireDelegationToken`` (40) name the token by its HMAC;
* ``DescribeDelegationToken`` (41) lists tokens by owner.

The HMAC is the token's password: it is never in a log line, a ``repr`` or an error message.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from spark_secrets import extras
from spark_secrets.errors import (
    ConfigError,
    KafkaAuthorizationError,
    KafkaError,
    KafkaTokenExpired,
    KafkaTokenNotFound,
)

#: The extra of ``setup.cfg`` that brings kafka-python.
EXTRA = "kafka"
INSTALL = extras.install_line(EXTRA)
CREATE, RENEW, EXPIRE, DESCRIBE = 38, 39, 40, 41
API_NAMES = {CREATE: "CreateDelegationToken", RENEW: "RenewDelegationToken", EXPIRE: "ExpireDelegationToken",
             DESCRIBE: "DescribeDelegationToken"}
#: The first CreateDelegationToken version that names an owner (Kafka 3.3).
OWNER_VERSION = 3
#: Kafka's principal type for users (renewers and owners must be users).
USER = "User"


def load(module: str, what: str = "Kafka's delegation-token requests") -> ModuleType:
    """``module`` imported; a one-line :class:`ConfigError` naming the extra when kafka-python is missing."""
    _package_on_demand()
    return extras.load(module, what, EXTRA, {"kafka": "kafka-python"})


_PACKAGE_LOCK = threading.RLock()


def _package_on_demand() -> None:
    """Lets ``kafka.protocol`` and ``kafka.errors`` be imported without running ``kafka/__init__.py`` until a name
    it defines is asked for.

    That ``__init__`` imports kafka-python's consumer, producer and admin clients, which this project does not use:
    130 of the 150 ms of the first Kafka token of a cold ``spark-secrets conf`` (measured with ``python -X
    importtime``). The package's module is made from its own spec (path, loader, file) and put in place with a
    module ``__getattr__`` that runs the real ``__init__`` into it the first time something else of the process
    wants ``kafka.KafkaConsumer``, ``kafka.__version__`` or any other name of it, so a job's own ``import kafka``
    gets the whole package. Nothing is done once kafka is imported."""
    with _PACKAGE_LOCK:
        if "kafka" in sys.modules:
            return
        spec = importlib.util.find_spec("kafka")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return  # not installed: the import then fails with its one line
        package = importlib.util.module_from_spec(spec)
        loader = spec.loader

        def complete(name: str) -> Any:
            with _PACKAGE_LOCK:
                if vars(package).pop("__getattr__", None) is not None:
                    loader.exec_module(package)  # the package's own __init__, in this same module
            try:
                return vars(package)[name]
            except KeyError:
                raise AttributeError(f"module 'kafka' has no attribute {name!r}") from None

        package.__getattr__ = complete  # type: ignore[method-assign]
        sys.modules["kafka"] = package


def messages() -> Any:
    """The module of the four requests and responses (:mod:`spark_secrets.tokens.kafkamessages`)."""
    return load("spark_secrets.tokens.kafkamessages")


def principal(name: str) -> tuple[str, str]:
    """``(type, name)`` of a Kafka principal: ``User:alice`` as written, a bare ``alice`` as a user."""
    kind, sep, rest = name.partition(":")
    if sep and kind and rest and not any(c in kind for c in "/@"):
        return kind, rest
    return USER, name


def principal_text(kind: str | None, name: str | None) -> str:
    return f"{kind or USER}:{name}" if name else ""


@dataclass(frozen=True)
class TokenInfo:
    """A Kafka delegation token as the broker describes it; ``hmac`` (the password) is kept out of ``repr``."""

    token_id: str
    hmac: bytes = field(repr=False)
    owner: str
    requester: str
    renewers: tuple[str, ...]
    issue_ms: int
    expiry_ms: int
    max_ms: int


# -- requests ------------------------------------------------------------------------------------------
def create_request(renewers: Sequence[str], max_lifetime_ms: int = -1, owner: str | None = None) -> tuple[Any, int]:
    """The request, and the lowest version that carries it (3 when an owner is named)."""
    m = messages()
    cls = m.CreateDelegationTokenRequest
    kind, name = principal(owner) if owner else (None, None)
    request = cls(owner_principal_type=kind, owner_principal_name=name, max_lifetime_ms=max_lifetime_ms,
                  renewers=[cls.CreatableRenewers(principal_type=t, principal_name=n)
                            for t, n in map(principal, renewers)])
    return request, OWNER_VERSION if owner else 0


def renew_request(hmac: bytes, period_ms: int = -1) -> Any:
    """``period_ms`` <= 0: the broker's ``delegation.token.expiry.time.ms``."""
    return messages().RenewDelegationTokenRequest(hmac=hmac, renew_period_ms=period_ms)


def expire_request(hmac: bytes, period_ms: int = -1) -> Any:
    """``period_ms`` < 0: expire now (the broker forgets the token)."""
    return messages().ExpireDelegationTokenRequest(hmac=hmac, expiry_time_period_ms=period_ms)


def describe_request(owners: Sequence[str] | None = None) -> Any:
    cls = messages().DescribeDelegationTokenRequest
    return cls(owners=None if owners is None else [
        cls.DescribeDelegationTokenOwner(principal_type=t, principal_name=n) for t, n in map(principal, owners)])


def response_class(request: Any) -> Any:
    """The response class of one of the four requests."""
    return getattr(messages(), type(request).__name__.replace("Request", "Response"))


def negotiate(request: Any, broker: Mapping[int, tuple[int, int]], need: int, where: str) -> int:
    """The highest version both sides speak, at least ``need``; :class:`KafkaError` if there is none."""
    key = request.API_KEY
    op = API_NAMES.get(key, type(request).__name__)
    if key not in broker:
        raise KafkaError(f"{where} does not offer {op} (api key {key})",
                         "use Kafka 2.0 or later brokers with delegation tokens enabled")
    low, high = broker[key]
    version = min(high, request.max_version)
    if version < max(low, need):
        if need >= OWNER_VERSION and key == CREATE:
            raise KafkaError(f"{where} cannot create tokens for another owner ({op} v{high}, v{need} needed)",
                             "upgrade the brokers to Kafka 3.3 or later")
        raise KafkaError(f"{where} speaks {op} v{low}-v{high}, this client v0-v{request.max_version}",
                         "upgrade spark-secrets or the brokers")
    return int(version)


# -- responses -----------------------------------------------------------------------------------------
def created(response: Any, op_where: str, owner: str | None = None) -> TokenInfo:
    check(response.error_code, CREATE, op_where, owner=owner)
    return TokenInfo(
        token_id=response.token_id, hmac=bytes(response.hmac),
        owner=principal_text(response.principal_type, response.principal_name),
        requester=principal_text(response.token_requester_principal_type, response.token_requester_principal_name),
        renewers=(), issue_ms=response.issue_timestamp_ms, expiry_ms=response.expiry_timestamp_ms,
        max_ms=response.max_timestamp_ms)


def expiry(response: Any, key: int, where: str) -> int:
    """The expiry a Renew or Expire response names."""
    check(response.error_code, key, where)
    return int(response.expiry_timestamp_ms)


def described(response: Any, where: str) -> list[TokenInfo]:
    check(response.error_code, DESCRIBE, where)
    return [TokenInfo(token_id=t.token_id, hmac=bytes(t.hmac), owner=principal_text(t.principal_type, t.principal_name),
                      requester=principal_text(t.token_requester_principal_type, t.token_requester_principal_name),
                      renewers=tuple(principal_text(r.principal_type, r.principal_name) for r in t.renewers),
                      issue_ms=t.issue_timestamp, expiry_ms=t.expiry_timestamp, max_ms=t.max_timestamp)
            for t in response.tokens]


def error_name(code: int) -> str:
    """Kafka's name of an error code (``DELEGATION_TOKEN_NOT_FOUND``), from kafka-python's table."""
    try:
        name = str(load("kafka.errors").for_code(code).message)
    except ConfigError:
        name = "UNKNOWN"
    return name if name != "UNKNOWN" else f"error code {code}"


def check(code: int, key: int, where: str, *, owner: str | None = None) -> None:
    """Nothing for error code 0; else the one-line error of :func:`refusal`."""
    if code:
        raise refusal(code, key, where, owner=owner)


def refusal(code: int, key: int, where: str, *, owner: str | None = None) -> KafkaError:
    """The error for a broker's error ``code`` on request ``key``: the problem, and the fix."""
    op, name = API_NAMES.get(key, f"api {key}"), error_name(code)
    if code == 61:  # DELEGATION_TOKEN_AUTH_DISABLED
        return KafkaError(f"delegation tokens are disabled on {where} ({name})",
                          "set delegation.token.secret.key on every broker and controller")
    if code == 64:  # DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
        return KafkaError(f"{where} refused {op} on this connection ({name}: tokens are asked for over Kerberos, "
                          "not over PLAINTEXT, SSL or a token login)",
                          "name a SASL_PLAINTEXT or SASL_SSL listener with GSSAPI in auth.bootstrap.servers")
    if code == 65:  # DELEGATION_TOKEN_AUTHORIZATION_FAILED: CreateTokens on the owner's user resource
        who = "User:{}".format(principal(owner)[1]) if owner else "the owner"
        return KafkaAuthorizationError(
            f"{where} does not let this service create tokens for {who} ({name})",
            f"grant it: kafka-acls.sh --add --allow-principal User:<service> --operation CreateTokens "
            f"--user-principal {who}")
    if code in (29, 30, 31):  # TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED
        return KafkaAuthorizationError(f"{where} refused {op}: the caller is not authorized ({name})",
                                       "grant the caller's Kafka principal the ACL for it")
    if code == 63:  # DELEGATION_TOKEN_OWNER_MISMATCH
        return KafkaAuthorizationError(f"{where} refused {op}: the caller is neither the token's owner nor one of "
                                       f"its renewers ({name})", "renew and cancel as a renewer named at creation")
    if code == 62:  # DELEGATION_TOKEN_NOT_FOUND
        return KafkaTokenNotFound(f"{where} does not know the token ({name}: cancelled, or expired and removed)",
                                  "obtain a new token")
    if code == 66:  # DELEGATION_TOKEN_EXPIRED
        return KafkaTokenExpired(f"the token has expired on {where} ({name})", "obtain a new token")
    if code == 67:  # INVALID_PRINCIPAL_TYPE
        return KafkaError(f"{where} refused {op}: renewers and owners must be User principals ({name})",
                          "name them as User:<name> or a bare <name>")
    if code == 35:  # UNSUPPORTED_VERSION: in KRaft, a metadata.version before 3.6 has no delegation tokens
        return KafkaError(f"{where} does not support {op} ({name}; in KRaft, metadata.version 3.6 or later is needed)",
                          "upgrade the brokers and run kafka-features.sh upgrade")
    return KafkaError(f"{where} refused {op} ({name})")
