"""A thread's HTTP session to an API server: connection retries, and a ``tls-server-name`` that differs
from the address connected to."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

#: Connection attempts before a request counts as failed (urllib3's default, which the ``kubernetes``
#: client uses).
RETRIES = 3


class _ServerNameAdapter(HTTPAdapter):
    """Connects by the server's address but expects the certificate of ``tls-server-name``."""

    def __init__(self, server_hostname: str, **kwargs: Any) -> None:
        self._server_hostname = server_hostname
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, server_hostname=self._server_hostname, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, server_hostname=self._server_hostname, **kwargs)


def new_session(tls_server_name: str | None) -> requests.Session:
    """A session that retries connections and, given ``tls_server_name``, expects that certificate."""
    session = requests.Session()
    session.mount("https://", _ServerNameAdapter(tls_server_name, max_retries=RETRIES) if tls_server_name
                  else HTTPAdapter(max_retries=RETRIES))
    session.mount("http://", HTTPAdapter(max_retries=RETRIES))
    return session
