"""Unit tests of how the HTTP transport (``spark_secrets.transport``) writes requests and reads answers, against a
local server that sends exactly the bytes given: the framings of RFC 9112 (length, chunks, to the close), interim
answers, repeated and folded fields, and answers that are not HTTP or end early (each beside a control that reads)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from spark_secrets.transport import BrokenAnswer, Fields, Transport

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
#: What marks an answer's end other than the connection's: a length, chunks, or a status that has no body.
FRAMED = (b"Content-Length", b"chunked", b" 204 ")


class Scripted:
    """Answers the n-th request with the n-th answer, then closes the connection if the answer says so (``None``
    closes without answering). Keeps every request it read, head and body."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers, self.requests, self.connections = list(answers), [], 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:
                while self.answers:
                    head = b"".join(iter(lambda: reader.readline(), b"\r\n"))
                    if not head:
                        break
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    self.requests.append((head.decode(), reader.read(length)))
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if b"Connection: close" in answer or not any(framed in answer for framed in FRAMED):
                        break  # an answer without a length or chunks ends with the connection

    def url(self, path: str = "/webhdfs/v1/?op=A") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def transport() -> Iterator[Transport]:
    transport = Transport()
    yield transport
    transport.close()


def test_the_three_framings_of_a_body(transport: Transport) -> None:
    server = Scripted([HEAD + b"Content-Length: 4\r\n\r\nabcd",
                       HEAD + b"Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n10\r\n" + b"x" * 16
                       + b"\r\n0\r\nTrailer: t\r\n\r\n",
                       HEAD + b"\r\nto the end"])
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"abcd"
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"abc" + b"x" * 16
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"to the end"
    assert server.connections == 1  # the first two kept the connection; the third closed it


def test_the_request_carries_its_host_length_and_headers(transport: Transport) -> None:
    server = Scripted([HEAD + b"Content-Length: 0\r\n\r\n"] * 2)
    transport.send("PUT", server.url("/p?q=1"), {"Authorization": "Negotiate abc"}, timeout=5, verify=True)
    transport.send("POST", server.url("/p"), {}, timeout=5, verify=True, body=b'{"a": 1}')
    (put, put_body), (post, post_body) = server.requests
    assert put.startswith("PUT /p?q=1 HTTP/1.1\r\n") and f"Host: 127.0.0.1:{server.port}\r\n" in put
    assert "Authorization: Negotiate abc\r\n" in put and "Content-Length: 0\r\n" in put and put_body == b""
    assert "Content-Length: 8\r\n" in post and post_body == b'{"a": 1}'


def test_interim_answers_repeated_and_folded_fields(transport: Transport) -> None:
    server = Scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
                       b"www-authenticate: Basic realm=x\r\nX-Folded: one\r\n  two\r\nContent-Length: 0\r\n\r\n"])
    answer = transport.send("GET", server.url(), {}, timeout=5, verify=True)
    assert (answer.status_code, answer.reason, answer.ok) == (401, "Unauthorized", False)
    assert answer.headers.get("WWW-AUTHENTICATE") == "Negotiate, Basic realm=x"
    assert answer.headers.get("x-folded") == "one two" and answer.headers.get("Absent") is None


def test_a_head_or_204_answer_has_no_body_and_keeps_the_connection(transport: Transport) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n",
                       HEAD + b"Content-Length: 2\r\n\r\nok"])
    assert transport.send("HEAD", server.url(), {}, timeout=5, verify=True).content == b""
    assert transport.send("DELETE", server.url(), {}, timeout=5, verify=True).status_code == 204
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize("answer, problem", [
    (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP/1.1"),
    (HEAD + b"Content-Length: 10\r\nConnection: close\r\n\r\nshort", "ended before its body"),
    (HEAD + b"Content-Length: 1, 2\r\n\r\nab", "invalid Content-Length"),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nabc", "invalid chunk size"),
    (HEAD + b"Content-Length: \xb2\r\n\r\nab", "invalid Content-Length"),
    (b"HTTP/1.1 \xb2\xb2\xb2 OK\r\n\r\n", "not HTTP/1.1"),
    (HEAD + b"no colon here\r\n\r\n", "invalid header"),
])
def test_an_answer_that_is_not_http_is_named(transport: Transport, answer: bytes, problem: str) -> None:
    server = Scripted([answer])
    with pytest.raises(BrokenAnswer, match=problem):
        transport.send("GET", server.url(), {}, timeout=5, verify=True)


def test_a_kept_connection_closed_without_an_answer_is_tried_once_more(transport: Transport) -> None:
    server = Scripted([HEAD + b"Content-Length: 1\r\n\r\na", None, HEAD + b"Content-Length: 1\r\n\r\nb"])
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"a"
    assert transport.send("GET", server.url(), {}, timeout=5, verify=True).content == b"b"
    assert server.connections == 2
    fresh = Scripted([None])  # the control: on a new connection, no second try
    with pytest.raises(ConnectionResetError, match="without answering"):
        transport.send("GET", fresh.url(), {}, timeout=5, verify=True)


def test_a_header_value_with_a_line_break_is_refused_without_its_value(transport: Transport) -> None:
    server = Scripted([HEAD + b"Content-Length: 0\r\n\r\n"])
    with pytest.raises(ValueError, match="Authorization") as err:
        transport.send("GET", server.url(), {"Authorization": "Bearer s3cret\r\nX-Evil: 1"}, timeout=5, verify=True)
    assert "s3cret" not in str(err.value)
    assert transport.send("GET", server.url(), {"Authorization": "Bearer s3cret"}, timeout=5, verify=True).ok


def test_fields_show_names_not_values() -> None:
    fields = Fields([("Set-Cookie", "hadoop.auth=s3cret")])
    assert "s3cret" not in repr(fields) and "set-cookie" in repr(fields) and "SET-COOKIE" in fields
