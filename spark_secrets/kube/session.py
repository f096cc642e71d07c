"""A thread's requests session to an API server, for what :mod:`spark_secrets.transport` does not do (streaming
watches, a kubeconfig's ``proxy-url``): connection retries, and a ``tls-server-name`` that differs from the
address connected to."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from spark_secrets.errors import KubernetesError
from spark_secrets.kube.config import ClusterAccess, KubeconfigError
from spark_secrets.kube.status import status_error, status_message
from spark_secrets.transport import Answer

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


def send_by_proxy(session: requests.Session, access: ClusterAccess, method: str, url: str, headers: dict[str, str],
                  data: bytes | None, authorize: Callable[[requests.PreparedRequest], requests.PreparedRequest]) -> Answer:
    """One call through the kubeconfig's ``proxy-url`` (HTTP CONNECT, or SOCKS with requests' extra); a failure to
    reach the server is an ``OSError``, as from the transport."""
    proxy = str(access.proxy)
    try:
        # verify, cert and proxies per request: a session-wide verify would lose to REQUESTS_CA_BUNDLE.
        resp = session.request(method, url, data=data, headers=headers, auth=authorize, verify=access.verify,
                               cert=access.cert, proxies={"http": proxy, "https": proxy})
    except requests.exceptions.RequestException as exc:
        raise OSError(type(exc).__name__) from None
    return Answer(resp.status_code, resp.reason or "", resp.headers, resp.content)


def stream_events(session: requests.Session, access: ClusterAccess, url: str, params: Mapping[str, str | int],
                  accept: str, timeout_seconds: int,
                  authorize: Callable[[requests.PreparedRequest], requests.PreparedRequest],
                  where: str, decode: Callable[[bytes], dict[str, Any]] = json.loads) -> Iterator[dict[str, Any]]:
    """The JSON events of one watch request, each line as ``decode`` reads it; errors as the client names them."""
    proxy = access.proxy
    try:
        resp = session.get(url, params=params, headers={"Accept": accept}, auth=authorize, verify=access.verify,
                           cert=access.cert, proxies={"http": proxy, "https": proxy} if proxy else None,
                           stream=True, timeout=(30, timeout_seconds + 30))
    except requests.exceptions.RequestException as exc:
        raise KubernetesError(f"cannot watch {where}: API server {access.server} unreachable ({type(exc).__name__})",
                              "check the cluster address in your kubeconfig") from None
    except KubeconfigError as exc:
        raise KubernetesError(f"cannot watch {where}: {exc}", "check your Kubernetes credentials") from None
    try:
        if not resp.ok:
            raise status_error(f"watch {where}", resp.status_code, status_message(resp.content, resp.reason))
        # One JSON event per line; urllib3 hands over each HTTP chunk as it arrives.
        for line in resp.iter_lines(chunk_size=65536):
            if line:
                yield decode(line)
    except requests.exceptions.RequestException as exc:
        raise KubernetesError(f"the watch of {where} broke ({type(exc).__name__})") from None
    finally:
        resp.close()
