"""HTTP/1.1 over sockets: the token operations, and a submission's Kubernetes API calls.

Both are small requests with whole answers, no redirects and no streaming. ``requests`` was two thirds of a cold
``tokens fetch`` (issue 33); the standard library's ``http.client`` is a fifth of what remained (its headers are
parsed by the ``email`` package), and TLS is loaded even for plain HTTP. So this module writes the request and
reads the answer itself: a status line, header fields, and a body by ``Content-Length``, by chunks, or to the
end of the connection (RFC 9112); ``ssl`` is imported on the first ``https`` URL. Connections are kept per server
and reused while the server keeps them open (the renew service renews many tokens on one NameNode). TLS checks
the server against the system's CA store (OpenSSL's: ``SSL_CERT_FILE`` works; ``REQUESTS_CA_BUNDLE`` first), or a
CA bundle given as ``verify``; ``verify=False`` turns the check off; a client certificate and a TLS server name
other than the host connected to are for API servers. Proxies from the environment are not used, as by Hadoop's
own clients (a kubeconfig's ``proxy-url`` is the Kubernetes client's to honour: it uses requests then).
"""

import os
import select
import socket
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import urlsplit

from spark_secrets.errors import ConfigError

if TYPE_CHECKING:
    import ssl

#: Idle connections kept per server.
KEEP = 4
#: Bounds on an answer's head, as ``http.client``'s: the longest line, and the most header fields.
MAX_LINE, MAX_FIELDS = 65536, 100


class BrokenAnswer(ConnectionError):
    """The server's answer is not HTTP/1.1, or it ended before its body did."""


class Headers(Protocol):
    """A response's headers, found by name in any case (:class:`Fields`, ``requests``', or a test's dict)."""

    def get(self, name: str, /) -> str | None: ...


class Answer(NamedTuple):
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


class Fields:
    """An answer's header fields, found by name in any case; a field sent more than once has its values joined
    by ", " (RFC 9110, 5.3), as ``WWW-Authenticate`` challenges are."""

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def get(self, name: str, default: str | None = None, /) -> str | None:
        return self._values.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __repr__(self) -> str:
        return f"Fields({sorted(self._values)})"  # names only: values may be credentials


