"""Unit tests of SpnegoAuth (no test bed): the handshake with a fake GSS context and a fake transport, and
the one-line errors its failures become."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping

import gssapi
import gssapi.exceptions
import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

import spark_secrets.login.spnego as spnego
from spark_secrets.errors import HdfsAuthenticationError, HdfsPermissionError, KerberosError
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.transport import Answer
from spark_secrets.tokens.webhdfs import WebHdfsClient

NN = "http://nn.example.com:9870"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FakeContext:
    """Stands in for gssapi.SecurityContext: its first token is ``client-<n>``, and it accepts only
    ``server-<n>`` as the server's answer."""

    made: list[FakeContext] = []
    fail_with: Exception | None = None

    def __init__(self, *, name: gssapi.Name, usage: str, flags: object, creds: object, mech: object,
                 channel_bindings: object = None) -> None:
        if FakeContext.fail_with is not None:
            raise FakeContext.fail_with
        self.target, self.usage, self.flags, self.creds = str(name), usage, flags, creds
        self.number = len(FakeContext.made) + 1
        self.received: list[bytes] = []
        self.complete = False
        FakeContext.made.append(self)

    def step(self, token: bytes | None = None) -> bytes | None:
        if not token:
            return f"client-{self.number}".encode()
        self.received.append(token)
        if token != f"server-{self.number}".encode():
            raise _gss_error(gssapi.exceptions.GSSError, "Major (589824): Invalid token was supplied, Minor (0): bad")
        self.complete = True
        return None


def _gss_error(base: type[gssapi.exceptions.GSSError], text: str) -> gssapi.exceptions.GSSError:
    """A GSSError of type ``base`` whose message is ``text`` (as MIT krb5 words it).

    An instance of the real class, never a subclass: GSSError's metaclass registers every subclass by
    its status codes, and a test subclass would then be raised for real errors in later tests."""
    error = base.__new__(base)  # not base(): the metaclass picks the class from status codes
    Exception.__init__(error, text)
    error.maj_code, error.min_code, error.token = 0, 0, None
    error.gen_message = lambda: text  # type: ignore[method-assign]
    return error


Reply = tuple[int, dict[str, str], bytes]


class Answers:
    """A transport that answers from a list (or a function of the request's headers) and records what it got."""

    def __init__(self, *answers: Reply | Callable[[Mapping[str, str]], Reply]) -> None:
        self.answers = list(answers)
        self.authorizations: list[str | None] = []

    def send(self, method: str, url: str, headers: Mapping[str, str], *, timeout: float, verify: bool | str) -> Answer:
        self.authorizations.append(headers.get("Authorization"))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        status, found, body = answer(headers) if callable(answer) else answer
        return Answer(status, "OK" if status < 400 else "Refused", found, body)


def _client(*answers: Reply | Callable[[Mapping[str, str]], Reply]) -> tuple[WebHdfsClient, Answers]:
    transport = Answers(*answers)
    return WebHdfsClient(NN, SpnegoAuth(), transport=transport), transport


OK_BODY = json.dumps({"Path": "/user/alice"}).encode()


