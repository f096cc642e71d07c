"""Kerberos credentials through gssapi: the user's ticket cache, and keytab logins into a private cache."""

import datetime as dt
import os
from pathlib import Path
from typing import NamedTuple

import gssapi
import gssapi.exceptions
import gssapi.raw

from spark_secrets.errors import KerberosError

SPNEGO = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
KRB5 = gssapi.MechType.kerberos

KINIT_HINT = "run kinit (or set KRB5CCNAME to your ticket cache)"


def short_name(principal: str) -> str:
    """``spark-renewer/host@REALM`` → ``spark-renewer``: the name HDFS compares (auth_to_local's default)."""
    return principal.split("@")[0].split("/")[0]


class TicketCache(NamedTuple):
    """What the current ticket cache holds: whose TGT, and until when."""

    principal: str
    expires: dt.datetime
    credentials: gssapi.Credentials

    @property
    def realm(self) -> str:
        return self.principal.rpartition("@")[2]

    @property
    def short_name(self) -> str:
        return short_name(self.principal)

    @property
    def remaining(self) -> dt.timedelta:
        return self.expires - dt.datetime.now(dt.timezone.utc)

    def __repr__(self) -> str:
        return f"TicketCache(principal={self.principal!r}, expires={self.expires.isoformat()})"


def gss_problem(exc: gssapi.exceptions.GSSError) -> str:
    """The GSS major and minor messages of ``exc`` in one line."""
    return " ".join(str(exc).split()) or "unknown GSSAPI error"


def current_ticket_cache(ccache: str | None = None, min_lifetime: dt.timedelta | None = None,
                         realm: str | None = None) -> TicketCache:
    """The TGT in ``ccache`` (default: ``KRB5CCNAME`` or the system default), checked for use.

    Raises KerberosError naming the fix for: no cache or no TGT, an expired TGT, a TGT that
    expires before ``min_lifetime`` from now, and a principal outside ``realm``.
    """
    store: dict[bytes | str, bytes | str] | None = {b"ccache": ccache.encode()} if ccache else None
    where = ccache or os.environ.get("KRB5CCNAME") or "the default ticket cache"
    try:
        if store:
            creds = gssapi.Credentials(usage="initiate", store=store)
        else:
            creds = gssapi.Credentials(usage="initiate")
        lifetime = creds.lifetime
        principal = str(creds.name)
    except gssapi.exceptions.ExpiredCredentialsError:
        raise KerberosError(f"the Kerberos ticket in {where} has expired", KINIT_HINT) from None
    except gssapi.exceptions.MissingCredentialsError:
        raise KerberosError(f"no Kerberos ticket found in {where}", KINIT_HINT) from None
    except gssapi.exceptions.GSSError as exc:
        message = gss_problem(exc)
        if "expired" in message.lower():
            raise KerberosError(f"the Kerberos ticket in {where} has expired", KINIT_HINT) from None
        raise KerberosError(f"cannot use the Kerberos ticket cache {where} ({message})", KINIT_HINT) from None
    if lifetime is None or lifetime <= 0:
        raise KerberosError(f"the Kerberos ticket in {where} has expired", KINIT_HINT)
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=lifetime)
    cache = TicketCache(principal=principal, expires=expires, credentials=creds)
    if realm and cache.realm != realm:
        raise KerberosError(f"the ticket in {where} is for {principal}, not for realm {realm}",
                            f"kinit as a principal of {realm}")
    if min_lifetime is not None and cache.remaining < min_lifetime:
        raise KerberosError(
            f"the Kerberos ticket of {principal} expires in {_human(cache.remaining)}, "
            f"before the {_human(min_lifetime)} needed", "run kinit again (with -l for a longer lifetime)")
    return cache


def keytab_login(principal: str, keytab: Path, ccache: Path) -> TicketCache:
    """Get a fresh TGT for ``principal`` from ``keytab`` into the private file cache ``ccache``.

    Whatever ``ccache`` held is discarded first, so a stale ticket (an old KDC, a rotated key)
    is never reused.
    """
    if not keytab.is_file():
        raise KerberosError(f"keytab {keytab} does not exist", "mount the keytab Secret or fix --keytab")
    ccache.unlink(missing_ok=True)
    store: dict[bytes | str, bytes | str] = {b"client_keytab": str(keytab).encode(), b"ccache": f"FILE:{ccache}".encode()}
    try:
        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
        creds = gssapi.Credentials(name=name, usage="initiate", store=store)
        creds.inquire()  # forces the AS exchange now, so errors surface here
    except gssapi.exceptions.GSSError as exc:
        raise KerberosError(f"cannot log in as {principal} from keytab {keytab} ({gss_problem(exc)})",
                            "check the principal name and that the keytab holds its current key") from None
    return current_ticket_cache(f"FILE:{ccache}")


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "the past"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
