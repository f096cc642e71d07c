"""SPNEGO (HTTP ``Negotiate``) authentication for ``requests``, from gssapi credentials."""

from __future__ import annotations

import base64
import ipaddress
import socket
from urllib.parse import urlsplit

import gssapi
import gssapi.exceptions
import requests
from requests.auth import AuthBase

from spark_secrets.errors import KerberosError
from spark_secrets.kerberos import KINIT_HINT, SPNEGO, gss_problem


class SpnegoAuth(AuthBase):
    """Sends ``Authorization: Negotiate`` on every request (Hadoop's servers expect it up front).

    ``credentials`` default to the ticket cache; the server principal is ``HTTP/<url host>``.
    When the server answers with its own token (mutual authentication), it is verified.
    """

    def __init__(self, credentials: gssapi.Credentials | None = None, service: str = "HTTP") -> None:
        self.credentials = credentials
        self.service = service

    def __repr__(self) -> str:
        who = str(self.credentials.name) if self.credentials is not None else "ticket cache"
        return f"SpnegoAuth({who})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        host = service_host(urlsplit(request.url or "").hostname or "localhost")
        target = gssapi.Name(f"{self.service}@{host}", gssapi.NameType.hostbased_service)
        try:
            context = gssapi.SecurityContext(name=target, creds=self.credentials, usage="initiate", mech=SPNEGO,
                                             flags=gssapi.RequirementFlag.mutual_authentication |
                                             gssapi.RequirementFlag.out_of_sequence_detection)
            token = context.step()
        except gssapi.exceptions.GSSError as exc:
            raise _explain(exc, host, self.service) from None
        request.headers["Authorization"] = "Negotiate " + base64.b64encode(token or b"").decode("ascii")
        request.register_hook("response", _mutual_check(context))
        return request


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


def _mutual_check(context: gssapi.SecurityContext):  # type: ignore[no-untyped-def]
    def hook(response: requests.Response, **_: object) -> requests.Response:
        header = response.headers.get("WWW-Authenticate", "")
        if response.ok and header.startswith("Negotiate ") and not context.complete:
            try:
                context.step(base64.b64decode(header.split(" ", 1)[1]))
            except gssapi.exceptions.GSSError as exc:
                raise KerberosError(f"the server at {response.url and urlsplit(response.url).netloc} failed "
                                    f"Kerberos mutual authentication ({gss_problem(exc)})") from None
        return response

    return hook


def _explain(exc: gssapi.exceptions.GSSError, host: str, service: str) -> KerberosError:
    message = gss_problem(exc)
    lowered = message.lower()
    if isinstance(exc, gssapi.exceptions.ExpiredCredentialsError) or "expired" in lowered:
        return KerberosError("the Kerberos ticket has expired", KINIT_HINT)
    if isinstance(exc, gssapi.exceptions.MissingCredentialsError) or "no credentials" in lowered \
            or "not found (filename" in lowered:
        return KerberosError("no Kerberos ticket found", KINIT_HINT)
    if "server not found" in lowered:
        return KerberosError(f"the KDC has no principal {service}/{host}",
                             "use the NameNode's fully qualified host name in the URL")
    return KerberosError(f"Kerberos failed for {service}/{host} ({message})", KINIT_HINT)
