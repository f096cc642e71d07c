"""HTTP(S) on the standard library's ``http.client``: the token operations, and a submission's Kubernetes API calls.

Both are small requests with whole answers, no redirects and no streaming: what requests adds (sessions,
adapters, encodings, proxies from the environment) is not used here, and importing it was two thirds of a cold
``tokens fetch`` and two fifths of a cold ``conf`` (issue 33). Connections are kept per server and reused while
the server keeps them open (the renew service renews many tokens on one NameNode). TLS checks the server against
the system's CA store (OpenSSL's: ``SSL_CERT_FILE`` works; ``REQUESTS_CA_BUNDLE`` first), or a CA bundle given as
``verify``; ``verify=False`` turns the check off; a client certificate and a TLS server name other than the host
connected to are for API servers. Proxies from the environment are not used, as by Hadoop's own clients (a
kubeconfig's ``proxy-url`` is the Kubernetes client's to honour: it uses requests then).
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from spark_secrets.errors import ConfigError

#: Idle connections kept per server.
KEEP = 4


class Headers(Protocol):
    """A response's headers, found by name in any case (``http.client``'s, ``requests``', or a test's dict)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Answer:
    """A server's answer, read whole. The names are those of ``requests.Response``, which
    :func:`~spark_secrets.tokens.webhdfs.remote_error` also reads."""

    status_code: int
    reason: str
    headers: Headers
    content: bytes

    @property
    def ok(self) -> bool:
        return self.status_code < 400


class Exchange(Protocol):
    """One request's authentication: the ``Authorization`` header to send, and the check of the answer."""

    header: str

    def verify(self, status: int, headers: Headers, where: str) -> None: ...


class HttpAuth(Protocol):
    """What a token client asks of its authentication (:class:`~spark_secrets.login.spnego.SpnegoAuth`):
    a new :class:`Exchange` per request."""

    def negotiate(self, host: str) -> Exchange: ...


class Sender(Protocol):
    """What a token client sends its requests through (unit tests give their own)."""

    def send(self, method: str, url: str, headers: Mapping[str, str], *, timeout: float,
             verify: bool | str) -> Answer: ...


#: What a connection is kept by: scheme, host:port, and for HTTPS the CA check, client certificate and server name.
_Key = tuple[str, str, "bool | str", "tuple[str, str] | None", "str | None"]


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the host given but checks (and asks by SNI for) the certificate of ``server_name``."""

    def __init__(self, host: str, port: int | None, *, server_name: str, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


class Transport:
    """Sends requests on kept-alive connections, one request at a time per connection; safe across threads.

    ``retries``: further attempts to connect when a new connection is refused or cannot be made (the request
    was not sent, so any method may be tried again); the Kubernetes client's is 3, as urllib3's default."""

    def __init__(self, retries: int = 0) -> None:
        self.retries = retries
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._contexts: dict[tuple[bool | str, tuple[str, str] | None], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def send(self, method: str, url: str, headers: Mapping[str, str], *, timeout: float | None, verify: bool | str,
             body: bytes | None = None, cert: tuple[str, str] | None = None,
             server_name: str | None = None) -> Answer:
        """Raises ``ssl.SSLError`` for TLS failures, ``TimeoutError`` and other ``OSError`` s, or
        ``http.client.HTTPException`` for a broken answer."""
        parts = urlsplit(url)
        key: _Key = (parts.scheme, parts.netloc, verify, cert, server_name) if parts.scheme == "https" \
            else (parts.scheme, parts.netloc, False, None, None)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = self._take(key)
        if conn is not None:
            try:
                return self._exchange(conn, key, method, target, headers, body, timeout)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass  # the server closed a kept connection as the request went out: once more on a new one
        conn = self._connect(key, parts.hostname or "", parts.port, timeout)
        return self._exchange(conn, key, method, target, headers, body, timeout)

    def _exchange(self, conn: http.client.HTTPConnection, key: _Key, method: str, target: str,
                  headers: Mapping[str, str], body: bytes | None, timeout: float | None) -> Answer:
        try:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            conn.request(method, target, body=body, headers=dict(headers))
            resp = conn.getresponse()
            answer = Answer(resp.status, resp.reason, resp.headers, resp.read())
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._give(key, conn)
        return answer

    def _take(self, key: _Key) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                # Readable while idle means the server closed it (or sent what nobody asked for): not reusable.
                if conn.sock is not None and not select.select([conn.sock], [], [], 0)[0]:
                    return conn
                conn.close()
        return None

    def _give(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < KEEP:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, key: _Key, host: str, port: int | None, timeout: float | None) -> http.client.HTTPConnection:
        scheme, _, verify, cert, server_name = key
        conn: http.client.HTTPConnection
        if scheme == "https" and server_name:
            conn = _NamedHTTPSConnection(host, port, server_name=server_name, timeout=timeout,
                                         context=self._context(verify, cert))
        elif scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context(verify, cert))
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        for attempt in range(self.retries + 1):
            try:
                conn.connect()
                return conn
            except ssl.SSLError:
                conn.close()
                raise  # a trust problem: trying again would not change it
            except OSError:
                conn.close()
                if attempt == self.retries:
                    raise
        return conn

    def _context(self, verify: bool | str, cert: tuple[str, str] | None) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get((verify, cert))
            if context is None:
                context = self._contexts[(verify, cert)] = tls_context(verify)
                if cert is not None:
                    try:
                        context.load_cert_chain(*cert)
                    except (OSError, ssl.SSLError):
                        raise ConfigError(f"the client certificate {cert[0]} and key {cert[1]} cannot be read",
                                          "check the kubeconfig's client-certificate and client-key") from None
            return context

    def close(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The system's CA store (True; ``REQUESTS_CA_BUNDLE`` first, as for the job's data path, which is
    requests), a CA bundle file or directory (a path), or no check at all (False)."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    bundle = (os.environ.get("REQUESTS_CA_BUNDLE") or None) if verify is True else str(verify)
    if bundle is None:
        return ssl.create_default_context()
    where = Path(bundle)
    try:
        if where.is_dir():
            return ssl.create_default_context(capath=str(where))
        return ssl.create_default_context(cafile=str(where))
    except (OSError, ssl.SSLError):
        raise ConfigError(f"the CA bundle {bundle} cannot be read as PEM certificates",
                          "give a readable PEM file (or a directory made by c_rehash)") from None


#: The transport token clients share unless given their own.
SHARED = Transport()