class _Connection:
    """One connection to a server: its socket, and a buffered reader of what the server sends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: IO[bytes] = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Transport:
    """Sends requests on kept-alive connections, one request at a time per connection; safe across threads.

    ``retries``: further attempts to connect when a new connection is refused or cannot be made (the request
    was not sent, so any method may be tried again); the Kubernetes client's is 3, as urllib3's default."""

    def __init__(self, retries: int = 0) -> None:
        self.retries = retries
        self._idle: dict[_Key, list[_Connection]] = {}
        self._contexts: dict[tuple[bool | str, tuple[str, str] | None], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def send(self, method: str, url: str, headers: Mapping[str, str], *, timeout: float | None, verify: bool | str,
             body: bytes | None = None, cert: tuple[str, str] | None = None,
             server_name: str | None = None) -> Answer:
        """Raises ``TimeoutError`` and other ``OSError`` s: ``ssl.SSLError`` for TLS failures (:func:`untrusted`
        tells a refused certificate), :class:`BrokenAnswer` for an answer that is not HTTP."""
        parts = urlsplit(url)
        key: _Key = (parts.scheme, parts.netloc, verify, cert, server_name) if parts.scheme == "https" \
            else (parts.scheme, parts.netloc, False, None, None)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request(method, target, parts.netloc.rpartition("@")[2], headers, body)
        conn = self._take(key)
        if conn is not None:
            try:
                return self._exchange(conn, key, method, request, timeout)
            except (ConnectionResetError, BrokenPipeError):
                pass  # the server closed a kept connection as the request went out: once more on a new one
        conn = self._connect(key, parts.hostname or "", parts.port, timeout)
        return self._exchange(conn, key, method, request, timeout)

    def _exchange(self, conn: _Connection, key: _Key, method: str, request: bytes, timeout: float | None) -> Answer:
        try:
            conn.sock.settimeout(timeout)
            conn.sock.sendall(request)
            answer, close = _read_answer(conn.reader, method)
        except BaseException:
            conn.close()
            raise
        if close:
            conn.close()
        else:
            self._give(key, conn)
        return answer

    def _take(self, key: _Key) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                # Readable while idle means the server closed it (or sent what nobody asked for): not reusable.
                if not select.select([conn.sock], [], [], 0)[0]:
                    return conn
                conn.close()
        return None

    def _give(self, key: _Key, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < KEEP:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, key: _Key, host: str, port: int | None, timeout: float | None) -> _Connection:
        scheme, _, verify, cert, server_name = key
        context = self._context(verify, cert) if scheme == "https" else None
        # An ASCII name goes to getaddrinfo as bytes: a str would load the IDNA codec (2 ms of a cold fetch).
        address = (host.encode("ascii") if host.isascii() else host, port or (443 if context else 80))
        for attempt in range(self.retries + 1):
            try:
                sock = socket.create_connection(address, timeout)  # type: ignore[arg-type]
                break
            except OSError:
                if attempt == self.retries:
                    raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            try:
                sock = context.wrap_socket(sock, server_hostname=server_name or host)
            except BaseException:
                sock.close()
                raise  # a trust problem: trying again would not change it
        return _Connection(sock)

    def _context(self, verify: bool | str, cert: tuple[str, str] | None) -> "ssl.SSLContext":
        import ssl

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


def _request(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    """The request's bytes. ``Content-Length`` goes with every body, and with an empty one for the methods that
    expect one (servers refuse a PUT without it); values with line breaks are refused, as ``http.client`` does."""
    lines = [f"{method} {target} HTTP/1.1"]
    given = {name.lower() for name in headers}
    if "host" not in given:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    for name, value in headers.items():
        if not name.isascii() or any(c in name for c in ":\r\n ") or "\r" in value or "\n" in value:
            raise ValueError(f"not a valid HTTP header: {name!r}")  # the name only: values may be credentials
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _read_answer(reader: IO[bytes], method: str) -> tuple[Answer, bool]:
    """The answer to one request, and whether the connection must be closed after it."""
    while True:  # 1xx interim answers (100 Continue, 103 Early Hints) come before the final one
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise ConnectionResetError("the server closed the connection without answering")
        version, _, rest = _line(line).partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not _digits(code):
            raise BrokenAnswer("the server's answer is not HTTP/1.1")
        fields = Fields(_fields(reader))
        status = int(code)
        if status >= 200 or status == 101:
            break
    tokens = {t.strip().lower() for t in (fields.get("Connection") or "").split(",")}
    close = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Answer(status, reason, fields, b""), close
    if "chunked" in (fields.get("Transfer-Encoding") or "").lower():
        return Answer(status, reason, fields, _chunks(reader)), close
    length = fields.get("Content-Length")
    if length is None:  # the body runs to the end of the connection
        return Answer(status, reason, fields, reader.read()), True
    sizes = {size.strip() for size in length.split(",")}
    if len(sizes) != 1 or not _digits(size := sizes.pop()):
        raise BrokenAnswer("the server's answer has an invalid Content-Length")
    return Answer(status, reason, fields, _exactly(reader, int(size))), close


#: What a chunk size is written in.
HEX = "0123456789abcdefABCDEF"


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` takes "²" too, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def _line(raw: bytes) -> str:
    if len(raw) > MAX_LINE:
        raise BrokenAnswer("the server's answer has a line too long")
    return raw.decode("latin-1").rstrip("\r\n")


def _fields(reader: IO[bytes]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    while (line := _line(reader.readline(MAX_LINE + 1))):
        if line[0] in " \t" and pairs:  # an obsolete folded line continues the field before it
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or len(pairs) == MAX_FIELDS:
            raise BrokenAnswer("the server's answer has an invalid header")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _exactly(reader: IO[bytes], size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise BrokenAnswer("the server's answer ended before its body did")
    return data


def _chunks(reader: IO[bytes]) -> bytes:
    """A chunked body: hexadecimal sizes (extensions after ";" ignored), the chunks, and trailer fields."""
    body = bytearray()
    while True:
        size = _line(reader.readline(MAX_LINE + 1)).partition(";")[0].strip()
        if not size or size.strip(HEX):  # int() alone would take "-1", "0x1f" or "1_0"
            raise BrokenAnswer("the server's answer has an invalid chunk size")
        length = int(size, 16)
        if length == 0:
            _fields(reader)  # trailers, unused
            return bytes(body)
        body += _exactly(reader, length)
        if _exactly(reader, 2) != b"\r\n":
            raise BrokenAnswer("the server's answer has a chunk without its line end")


def untrusted(exc: BaseException) -> bool:
    """Whether ``exc`` is TLS refusing the server's certificate (a trust problem, not a server that is down);
    ``ssl`` has been imported if any TLS was used."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLCertVerificationError)


def tls_context(verify: bool | str) -> "ssl.SSLContext":
    """The system's CA store (True; ``REQUESTS_CA_BUNDLE`` first, as for the job's data path, which is
    requests), a CA bundle file or directory (a path), or no check at all (False)."""
    import ssl

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
