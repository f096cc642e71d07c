"""Hadoop's HTTP delegation-token operations: obtain, renew, cancel (``?op=GETDELEGATIONTOKEN`` ...).

The NameNode's WebHDFS (``/webhdfs/v1/``) and the KMS (``/kms/v1/``) speak the same protocol
(Hadoop's ``DelegationTokenAuthenticator``); :class:`TokenHttpClient` is it, for any such server.
Request URLs carry token strings, so no URL ever goes into an exception or log line from here;
errors name the operation and the server's host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from spark_secrets.errors import (
    HdfsAuthenticationError,
    HdfsError,
    HdfsPermissionError,
    InvalidTokenError,
    NameNodeUnavailable,
    ServerUnavailable,
    TokenExpiredError,
)
from spark_secrets.hadoop.token import Token
from spark_secrets.transport import SHARED, HttpAuth, Sender, untrusted

_SECRET_PARAMS = ("token=", "delegation=")


def redact(text: str) -> str:
    for param in _SECRET_PARAMS:
        start = text.find(param)
        while start != -1:
            end = len(text)
            for stop in ("&", " ", '"'):
                pos = text.find(stop, start + len(param))
                if pos != -1:
                    end = min(end, pos)
            text = text[:start + len(param)] + "REDACTED" + text[end:]
            start = text.find(param, start + len(param) + 8)
    return text


class TokenHttpClient:
    """Delegation-token calls against one server's HTTP(S) address (subclasses say which server)."""

    #: Where the operations are served, what the server is called in messages, and what is raised
    #: when it cannot be reached (callers try the next server of a set on that).
    PATH = "/"
    SERVER = "server"
    UNAVAILABLE: type[HdfsError] = ServerUnavailable

    def __init__(self, url: str, auth: HttpAuth | None = None, *, transport: Sender | None = None,
                 timeout: float = 30.0, verify: bool | str = True) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HdfsError(f"not a {self.SERVER} HTTP address: {url!r}", "use http(s)://host:port")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.auth = auth
        self.transport = transport or SHARED
        self.timeout = timeout
        self.verify = verify

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    # -- operations ------------------------------------------------------------------------------
    def get_delegation_token(self, renewer: str | None = None, *, doas: str | None = None,
                             service: str | None = None, kind: str | None = None) -> Token:
        """``GETDELEGATIONTOKEN``: a new token owned by the caller (or by ``doas``)."""
        params = {"renewer": renewer, "doas": doas, "service": service, "kind": kind}
        body = self.call("GET", "GETDELEGATIONTOKEN", params)
        try:
            url_string = body["Token"]["urlString"]
        except (KeyError, TypeError):
            raise HdfsError(f"{self.SERVER} {self.host} answered GETDELEGATIONTOKEN without a token",
                            f"check that Kerberos security is enabled on the {self.SERVER}") from None
        return Token.decode_url(url_string)

    def renew_delegation_token(self, token: Token) -> int:
        """``RENEWDELEGATIONTOKEN``: returns the token's new expiry (ms since the epoch)."""
        body = self.call("PUT", "RENEWDELEGATIONTOKEN", {"token": token.encode_url()})
        try:
            return int(body["long"])
        except (KeyError, TypeError, ValueError):
            raise HdfsError(f"{self.SERVER} {self.host} answered RENEWDELEGATIONTOKEN without an expiry") from None

    def cancel_delegation_token(self, token: Token) -> None:
        """``CANCELDELEGATIONTOKEN``: the server forgets the token."""
        self.call("PUT", "CANCELDELEGATIONTOKEN", {"token": token.encode_url()})

    # -- transport -------------------------------------------------------------------------------
    def call(self, method: str, op: str, params: Mapping[str, str | None]) -> dict[str, Any]:
        query = urlencode({"op": op, **{k: v for k, v in params.items() if v is not None}})
        # Made per request (a GSS context each), so a failed ticket is named before anything is sent.
        negotiation = self.auth.negotiate(urlsplit(self.url).hostname or "localhost") if self.auth else None
        headers = {"Accept": "application/json", "User-Agent": "spark-secrets"}
        if negotiation is not None:
            headers["Authorization"] = negotiation.header
        try:
            resp = self.transport.send(method, f"{self.url}{self.PATH}?{query}", headers, timeout=self.timeout,
                                       verify=self.verify)
        except TimeoutError:
            raise self.UNAVAILABLE(f"{self.SERVER} {self.host} did not answer {op} within {self.timeout:.0f} s") from None
        except OSError as exc:
            if untrusted(exc):  # not "unavailable": trying the next NameNode would hide a trust problem
                raise HdfsError(f"TLS to {self.SERVER} {self.host} failed during {op}: its certificate is not trusted",
                                "give the CA certificate with --ca-bundle / spark.secrets.hadoop.caBundle") from None
            raise self.UNAVAILABLE(f"cannot connect to {self.SERVER} {self.host} for {op}",
                                   f"check the address and that the {self.SERVER} is running") from None
        if negotiation is not None:
            negotiation.verify(resp.status_code, resp.headers, self.host)
        if resp.ok:
            if not resp.content:
                return {}
            try:
                return dict(json.loads(resp.content))
            except (ValueError, TypeError):
                raise HdfsError(f"{self.SERVER} {self.host} answered {op} with something other than JSON") from None
        raise remote_error(resp, op, self.host, self.SERVER)


