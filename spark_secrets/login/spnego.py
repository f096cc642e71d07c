"""SPNEGO (HTTP ``Negotiate``) authentication for ``requests``, from gssapi credentials.

``requests-gssapi`` does the handshake (first token, 401 retries, the server's mutual token). This
module only chooses its settings for Hadoop's servers and turns its failures into one-line
:class:`~spark_secrets.errors.KerberosError` s. No token bytes reach a log line or an exception.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import gssapi
import gssapi.exceptions
import requests
from requests.auth import AuthBase
from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth, MutualAuthenticationError
from requests_gssapi.exceptions import SPNEGOExchangeError

from spark_secrets.errors import KerberosError
from spark_secrets.login.kerberos import KINIT_HINT, SPNEGO, gss_problem


class SpnegoAuth(AuthBase):
    """Sends ``Authorization: Negotiate`` on every request, and checks the server's answer token.

    ``credentials`` default to the ticket cache; the server principal is ``HTTP/<url host>``, with
    IP literals turned into their host name (:func:`service_host`).

    Settings of ``requests_gssapi.HTTPSPNEGOAuth``, and why:

    * ``opportunistic_auth``: the token goes with the first request, as the hand-written code
      before did; Hadoop's servers accept it up front, and it saves the round trip to a 401.
    * ``mutual_authentication=OPTIONAL``: Hadoop's ``KerberosAuthenticationHandler`` answers a
      request it authenticated with ``WWW-Authenticate: Negotiate <token>`` (SPNEGO's answer, with
      the Kerberos AP-REP), and that token is verified; a token that does not verify fails the
      request. A response without a token is accepted, as before: Hadoop sends none when its
      signed ``hadoop.auth`` cookie (a ``requests.Session`` keeps it), not SPNEGO, authenticated
      the request, and REQUIRED would fail those requests (seen on the test bed, tests/test_tokens.py).
    * ``sanitize_mutual_error_response=False``: error answers keep their body, the NameNode's
      ``RemoteException`` that :mod:`spark_secrets.tokens.webhdfs` turns into a one-line error.

    The library keeps its GSS contexts on the auth object; a fresh one per request keeps threads
    (the renew service's grant pool shares one ``SpnegoAuth``) from stepping each other's contexts.
    """

    def __init__(self, credentials: gssapi.Credentials | None = None, service: str = "HTTP") -> None:
        self.credentials = credentials
        self.service = service

    def __repr__(self) -> str:
        who = str(self.credentials.name) if self.credentials is not None else "ticket cache"
        return f"SpnegoAuth({who})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        host = service_host(urlsplit(request.url or "").hostname or "localhost")
        return _Negotiate(self.credentials, self.service, host)(request)


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


class _Negotiate(HTTPSPNEGOAuth):
    """One request's SPNEGO exchange with ``service@host``; failures become KerberosError."""

    def __init__(self, credentials: gssapi.Credentials | None, service: str, host: str) -> None:
        super().__init__(mutual_authentication=OPTIONAL, target_name=f"{service}@{host}", opportunistic_auth=True,
                         creds=credentials, mech=SPNEGO, sanitize_mutual_error_response=False)
        self.service, self.host = service, host

    def generate_request_header(self, response: requests.Response | None, host: str,
                                is_preemptive: bool = False) -> str:
        try:
            return str(super().generate_request_header(response, host, is_preemptive))
        except SPNEGOExchangeError as exc:
            if not is_preemptive:
                # A retry after a 401: the library then hands back that 401, which the caller names.
                raise
            cause = exc.__context__  # the library raises from inside its ``except GSSError``
            if isinstance(cause, gssapi.exceptions.GSSError):
                raise _explain(cause, self.host, self.service) from None
            raise KerberosError(f"Kerberos failed for {self.service}/{self.host}", KINIT_HINT) from None

    def handle_other(self, response: requests.Response) -> requests.Response:
        try:
            return super().handle_other(response)
        except MutualAuthenticationError:
            where = urlsplit(response.url or "").netloc or self.host
            raise KerberosError(f"the server at {where} failed Kerberos mutual authentication",
                                f"check that {where} is the service itself and that its "
                                f"{self.service}/{self.host} keytab is current") from None


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


class _NoTokensInLibraryLog(logging.Filter):
    """requests-gssapi's DEBUG lines quote the Negotiate tokens both ways: they are dropped. Its
    ERROR lines are dropped too: each failure they report reaches the caller once, as a one-line
    KerberosError from here or as the HTTP status the server gave."""

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.DEBUG < record.levelno < logging.ERROR


logging.getLogger("requests_gssapi.gssapi_").addFilter(_NoTokensInLibraryLog())
