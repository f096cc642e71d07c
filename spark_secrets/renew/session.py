"""The renew service's own Kerberos login: from its keytab into a private cache, renewed well before expiry."""

from __future__ import annotations

import logging
from pathlib import Path

from spark_secrets.transport import HttpAuth

from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth

log = logging.getLogger("spark_secrets.renew")


class KeytabSession:
    """Callable: the SPNEGO auth of a current TGT, logging in again from the keytab when 70 % of it is gone."""

    def __init__(self, principal: str, keytab: Path, ccache: Path, *, refresh_when_left: float = 0.3) -> None:
        self.principal, self.keytab, self.ccache = principal, keytab, ccache
        self.refresh_when_left = refresh_when_left
        self._ticket = keytab_login(principal, keytab, ccache)
        self._lifetime = self._ticket.remaining
        self._auth = SpnegoAuth(self._ticket.credentials)

    def __repr__(self) -> str:
        return f"KeytabSession({self.principal!r}, expires={self._ticket.expires.isoformat()})"

    @property
    def short_name(self) -> str:
        return self._ticket.short_name

    def __call__(self) -> HttpAuth:
        if self._ticket.remaining < self._lifetime * self.refresh_when_left:
            self._ticket = keytab_login(self.principal, self.keytab, self.ccache)
            self._lifetime = self._ticket.remaining
            self._auth = SpnegoAuth(self._ticket.credentials)
            log.info("logged in again as %s from the keytab (TGT until %s)", self.principal,
                     self._ticket.expires.isoformat())
        return self._auth
