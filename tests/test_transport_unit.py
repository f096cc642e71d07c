"""Unit tests of the HTTP transport (``spark_secrets.transport``) against local HTTP/1.1 servers of the standard
library: connections kept and reused, a kept connection the server closed, timeouts and refusals as the errors token
clients name, a CA bundle that is not one, and for API servers a client certificate, a TLS server name other than
the address, and connection retries."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_secrets.errors import ConfigError, HdfsError, NameNodeUnavailable
from spark_secrets.transport import Transport, tls_context
from spark_secrets.tokens.webhdfs import WebHdfsClient


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open unless told otherwise
    delay = 0.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(self.delay)
        self.server.seen.append((self.client_address[1], self.path))  # type: ignore[attr-defined]
        body = b'{"Path": "/user/alice"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if "close" in self.path:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(server: http.server.ThreadingHTTPServer, path: str = "/webhdfs/v1/?op=A") -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def test_a_kept_connection_is_reused_and_one_the_server_closed_is_not(server: http.server.ThreadingHTTPServer) -> None:
    transport = Transport()
    answers = [transport.send("GET", _url(server), {}, timeout=5, verify=True) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3 and answers[0].content == b'{"Path": "/user/alice"}'
    ports = [port for port, _ in server.seen]  # type: ignore[attr-defined]
    assert len(set(ports)) == 1, ports  # one connection for all three
    # Control: the server says it closes; the next request opens a new connection.
    transport.send("GET", _url(server, "/webhdfs/v1/?op=close"), {}, timeout=5, verify=True)
    transport.send("GET", _url(server), {}, timeout=5, verify=True)
    ports = [port for port, _ in server.seen]  # type: ignore[attr-defined]
    assert ports[3] == ports[0] and ports[4] != ports[0], ports
    transport.close()


def test_a_kept_connection_closed_while_idle_is_replaced(server: http.server.ThreadingHTTPServer) -> None:
    transport = Transport()
    transport.send("GET", _url(server), {}, timeout=5, verify=True)
    ((_, conns),) = transport._idle.items()
    conns[0].sock.shutdown(socket.SHUT_RD)  # as if the server had closed it: readable, at its end
    assert transport.send("GET", _url(server), {}, timeout=5, verify=True).ok
    ports = [port for port, _ in server.seen]  # type: ignore[attr-defined]
    assert len(set(ports)) == 2, ports


def test_timeouts_and_refusals_become_the_unavailable_error(server: http.server.ThreadingHTTPServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Handler, "delay", 1.5)
    client = WebHdfsClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=0.3, transport=Transport())
    with pytest.raises(NameNodeUnavailable, match=r"did not answer GETHOMEDIRECTORY within 0 s"):
        client.call("GET", "GETHOMEDIRECTORY", {})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(NameNodeUnavailable, match=r"cannot connect to NameNode 127.0.0.1:\d+ for GETHOMEDIRECTORY"):
        WebHdfsClient(f"http://127.0.0.1:{closed}", transport=Transport()).call("GET", "GETHOMEDIRECTORY", {})
    monkeypatch.setattr(_Handler, "delay", 0.0)  # control: in time, it answers
    assert WebHdfsClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5,
                         transport=Transport()).call("GET", "GETHOMEDIRECTORY", {}) == {"Path": "/user/alice"}


def test_a_ca_bundle_that_is_not_one_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    for where in (bad, tmp_path / "missing.pem"):
        with pytest.raises(ConfigError, match="cannot be read as PEM certificates"):
            tls_context(str(where))
    assert tls_context(True).verify_mode.name == "CERT_REQUIRED"  # the control: the system's store
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bad))  # the job's data path (requests) reads it: so does this
    with pytest.raises(ConfigError, match="cannot be read as PEM certificates"):
        tls_context(True)
    assert tls_context(False).verify_mode.name == "CERT_NONE"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS server whose certificate names ``api.example`` (not the address connected to) and which requires
    a client certificate signed by the same CA, as an API server does."""
    for name, subject in (("ca", "/CN=test-ca"),):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                 "-days", "1", "-subj", subject, cwd=tmp_path)
    for name, subject, ext in (("server", "/CN=api.example", "subjectAltName=DNS:api.example"),
                               ("client", "/CN=alice", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=tmp_path)
        (tmp_path / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=tmp_path)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(tmp_path / "server.pem"), str(tmp_path / "server.key"))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], tmp_path
    httpd.shutdown()
    httpd.server_close()


def test_a_client_certificate_and_a_tls_server_name(tls_server: tuple[int, Path]) -> None:
    port, d = tls_server
    url, ca, cert = f"https://127.0.0.1:{port}/api/v1/pods", str(d / "ca.pem"), (str(d / "client.pem"), str(d / "client.key"))
    answer = Transport().send("GET", url, {}, timeout=5, verify=ca, cert=cert, server_name="api.example")
    assert answer.ok and answer.content == b'{"Path": "/user/alice"}'
    # Controls: the certificate does not name the address connected to; and the server wants a client certificate.
    with pytest.raises(ssl.SSLCertVerificationError):
        Transport().send("GET", url, {}, timeout=5, verify=ca, cert=cert)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        Transport().send("GET", url, {}, timeout=5, verify=ca, server_name="api.example")


def test_a_refused_connection_is_tried_again_before_it_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    attempts: list[int] = []
    real = socket.create_connection

    def counted(*args: object, **kwargs: object) -> socket.socket:
        attempts.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", counted)
    with pytest.raises(ConnectionRefusedError):
        Transport(retries=3).send("GET", f"http://127.0.0.1:{closed}/", {}, timeout=5, verify=True)
    assert len(attempts) == 4
    attempts.clear()
    with pytest.raises(ConnectionRefusedError):  # the token clients' transport: no retries
        Transport().send("GET", f"http://127.0.0.1:{closed}/", {}, timeout=5, verify=True)
    assert len(attempts) == 1


def test_an_untrusted_server_is_named_as_such_not_as_unavailable(tls_server: tuple[int, Path]) -> None:
    """A trust problem must not read as a NameNode that is down (the next one of a set would be tried)."""
    port, _ = tls_server
    with pytest.raises(HdfsError, match=r"TLS to NameNode 127.0.0.1:\d+ failed during GETHOMEDIRECTORY: its certificate "
                                        r"is not trusted") as err:
        WebHdfsClient(f"https://127.0.0.1:{port}", transport=Transport()).call("GET", "GETHOMEDIRECTORY", {})
    assert not isinstance(err.value, NameNodeUnavailable)
