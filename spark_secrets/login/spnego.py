"""SPNEGO (HTTP ``Negotiate``, RFC 4559) from gssapi credentials: the header of a request, and the check of
the server's answer token.

The handshake is one leg for Kerberos: the token goes with the request itself (Hadoop's servers accept it up
front, which saves the round trip to a 401), and the server's ``WWW-Authenticate: Negotiate <token>`` answer
(the Kerberos AP-REP) proves the server. It is written here on gssapi, not with requests-gssapi, because
that library needs requests, and importing requests was two thirds of a cold ``tokens fetch`` (issue 33;
README, "Dependencies"). No token bytes reach a log line or an exception.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import gssapi
import gssapi.exceptions

from spark_secrets.errors import KerberosError
from spark_secrets.login.kerberos import KINIT_HINT, SPNEGO, gss_problem
from spark_secrets.transport import Headers



class SpnegoAuth:
    """Sends ``Authorization: Negotiate`` with every request, and checks the server's answer token.

    ``credentials`` default to the ticket cache; the server principal is ``<service>/<url host>``, with IP
    literals turned into their host name (:func:`service_host`). An answer without a token is accepted:
    Hadoop sends none when its signed ``hadoop.auth`` cookie, not SPNEGO, authenticated the request. A token
    that does not verify fails the request. Each request has a GSS context of its own, so threads may share
    one ``SpnegoAuth`` (the renew service's grant pool does).

    It also serves ``requests`` (``session.auth = SpnegoAuth(...)``, as for HdfsCLI) without importing it.
    """

    def __init__(self, credentials: gssapi.Credentials | None = None, service: str = "HTTP") -> None:
        self.credentials = credentials
        self.service = service

    def __repr__(self) -> str:
        who = str(self.credentials.name) if self.credentials is not None else "ticket cache"
        return f"SpnegoAuth({who})"

    def negotiate(self, host: str) -> Negotiation:
        """A new context with ``<service>@<host>`` and its first token; raises :class:`KerberosError`."""
        return Negotiation(self.credentials, self.service, service_host(host))

    def __call__(self, request: Any) -> Any:
        """``requests``' auth hook: the header now, the answer's check as a response hook."""
        negotiation = self.negotiate(urlsplit(request.url or "").hostname or "localhost")
        request.headers["Authorization"] = negotiation.header

        def check(response: Any, **_: Any) -> Any:
            negotiation.verify(response.status_code, response.headers, urlsplit(response.url or "").netloc)
            return response

        request.register_hook("response", check)
        return request


class Negotiation:
    """One request's SPNEGO exchange with ``service@host``: :attr:`header` to send, :meth:`verify` the answer."""

    def __init__(self, credentials: gssapi.Credentials | None, service: str, host: str) -> None:
        self.service, self.host = service, host
        try:
            name = gssapi.Name(f"{service}@{host}", gssapi.NameType.hostbased_service)
            self._context = gssapi.SecurityContext(name=name, usage="initiate", creds=credentials, mech=SPNEGO,
                                                   flags=gssapi.RequirementFlag.mutual_authentication)
            token = self._context.step()
        except gssapi.exceptions.GSSError as exc:
            raise _explain(exc, host, service) from None
        self.header = "Negotiate " + base64.b64encode(token or b"").decode("ascii")

    def __repr__(self) -> str:
        return f"Negotiation({self.service}@{self.host})"

    def verify(self, status: int, headers: Headers, where: str) -> None:
        """Checks the server's answer token, if it sent one (a 401 is left to the caller to name)."""
        token = answer_token(headers)
        if token is None or status == 401:
            return
        try:
            self._context.step(token)
        except (gssapi.exceptions.GSSError, ValueError):
            where = where or self.host
            raise KerberosError(f"the server at {where} failed Kerberos mutual authentication",
                                f"check that {where} is the service itself and that its "
                                f"{self.service}/{self.host} keytab is current") from None


def answer_token(headers: Headers) -> bytes | None:
    """The token of a ``WWW-Authenticate: Negotiate <base64>`` header; None when there is none (or it is
    not base64, which the check then cannot pass either: an empty token)."""
    for challenge in (headers.get("WWW-Authenticate") or "").split(","):
        scheme, _, data = challenge.strip().partition(" ")
        if scheme.lower() == "negotiate" and data.strip():
            try:
                return base64.b64decode(data.strip(), validate=True)
            except ValueError:
                return b""
    return None


def service_host(host: str) -> str:
    """The host part of the server principal: IP literals become their host name, as Hadoop's
    ``KerberosUtil.getServicePrincipal`` does (token services name NameNodes by ``ip:port``)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    try:
        return socket.gethostbyaddr(host)[0]
    except OSError:
        return host


def _explain(exc: gssapi.exceptions.GSSError, host: str, service: str) -> KerberosError:
    message = gss_problem(exc)
    lowered = message.lower()
    if isinstance(exc, gssapi.exceptions.ExpiredCredentialsError) or "expired" in lowered:
        return KerberosError("the Kerberos ticket has expired", KINIT_HINT)
    if isinstance(exc, gssapi.exceptions.MissingCredentialsError) or "no credentials" in lowered \
            or "not found (filename" in lowered:
        return KerberosError("no Kerberos ticket found", KINIT_HINT)
    # MIT krb5 1.20 says "Server HTTP/host@REALM not found in Kerberos database"; older ones leave out the name.
    if "server not found" in lowered or "not found in kerberos database" in lowered:
        return KerberosError(f"the KDC has no principal {service}/{host}",
                             "use the NameNode's fully qualified host name in the URL")
    return KerberosError(f"Kerberos failed for {service}/{host} ({message})", KINIT_HINT)
