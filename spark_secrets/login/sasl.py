"""SASL ``GSSAPI`` (RFC 4752) as a client, on python-gssapi: what Thrift services behind Kerberos
(the Hive metastore) expect before their first call.

``thrift_sasl`` frames the exchange; it wants an object with ``start``/``step``/``encode``/
``decode``/``getError``, which ``pure-sasl`` would give, but only over the ``kerberos`` (pykerberos)
module. This is the mechanism over the ``gssapi`` the rest of the project logs in with, so a ticket
cache or keytab login works the same here as for SPNEGO. Only the ``auth`` quality of protection is
offered (integrity and privacy are the transport's business, as ``hadoop.rpc.protection=authentication``).
"""

from __future__ import annotations

import gssapi
import gssapi.exceptions

from spark_secrets.errors import KerberosError
from spark_secrets.login.kerberos import KINIT_HINT, KRB5, gss_problem

#: RFC 4752 security-layer bits.
QOP_AUTH = 1
#: The largest message we accept (only meaningful with a security layer; Java's default).
MAX_BUFFER = 65536


class GssapiSaslClient:
    """One SASL GSSAPI exchange with the service ``principal`` (``hive/metastore.example.com@REALM``);
    ``principal_fix`` says which setting names it, for when the KDC knows no such principal."""

    def __init__(self, principal: str, credentials: gssapi.Credentials | None = None,
                 principal_fix: str = "check the service's Kerberos principal setting") -> None:
        self.target = principal
        self.credentials = credentials
        self.principal_fix = principal_fix
        self.ctx: gssapi.SecurityContext | None = None
        self.error = ""
        self.done = False

    def __repr__(self) -> str:
        return f"GssapiSaslClient({self.target!r})"

    def start(self, mechanism: str) -> tuple[bool, str, bytes]:
        if mechanism != "GSSAPI":
            self.error = f"mechanism {mechanism} is not GSSAPI"
            return False, mechanism, b""
        try:
            name = gssapi.Name(self.target, gssapi.NameType.kerberos_principal)
            self.ctx = gssapi.SecurityContext(name=name, creds=self.credentials, mech=KRB5, usage="initiate",
                                              flags=gssapi.RequirementFlag.mutual_authentication)
            return True, mechanism, self.ctx.step() or b""
        except gssapi.exceptions.GSSError as exc:
            raise _kerberos_error(exc, self.target, self.principal_fix) from None

    def step(self, challenge: bytes) -> tuple[bool, bytes]:
        assert self.ctx is not None, "start() first"
        try:
            if not self.ctx.complete:  # the server's AP-REP (mutual authentication)
                return True, self.ctx.step(challenge) or b""
            # The security-layer negotiation: the server offers layers and a buffer size, wrapped.
            offer = self.ctx.unwrap(challenge).message
            if len(offer) != 4 or not offer[0] & QOP_AUTH:
                self.error = "the server does not offer the 'auth' protection level"
                return False, b""
            self.done = True
            return True, self.ctx.wrap(bytes([QOP_AUTH]) + MAX_BUFFER.to_bytes(3, "big"), False).message
        except gssapi.exceptions.GSSError as exc:
            raise _kerberos_error(exc, self.target, self.principal_fix) from None

    def encode(self, data: bytes) -> tuple[bool, bytes]:
        return True, data  # no security layer ("auth")

    def decode(self, data: bytes) -> tuple[bool, bytes]:
        return True, data

    def getError(self) -> str:  # noqa: N802 - the name thrift_sasl calls
        return self.error


def _kerberos_error(exc: gssapi.exceptions.GSSError, target: str, principal_fix: str) -> KerberosError:
    problem = gss_problem(exc)
    if "not found in Kerberos database" in problem or "Server not found" in problem:
        return KerberosError(f"the KDC knows no principal for {target} ({problem})", principal_fix)
    return KerberosError(f"Kerberos login to {target} failed ({problem})", KINIT_HINT)