@pytest.fixture(autouse=True)
def fake_gss(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    FakeContext.made, FakeContext.fail_with = [], None
    monkeypatch.setattr(gssapi, "SecurityContext", FakeContext)
    yield


# -- the handshake -----------------------------------------------------------------------------------
def test_token_goes_with_the_first_request_and_the_answer_is_verified() -> None:
    client, adapter = _client((200, {"WWW-Authenticate": f"Negotiate {_b64(b'server-1')}"}, OK_BODY))
    assert client.call("GET", "GETHOMEDIRECTORY", {}) == {"Path": "/user/alice"}
    assert adapter.authorizations == [f"Negotiate {_b64(b'client-1')}"]  # no 401 round trip first
    [context] = FakeContext.made
    assert context.target == "HTTP@nn.example.com"
    assert int(context.flags) & gssapi.RequirementFlag.mutual_authentication  # type: ignore[call-overload]
    assert context.received == [b"server-1"] and context.complete


def test_an_answer_without_a_token_is_accepted() -> None:
    # Hadoop sends no token when its hadoop.auth cookie, not SPNEGO, authenticated the request.
    client, adapter = _client((200, {"Set-Cookie": "hadoop.auth=signed"}, OK_BODY))
    assert client.call("GET", "GETHOMEDIRECTORY", {}) == {"Path": "/user/alice"}
    assert len(adapter.authorizations) == 1


def test_an_answer_token_that_does_not_verify_fails_in_one_line() -> None:
    client, _ = _client((200, {"WWW-Authenticate": f"Negotiate {_b64(b'forged')}"}, OK_BODY))
    with pytest.raises(KerberosError) as err:
        client.call("GET", "GETHOMEDIRECTORY", {})
    assert err.value.problem == "the server at nn.example.com:9870 failed Kerberos mutual authentication"
    assert err.value.fix and "HTTP/nn.example.com" in err.value.fix
    _one_line_without_tokens(err.value)


def test_each_request_verifies_its_own_context() -> None:
    """Two requests begun before either is answered (as threads sharing one SpnegoAuth do)."""
    auth = SpnegoAuth()
    first, second = auth.negotiate("nn.example.com"), auth.negotiate("nn.example.com")
    second.verify(200, {"WWW-Authenticate": f"Negotiate {_b64(b'server-2')}"}, NN)
    first.verify(200, {"WWW-Authenticate": f"Negotiate {_b64(b'server-1')}"}, NN)
    assert [c.received for c in FakeContext.made] == [[b"server-1"], [b"server-2"]]


def test_it_serves_requests_as_an_auth_hook() -> None:
    """``session.auth = SpnegoAuth(...)`` (HdfsCLI's session): the header goes out, the answer is checked."""
    sent: list[str | None] = []

    class Adapter(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
            sent.append(request.headers.get("Authorization"))
            token = "server-1" if len(sent) == 1 else "forged"
            raw = urllib3.HTTPResponse(body=io.BytesIO(OK_BODY), status=200, preload_content=False,
                                       headers={"WWW-Authenticate": f"Negotiate {_b64(token.encode())}"},
                                       decode_content=False)
            return self.build_response(request, raw)

    session = requests.Session()
    session.mount("http://", Adapter())
    session.auth = SpnegoAuth()
    assert session.get(f"{NN}/webhdfs/v1/?op=A").json() == {"Path": "/user/alice"}
    assert sent == [f"Negotiate {_b64(b'client-1')}"] and FakeContext.made[0].complete
    with pytest.raises(KerberosError, match="failed Kerberos mutual authentication"):  # the control
        session.get(f"{NN}/webhdfs/v1/?op=B")


def test_ip_literals_name_the_host_in_the_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spnego.socket, "gethostbyaddr", lambda ip: ("nn.example.com", [], [ip]))
    WebHdfsClient("http://10.0.0.1:9870", SpnegoAuth(), transport=Answers((200, {}, OK_BODY))).call(
        "GET", "GETHOMEDIRECTORY", {})
    assert FakeContext.made[0].target == "HTTP@nn.example.com"


# -- failures ----------------------------------------------------------------------------------------
def test_a_401_to_the_token_is_named_not_retried() -> None:
    """A Kerberos token the server refused would be refused again: no second try (and no 401 round trip first)."""
    for challenge in ("Negotiate", "Basic realm=x"):
        client, adapter = _client((401, {"WWW-Authenticate": challenge}, b""))
        with pytest.raises(HdfsAuthenticationError) as err:
            client.call("GET", "GETDELEGATIONTOKEN", {})
        assert "Kerberos authentication failed (HTTP 401)" in err.value.problem
        assert len(adapter.authorizations) == 1 and str(adapter.authorizations[0]).startswith("Negotiate ")
        _one_line_without_tokens(err.value)


def test_error_answers_keep_their_remote_exception() -> None:
    remote = {"RemoteException": {"exception": "AccessControlException", "javaClassName": "x",
                                  "message": "User: spark-renewer is not allowed to impersonate alice"}}
    client, _ = _client((403, {"Content-Type": "application/json"}, json.dumps(remote).encode()))
    with pytest.raises(HdfsPermissionError, match="GETDELEGATIONTOKEN: User: spark-renewer is not allowed to impersonate"):
        client.call("GET", "GETDELEGATIONTOKEN", {"doas": "alice"})


NO_CREDENTIALS = ("Major (458752): No credentials were supplied, or the credentials were unavailable or "
                  "inaccessible, Minor (100001): SPNEGO cannot find mechanisms to negotiate")
UNSPECIFIED = "Major (851968): Unspecified GSS failure.  Minor code may provide more information, Minor (100006): "


@pytest.mark.parametrize(("error", "problem"), [
    (lambda: _gss_error(gssapi.exceptions.MissingCredentialsError, NO_CREDENTIALS), "no Kerberos ticket found"),
    (lambda: gssapi.exceptions.ExpiredCredentialsError(0xB0000, 0), "the Kerberos ticket has expired"),
    (lambda: _gss_error(gssapi.exceptions.GSSError, UNSPECIFIED.replace("100006", "100007") + "Ticket expired"),
     "the Kerberos ticket has expired"),
    (lambda: _gss_error(gssapi.exceptions.GSSError, UNSPECIFIED + "Server not found in Kerberos database"),
     "the KDC has no principal HTTP/nn.example.com"),
    (lambda: _gss_error(gssapi.exceptions.GSSError,
                        UNSPECIFIED + "Server HTTP/nn.example.com@EXAMPLE.COM not found in Kerberos database"),
     "the KDC has no principal HTTP/nn.example.com"),
    (lambda: _gss_error(gssapi.exceptions.GSSError, UNSPECIFIED + "Cannot contact any KDC for realm 'EXAMPLE.COM'"),
     "Kerberos failed for HTTP/nn.example.com (Major (851968): Unspecified GSS failure. Minor code may provide "
     "more information, Minor (100006): Cannot contact any KDC for realm 'EXAMPLE.COM')"),
], ids=["no-ticket", "expired-credentials", "ticket-expired", "unknown-server", "unknown-server-named", "other"])
def test_gss_failures_become_one_line_errors_before_anything_is_sent(
        error: Callable[[], Exception], problem: str) -> None:
    FakeContext.fail_with = error()
    client, adapter = _client((200, {}, OK_BODY))
    with pytest.raises(KerberosError) as err:
        client.call("GET", "GETDELEGATIONTOKEN", {})
    assert err.value.problem == problem
    assert err.value.fix
    assert adapter.authorizations == []
    _one_line_without_tokens(err.value)


def test_no_token_bytes_in_any_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = _client((200, {"WWW-Authenticate": f"Negotiate {_b64(b'server-1')}"}, OK_BODY))
    client.call("GET", "GETHOMEDIRECTORY", {})
    client, _ = _client((200, {"WWW-Authenticate": f"Negotiate {_b64(b'server-1')}"}, OK_BODY))
    with pytest.raises(KerberosError):
        client.call("GET", "GETHOMEDIRECTORY", {})  # context 2 expects server-2
    FakeContext.fail_with = _gss_error(gssapi.exceptions.MissingCredentialsError, NO_CREDENTIALS)
    with pytest.raises(KerberosError):
        client.call("GET", "GETHOMEDIRECTORY", {})
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (b"client-1", b"client-2", b"server-1"):
        assert _b64(secret) not in text and secret.decode() not in text


def _one_line_without_tokens(error: Exception) -> None:
    text = str(error)
    assert "\n" not in text
    for secret in (b"client-1", b"client-2", b"server-1", b"forged"):
        assert _b64(secret) not in text and secret.decode() not in text