class WebHdfsClient(TokenHttpClient):
    """Delegation-token calls against one NameNode's HTTP(S) address."""

    PATH = "/webhdfs/v1/"
    SERVER = "NameNode"
    UNAVAILABLE = NameNodeUnavailable

    def key_provider_uri(self) -> str | None:
        """The key provider (KMS) the NameNode tells clients to use for encryption zones
        (``GETSERVERDEFAULTS``' ``keyProviderUri``); ``None`` when it names none or is too old to say."""
        try:
            body = self.call("GET", "GETSERVERDEFAULTS", {})
        except HdfsError as exc:
            if "IllegalArgumentException" in exc.problem or "Invalid value for webhdfs parameter" in exc.problem:
                return None  # before Hadoop 2.9/3.0 (HDFS-13100): no such operation
            raise
        defaults = body.get("FsServerDefaults")
        uri = defaults.get("keyProviderUri") if isinstance(defaults, dict) else None
        return str(uri) if uri else None


class Reply(Protocol):
    """An HTTP answer: a :class:`~spark_secrets.transport.Answer` or a ``requests.Response``."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def content(self) -> bytes: ...


def remote_error(resp: Reply, op: str, host: str, server: str = "NameNode") -> HdfsError:
    """Map a WebHDFS or KMS error response (``RemoteException`` JSON or a bare status) to a typed error."""
    exception, message = "", ""
    try:
        remote = json.loads(resp.content)["RemoteException"]
        exception, message = str(remote.get("exception", "")), str(remote.get("message", ""))
    except (ValueError, KeyError, TypeError):
        # The KMS answers a refused renew or cancel with an empty body and the Java exception as the
        # HTTP reason phrase: "org.apache...SecretManager$InvalidToken: Renewal request for unknown token ...".
        java_class, sep, text = (resp.reason or "").partition(": ")
        if sep and "." in java_class and " " not in java_class:
            exception, message = java_class.rsplit(".", 1)[-1].rsplit("$", 1)[-1], text
    message = " ".join(redact(message).split())[:500]
    where = f"{server} {host} refused {op}"
    lowered = message.lower()
    if resp.status_code == 401 and not exception:
        return HdfsAuthenticationError(f"{where}: Kerberos authentication failed (HTTP 401)",
                                       f"run kinit, and check that the {server}'s HTTP principal is in your realm")
    if "standby" in lowered or exception == "StandbyException":
        return NameNodeUnavailable(f"{where}: it is a standby NameNode", "use the active NameNode")
    if "expired" in lowered and "unexpired" not in lowered:  # "Unable to find master key ... an unexpired token"
        return TokenExpiredError(f"{where}: the token has expired ({message})", "obtain a new token")
    if exception == "InvalidToken" or "token" in lowered and ("can't be found" in lowered or "not found" in lowered
                                                               or "wrong password" in lowered):
        return InvalidTokenError(f"{where}: the {server} does not accept this token ({message})",
                                 "obtain a new token")
    if "renewer" in lowered:
        return HdfsPermissionError(f"{where}: {message}", "renew as the token's renewer, or fetch with --renewer")
    if "impersonate" in lowered or "proxy" in lowered:
        rule = "hadoop.kms.proxyuser.<name>" if server == "KMS" else "hadoop.proxyuser.<name>"
        return HdfsPermissionError(f"{where}: {message}", f"allow the caller in {rule}.hosts and .users/.groups")
    if resp.status_code in (401, 403) or exception in ("AccessControlException", "SecurityException"):
        return HdfsPermissionError(f"{where}: {message or f'HTTP {resp.status_code}'}")
    return HdfsError(f"{where}: {exception or f'HTTP {resp.status_code}'} {message}".rstrip())
