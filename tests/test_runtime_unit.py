"""spark_secrets.runtime without the test bed: the HdfsCLI client and the pyarrow filesystem against an
in-memory WebHDFS (NameNodes and a DataNode behind a requests transport adapter), with real token files.

The fake speaks the WebHDFS wire protocol as Hadoop 3 does for what the runtime uses (JSON statuses,
307 redirects to a DataNode carrying ``delegation=``, ``RemoteException`` bodies for a standby, an
unknown or expired token and a permission refusal), so the tests exercise HdfsCLI and pyarrow as
they run against a cluster; tests/test_runtime.py does the same against the real one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import posixpath
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import (
    ConfigError,
    HdfsError,
    HdfsPermissionError,
    InvalidTokenError,
    MissingTokenError,
    NameNodeUnavailable,
    SparkSecretsError,
    TokenExpiredError,
)
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.hadoop.identifier import (
    HDFS_DELEGATION_KIND,
    WEBHDFS_DELEGATION_KIND,
    DelegationTokenIdentifier,
)
from spark_secrets.runtime import TokenFile, arrow_filesystem, hdfs_client
from spark_secrets.runtime.client import TokenFileClient
from spark_secrets.hadoop.token import Token

NN1, NN2, DN = "nn1.test:9870", "nn2.test:9870", "dn.test:9864"
CONF = HadoopConf({"fs.defaultFS": "hdfs://ns1", "dfs.nameservices": "ns1", "dfs.ha.namenodes.ns1": "nn1,nn2",
                   "dfs.namenode.rpc-address.ns1.nn1": "nn1.test:8020", "dfs.namenode.rpc-address.ns1.nn2": "nn2.test:8020",
                   "dfs.namenode.http-address.ns1.nn1": NN1, "dfs.namenode.http-address.ns1.nn2": NN2})
_SEQ = iter(range(1, 10_000))


def make_token(*, owner: str = "alice", renewer: str = "spark-renewer", max_in_s: float = 3600,
               service: str = "ha-webhdfs:ns1", kind: str = WEBHDFS_DELEGATION_KIND) -> Token:
    now = int(time.time() * 1000)
    ident = DelegationTokenIdentifier(owner=owner, renewer=renewer, real_user="", issue_date=now - 1000,
                                      max_date=now + int(max_in_s * 1000), sequence_number=next(_SEQ), master_key_id=7)
    return Token(identifier=ident.encode(), password=os.urandom(20), kind=kind, service=service)


def token_file(path: Path, *tokens: Token) -> Path:
    creds = Credentials()
    for token in tokens:
        creds.add(token)
    return creds.save(path)


def secret_forms(*tokens: Token) -> list[str]:
    return [form for t in tokens for form in (t.encode_url(), t.password.hex(), quote(t.encode_url(), safe=""))]


# -- the fake cluster -------------------------------------------------------------------------------
class FakeWebHdfs(BaseAdapter):
    """NameNodes (``active``, ``standby`` or ``down``) and one DataNode, with files in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.state = {NN1: "standby", NN2: "active"}
        self.dirs: dict[str, str] = {"/": "hdfs", "/user": "hdfs", "/user/alice": "alice", "/user/bob": "bob"}
        self.files: dict[str, bytes] = {}
        self.accepted: dict[bytes, Token] = {}  # by identifier
        self.expired: set[bytes] = set()
        self.log: list[tuple[str, str, str]] = []  # (host, op, token fingerprint)
        self.verify: list[Any] = []
        self.datanode_down = False
        self.tls_untrusted = False

    def accept(self, *tokens: Token) -> None:
        for t in tokens:
            self.accepted[t.identifier] = t

    def cancel(self, token: Token) -> None:
        self.accepted.pop(token.identifier, None)

    # requests' adapter interface
    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        assert request.url is not None
        parts = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = unquote(parts.path.removeprefix("/webhdfs/v1")) or "/"
        op = query.get("op", "")
        self.verify.append(verify)
        if self.tls_untrusted:
            raise requests.exceptions.SSLError(f"certificate verify failed for {request.url}")
        if parts.netloc == DN:
            if self.datanode_down:
                raise requests.exceptions.ConnectionError(f"Max retries exceeded with url: {request.url}")
            return self._datanode(request, op, path, query)
        state = self.state[parts.netloc]
        if state == "down":
            raise requests.exceptions.ConnectionError(f"Max retries exceeded with url: {request.url}")
        token = Token.decode_url(query["delegation"])
        self.log.append((parts.netloc, op, token.fingerprint))
        if state == "standby":
            return self._remote(request, 403, "StandbyException",
                                "Operation category READ is not supported in state standby.")
        known = self.accepted.get(token.identifier)
        if known is None or known.password != token.password:
            return self._remote(request, 403, "SecurityException",
                                "Failed to obtain user group information: org.apache.hadoop.security.token."
                                "SecretManager$InvalidToken: token (HDFS_DELEGATION_TOKEN token 9 for alice) "
                                "can't be found in cache")
        if token.identifier in self.expired:
            return self._remote(request, 403, "SecurityException",
                                "Failed to obtain user group information: org.apache.hadoop.security.token."
                                "SecretManager$InvalidToken: token (HDFS_DELEGATION_TOKEN token 9 for alice) is "
                                "expired, current time: 2026-12-01 04:00:00,000+0000 expected renewal time: "
                                "2026-12-01 03:59:00,000+0000")
        return self._namenode(request, op, path, query, token)

    def close(self) -> None:
        pass

    # -- NameNode operations --------------------------------------------------------------------
    def _owner_refuses(self, path: str, access: str) -> tuple[str, str] | None:
        probe = path
        while True:
            if probe in self.dirs and self.dirs[probe] not in ("alice", "hdfs"):
                return probe, self.dirs[probe]
            if probe == "/":
                return None
            probe = posixpath.dirname(probe)

    def _namenode(self, request: requests.PreparedRequest, op: str, path: str, query: dict[str, str],
                  token: Token) -> requests.Response:
        refused = self._owner_refuses(path, op)
        if refused is not None:
            inode, owner = refused
            access = "WRITE" if request.method in ("PUT", "POST", "DELETE") else "READ_EXECUTE"
            return self._remote(request, 403, "AccessControlException",
                                f'Permission denied: user=alice, access={access}, inode="{inode}":{owner}:users:drwx------')
        if op == "GETFILESTATUS":
            status = self._status(path)
            if status is None:
                return self._remote(request, 404, "FileNotFoundException", f"File does not exist: {path}")
            return self._json(request, {"FileStatus": status})
        if op == "LISTSTATUS":
            if path in self.files:
                return self._json(request, {"FileStatuses": {"FileStatus": [{**self._status(path), "pathSuffix": ""}]}})
            if path not in self.dirs:
                return self._remote(request, 404, "FileNotFoundException", f"File {path} does not exist.")
            children = sorted({p for p in [*self.dirs, *self.files] if p != path and posixpath.dirname(p) == path})
            return self._json(request, {"FileStatuses": {"FileStatus": [
                {**self._status(c), "pathSuffix": posixpath.basename(c)} for c in children]}})
        if op == "MKDIRS":
            probe = path
            while probe not in self.dirs:
                self.dirs[probe] = "alice"
                probe = posixpath.dirname(probe)
            return self._json(request, {"boolean": True})
        if op == "DELETE":
            gone = [p for p in [*self.dirs, *self.files] if p == path or p.startswith(path.rstrip("/") + "/")]
            for p in gone:
                self.dirs.pop(p, None)
                self.files.pop(p, None)
            return self._json(request, {"boolean": bool(gone)})
        if op == "RENAME":
            dest = query["destination"]
            for p in [p for p in [*self.dirs, *self.files] if p == path or p.startswith(path + "/")]:
                new = dest + p[len(path):]
                if p in self.files:
                    self.files[new] = self.files.pop(p)
                else:
                    self.dirs[new] = self.dirs.pop(p)
            return self._json(request, {"boolean": True})
        if op in ("CREATE", "OPEN", "APPEND"):
            if op == "OPEN" and path not in self.files:
                return self._remote(request, 404, "FileNotFoundException", f"File does not exist: {path}")
            extra = {k: v for k, v in query.items() if k in ("offset", "length", "overwrite")}
            location = (f"http://{DN}/webhdfs/v1{quote(path)}?op={op}&delegation={token.encode_url()}"
                        f"&namenoderpcaddress=ns1" + "".join(f"&{k}={v}" for k, v in extra.items()))
            return self._response(request, 307, b"", {"Location": location})
        return self._remote(request, 400, "IllegalArgumentException", f"unsupported op {op}")

    def _status(self, path: str) -> dict[str, Any] | None:
        if path in self.dirs:
            return {"type": "DIRECTORY", "length": 0, "owner": self.dirs[path], "modificationTime": 1_700_000_000_000}
        if path in self.files:
            return {"type": "FILE", "length": len(self.files[path]), "owner": "alice",
                    "modificationTime": 1_700_000_000_000}
        return None

    def _datanode(self, request: requests.PreparedRequest, op: str, path: str, query: dict[str, str]) -> requests.Response:
        token = Token.decode_url(query["delegation"])
        if token.identifier not in self.accepted:
            return self._remote(request, 403, "InvalidToken", "token can't be found in cache")
        if op in ("CREATE", "APPEND"):
            body = request.body
            data = b"".join(body) if body is not None and not isinstance(body, (bytes, str)) else (body or b"")
            data = data.encode() if isinstance(data, str) else data
            self.files[path] = (self.files.get(path, b"") if op == "APPEND" else b"") + data
            probe = posixpath.dirname(path)
            while probe not in self.dirs:
                self.dirs[probe] = "alice"
                probe = posixpath.dirname(probe)
            return self._response(request, 201 if op == "CREATE" else 200, b"")
        content = self.files[path]
        offset = int(query.get("offset", 0))
        length = int(query["length"]) if "length" in query else len(content) - offset
        return self._response(request, 200, content[offset:offset + length])

    # -- responses ------------------------------------------------------------------------------
    def _response(self, request: requests.PreparedRequest, status: int, body: bytes,
                  headers: dict[str, str] | None = None) -> requests.Response:
        resp = requests.Response()
        resp.status_code = status
        resp.raw = io.BytesIO(body)
        resp.headers = CaseInsensitiveDict(headers or {})
        resp.url = request.url or ""
        resp.request = request
        resp.reason = "fake"
        return resp

    def _json(self, request: requests.PreparedRequest, body: dict[str, Any]) -> requests.Response:
        return self._response(request, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _remote(self, request: requests.PreparedRequest, status: int, exception: str, message: str) -> requests.Response:
        body = {"RemoteException": {"exception": exception, "javaClassName": f"x.{exception}", "message": message}}
        return self._response(request, status, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def cluster() -> FakeWebHdfs:
    return FakeWebHdfs()


def session_for(cluster: FakeWebHdfs) -> requests.Session:
    session = requests.Session()
    session.mount("http://", cluster)
    session.mount("https://", cluster)
    return session


@pytest.fixture
def web_token(cluster: FakeWebHdfs) -> Token:
    token = make_token()
    cluster.accept(token)
    return token


@pytest.fixture
def tokens_path(tmp_path: Path, web_token: Token) -> Path:
    rpc = web_token.with_service("ha-hdfs:ns1", kind=HDFS_DELEGATION_KIND)
    other = make_token(service="10.0.0.9:8020", kind=HDFS_DELEGATION_KIND)
    return token_file(tmp_path / "tokens", rpc, web_token, other)


def client_for(cluster: FakeWebHdfs, path: Path, fs: str = "hdfs://ns1", **kwargs: Any) -> TokenFileClient:
    return hdfs_client(fs, token_file=path, conf=CONF, session=session_for(cluster), **kwargs)


# -- token selection --------------------------------------------------------------------------------
def test_the_webhdfs_token_of_the_nameservice_is_used(cluster: FakeWebHdfs, tokens_path: Path,
                                                      web_token: Token) -> None:
    client = client_for(cluster, tokens_path)
    assert client.token() == web_token
    assert client.status("/user/alice")["type"] == "DIRECTORY"
    assert cluster.log[-1] == (NN2, "GETFILESTATUS", web_token.fingerprint)


def test_a_spark_written_file_with_only_the_rpc_token_works(cluster: FakeWebHdfs, tmp_path: Path) -> None:
    rpc = make_token(service="ha-hdfs:ns1", kind=HDFS_DELEGATION_KIND)
    cluster.accept(rpc)
    client = client_for(cluster, token_file(tmp_path / "spark.tokens", rpc))
    assert client.list("/user") == ["alice", "bob"]


def test_no_token_for_the_filesystem_names_the_services_present(cluster: FakeWebHdfs, tmp_path: Path) -> None:
    other = make_token(service="ha-webhdfs:ns2")
    path = token_file(tmp_path / "t", other)
    with pytest.raises(MissingTokenError) as err:
        client_for(cluster, path)
    text = str(err.value)
    assert "holds no delegation token for hdfs://ns1" in text and "ha-webhdfs:ns2 (WEBHDFS delegation)" in text
    assert "ha-webhdfs:ns1" in text and "\n" not in text
    assert not any(form in text for form in secret_forms(other))


def test_no_token_file_setting_is_a_config_error(cluster: FakeWebHdfs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HADOOP_TOKEN_FILE_LOCATION", raising=False)
    with pytest.raises(ConfigError, match="HADOOP_TOKEN_FILE_LOCATION is not set"):
        hdfs_client("hdfs://ns1", conf=CONF, session=session_for(cluster))


def test_the_token_file_comes_from_the_environment(cluster: FakeWebHdfs, tokens_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(tokens_path))
    client = hdfs_client(conf=CONF, session=session_for(cluster))  # fs.defaultFS
    assert client.tokens.path == tokens_path and client.target.uri == "hdfs://ns1"


# -- HA ---------------------------------------------------------------------------------------------
def test_the_standby_is_skipped_and_the_active_asked_first_afterwards(cluster: FakeWebHdfs, tokens_path: Path) -> None:
    client = client_for(cluster, tokens_path)
    client.status("/user")
    client.status("/user/alice")
    assert [host for host, *_ in cluster.log] == [NN1, NN2, NN2]
    cluster.state = {NN1: "active", NN2: "standby"}  # a failover
    client.status("/user")
    assert [host for host, *_ in cluster.log][3:] == [NN2, NN1]


def test_an_unreachable_namenode_is_skipped_and_its_url_never_shown(cluster: FakeWebHdfs, tokens_path: Path,
                                                                    web_token: Token) -> None:
    cluster.state = {NN1: "down", NN2: "active"}
    client = client_for(cluster, tokens_path)
    assert client.status("/user")["type"] == "DIRECTORY"
    cluster.state = {NN1: "down", NN2: "standby"}
    with pytest.raises(NameNodeUnavailable) as err:
        client.status("/user")
    text = str(err.value)
    assert "no NameNode of hdfs://ns1 answered GETFILESTATUS" in text
    assert f"{NN1}: cannot connect" in text and f"{NN2}: standby" in text
    assert not any(form in text for form in secret_forms(web_token))


def test_an_unreachable_datanode_is_named_without_the_url(cluster: FakeWebHdfs, tokens_path: Path,
                                                          web_token: Token) -> None:
    cluster.files["/user/alice/f"] = b"data"
    cluster.datanode_down = True
    client = client_for(cluster, tokens_path)
    with pytest.raises(HdfsError) as err, client.read("/user/alice/f") as reader:
        reader.read()
    assert not isinstance(err.value, NameNodeUnavailable)
    assert f"cannot connect to DataNode {DN} for OPEN" in str(err.value)
    assert not any(form in str(err.value) for form in secret_forms(web_token))


def test_https_uses_the_ca_bundle_and_an_untrusted_certificate_is_named(cluster: FakeWebHdfs, tmp_path: Path,
                                                                       web_token: Token) -> None:
    token = web_token.with_service("ha-swebhdfs:ns1", kind="SWEBHDFS delegation")
    path = token_file(tmp_path / "t", token)
    conf = HadoopConf({**CONF, "dfs.http.policy": "HTTPS_ONLY", "dfs.namenode.https-address.ns1.nn1": NN1,
                       "dfs.namenode.https-address.ns1.nn2": NN2})
    ca = tmp_path / "ca.pem"
    client = hdfs_client("hdfs://ns1", token_file=path, conf=conf, session=session_for(cluster), ca_bundle=str(ca))
    assert client.urls == [f"https://{NN1}", f"https://{NN2}"]
    client.status("/user")
    assert set(cluster.verify) == {str(ca)}
    cluster.tls_untrusted = True
    with pytest.raises(HdfsError) as err:
        client.status("/user")
    assert not isinstance(err.value, NameNodeUnavailable) and "certificate is not trusted" in str(err.value)
    assert "ca_bundle=" in str(err.value)


# -- the token file changes -------------------------------------------------------------------------
def test_an_atomic_replacement_is_used_at_the_next_call(cluster: FakeWebHdfs, tokens_path: Path,
                                                        web_token: Token) -> None:
    client = client_for(cluster, tokens_path)
    client.status("/user")
    new = make_token()
    cluster.accept(new)
    cluster.cancel(web_token)
    token_file(tokens_path, new)  # temp file and rename, as the renew service's writers do
    client.status("/user")
    assert cluster.log[-1][2] == new.fingerprint
    assert client.tokens.generation == 2


def test_a_kubelet_style_symlink_swap_is_followed(cluster: FakeWebHdfs, tmp_path: Path, web_token: Token) -> None:
    mount = tmp_path / "mount"
    (mount / "..2026_a").mkdir(parents=True)
    token_file(mount / "..2026_a" / "tokens", web_token)
    os.symlink("..2026_a", mount / "..data")
    os.symlink("..data/tokens", mount / "tokens")
    client = client_for(cluster, mount / "tokens")
    client.status("/user")

    new = make_token()
    cluster.accept(new)
    cluster.cancel(web_token)
    (mount / "..2026_b").mkdir()
    token_file(mount / "..2026_b" / "tokens", new)
    os.symlink("..2026_b", mount / "..data_tmp")
    os.replace(mount / "..data_tmp", mount / "..data")  # kubelet's atomic swap
    client.status("/user")
    assert cluster.log[-1][2] == new.fingerprint


def test_a_change_the_stat_does_not_show_is_found_when_the_namenode_refuses(cluster: FakeWebHdfs, tmp_path: Path,
                                                                            web_token: Token) -> None:
    path = token_file(tmp_path / "t", web_token)
    client = client_for(cluster, path)
    client.status("/user")
    before = os.stat(path)
    new = make_token()
    new = Token(identifier=new.identifier, password=new.password, kind=new.kind, service=new.service)
    cluster.accept(new)
    cluster.cancel(web_token)
    data = Credentials({new.service: new}).to_bytes()
    assert len(data) == before.st_size
    with open(path, "r+b") as out:  # same inode, same size, mtime put back
        out.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    client.status("/user")
    assert cluster.log[-2][2] == web_token.fingerprint and cluster.log[-1][2] == new.fingerprint


def test_the_file_is_compared_by_content_after_the_recheck_interval(tmp_path: Path) -> None:
    now = [0.0]
    first, second = make_token(), make_token()
    path = token_file(tmp_path / "t", first)
    tokens = TokenFile(path, recheck=10, clock=lambda: now[0])
    assert list(tokens.credentials()) == [first]
    before = os.stat(path)
    with open(path, "r+b") as out:
        out.write(Credentials({second.service: second}).to_bytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert list(tokens.credentials()) == [first]  # stat unchanged, within the interval
    now[0] = 11
    assert list(tokens.credentials()) == [second]
    assert tokens.generation == 2


def test_a_file_missing_for_a_moment_keeps_the_last_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = make_token()
    path = token_file(tmp_path / "t", token)
    tokens = TokenFile(path)
    tokens.credentials()
    path.unlink()
    assert list(tokens.credentials()) == [token]
    path.write_bytes(b"HDTS\x00 torn")
    assert list(tokens.credentials()) == [token]
    assert sum("cannot be read now" in r.getMessage() for r in caplog.records) == 1


def test_an_unreadable_file_at_the_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SparkSecretsError, match="cannot read token file .*missing"):
        TokenFile(tmp_path / "missing").credentials()
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(SparkSecretsError, match="token file .*junk: not a Hadoop token file"):
        TokenFile(tmp_path / "junk").credentials()


# -- refusals ---------------------------------------------------------------------------------------
def test_a_cancelled_token_is_a_one_line_error(cluster: FakeWebHdfs, tokens_path: Path, web_token: Token) -> None:
    client = client_for(cluster, tokens_path)
    cluster.cancel(web_token)
    with pytest.raises(InvalidTokenError) as err:
        client.list("/user/alice")
    text = str(err.value)
    assert not isinstance(err.value, TokenExpiredError)
    assert "does not accept the delegation token" in text and str(tokens_path) in text and "owner alice" in text
    assert "\n" not in text and not any(form in text for form in secret_forms(web_token))


def test_a_token_past_its_max_date_names_the_date_and_the_renewer(cluster: FakeWebHdfs, tmp_path: Path) -> None:
    token = make_token(max_in_s=60)
    cluster.accept(token)
    path = token_file(tmp_path / "t", token)
    client = client_for(cluster, path)
    late = make_token(max_in_s=-5)
    token_file(path, late)
    with pytest.raises(TokenExpiredError) as err:
        client.status("/user")
    text = str(err.value)
    max_date = time.strftime("%Y-%m-%d %H:%M", time.gmtime(late.decode_identifier().max_date / 1000))
    assert f"its max date {max_date}" in text and "renewer spark-renewer" in text and "renew service" in text
    assert "\n" not in text


def test_a_token_expired_before_its_max_date_blames_the_renewal(cluster: FakeWebHdfs, tokens_path: Path,
                                                               web_token: Token) -> None:
    client = client_for(cluster, tokens_path)
    cluster.expired.add(web_token.identifier)
    with pytest.raises(TokenExpiredError) as err:
        client.status("/user")
    assert "before its max date" in str(err.value) and "spark-renewer (the renew service)" in str(err.value)


def test_permission_denied_names_the_owner(cluster: FakeWebHdfs, tokens_path: Path) -> None:
    client = client_for(cluster, tokens_path)
    with pytest.raises(HdfsPermissionError) as err:
        client.write("/user/bob/x", data=b"no")
    text = str(err.value)
    assert "alice may not WRITE /user/bob, owned by bob" in text and "ask bob" in text and "\n" not in text


def test_a_missing_path_is_left_to_hdfscli(cluster: FakeWebHdfs, tokens_path: Path) -> None:
    client = client_for(cluster, tokens_path)
    assert client.status("/nope", strict=False) is None
    with pytest.raises(Exception, match="does not exist"):
        client.status("/nope")


def test_words_in_a_path_are_not_taken_for_a_token_or_standby_refusal(cluster: FakeWebHdfs, tokens_path: Path) -> None:
    """Hadoop answers most IOExceptions with 403: only the exception's name says what it is about."""
    client = client_for(cluster, tokens_path)
    assert client.status("/data/standby/expired/token", strict=False) is None
    original = cluster._namenode

    def exists(request: requests.PreparedRequest, op: str, path: str, query: dict[str, str], token: Token) -> Any:
        if op == "MKDIRS":
            return cluster._remote(request, 403, "FileAlreadyExistsException", f"{path} is an expired standby token")
        return original(request, op, path, query, token)

    cluster._namenode = exists  # type: ignore[method-assign]
    with pytest.raises(Exception) as err:
        client.makedirs("/user/alice/x")
    assert not isinstance(err.value, SparkSecretsError) and "expired standby" in str(err.value)


def test_no_secret_in_logs_reprs_or_errors(cluster: FakeWebHdfs, tokens_path: Path, web_token: Token,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    client = client_for(cluster, tokens_path)
    client.write("/user/alice/f", data=b"abc", overwrite=True)
    with client.read("/user/alice/f") as reader:
        assert reader.read() == b"abc"
    texts += [repr(client), repr(client.tokens), repr(arrow_filesystem(client=client))]
    cluster.cancel(web_token)
    for attempt in (lambda: client.status("/user"), lambda: client.write("/user/bob/x", data=b"")):
        try:
            attempt()
        except SparkSecretsError as exc:
            texts += [str(exc), repr(exc)]
    assert len(texts) == 7
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert not any(form in blob for form in secret_forms(web_token))


# -- the pyarrow filesystem -------------------------------------------------------------------------
@pytest.fixture
def arrow_fs(cluster: FakeWebHdfs, tokens_path: Path) -> pafs.FileSystem:
    return arrow_filesystem(client=client_for(cluster, tokens_path))


def _table(n: int = 1000, start: int = 0) -> pa.Table:
    return pa.table({"id": list(range(start, start + n)), "name": [f"row {i}" for i in range(start, start + n)]})


def test_parquet_round_trip_through_hdfs_uris(arrow_fs: pafs.FileSystem, cluster: FakeWebHdfs) -> None:
    pq.write_table(_table(), "hdfs://ns1/user/alice/t.parquet", filesystem=arrow_fs)
    assert cluster.files["/user/alice/t.parquet"][:4] == b"PAR1"
    assert pq.read_table("hdfs://ns1/user/alice/t.parquet", filesystem=arrow_fs).equals(_table())
    assert pq.read_table("/user/alice/t.parquet", filesystem=arrow_fs, columns=["name"]).num_rows == 1000


def test_dataset_write_and_read(arrow_fs: pafs.FileSystem) -> None:
    ds.write_dataset(_table(3000), "hdfs://ns1/user/alice/ds", filesystem=arrow_fs, format="parquet",
                     max_rows_per_file=1000, max_rows_per_group=1000)
    dataset = ds.dataset("hdfs://ns1/user/alice/ds", filesystem=arrow_fs, format="parquet")
    assert len(dataset.files) == 3
    assert dataset.to_table().sort_by("id").equals(_table(3000))
    assert dataset.to_table(filter=ds.field("id") >= 2990).num_rows == 10


def test_pandas_reads_and_writes(arrow_fs: pafs.FileSystem) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    frame.to_parquet("hdfs://ns1/user/alice/p.parquet", filesystem=arrow_fs)
    back = pd.read_parquet("hdfs://ns1/user/alice/p.parquet", filesystem=arrow_fs)
    assert back.equals(frame)


def test_file_info_and_directory_operations(arrow_fs: pafs.FileSystem, cluster: FakeWebHdfs) -> None:
    missing, home = arrow_fs.get_file_info(["hdfs://ns1/user/alice/none", "/user/alice"])
    assert missing.type == pafs.FileType.NotFound and home.type == pafs.FileType.Directory
    arrow_fs.create_dir("/user/alice/a/b", recursive=True)
    with arrow_fs.open_output_stream("/user/alice/a/b/f.txt") as out:
        out.write(b"hello ")
        out.write(b"world")
    with arrow_fs.open_append_stream("/user/alice/a/b/f.txt") as out:
        out.write(b"!")
    info = arrow_fs.get_file_info("/user/alice/a/b/f.txt")
    assert (info.type, info.size) == (pafs.FileType.File, 12)
    listed = arrow_fs.get_file_info(pafs.FileSelector("/user/alice", recursive=True))
    assert {i.path for i in listed} == {"/user/alice/a", "/user/alice/a/b", "/user/alice/a/b/f.txt"}
    with arrow_fs.open_input_file("/user/alice/a/b/f.txt") as f:
        f.seek(6)
        assert f.read(5) == b"world" and f.size() == 12
        assert f.read_at(5, 0) == b"hello"
    arrow_fs.copy_file("/user/alice/a/b/f.txt", "/user/alice/copy.txt")
    arrow_fs.move("/user/alice/copy.txt", "/user/alice/moved.txt")
    assert cluster.files["/user/alice/moved.txt"] == b"hello world!"
    arrow_fs.delete_file("/user/alice/moved.txt")
    arrow_fs.delete_dir_contents("/user/alice/a")
    assert arrow_fs.get_file_info(pafs.FileSelector("/user/alice/a")) == []
    arrow_fs.delete_dir("/user/alice/a")
    assert arrow_fs.get_file_info("/user/alice/a").type == pafs.FileType.NotFound
    with pytest.raises(FileNotFoundError):
        arrow_fs.open_input_file("/user/alice/a/nothing")
    with pytest.raises(FileNotFoundError):
        arrow_fs.get_file_info(pafs.FileSelector("/user/alice/nothing"))
    assert arrow_fs.get_file_info(pafs.FileSelector("/user/alice/nothing", allow_not_found=True)) == []


def test_paths_of_another_filesystem_are_refused(arrow_fs: pafs.FileSystem) -> None:
    assert arrow_fs.normalize_path("hdfs://ns1/user/alice") == "/user/alice"
    assert arrow_fs.normalize_path("/user/alice") == "/user/alice"
    with pytest.raises(ValueError, match="not on hdfs://ns1"):
        arrow_fs.normalize_path("hdfs://other/user/alice")


def test_runtime_errors_come_through_pyarrow_unchanged(arrow_fs: pafs.FileSystem, cluster: FakeWebHdfs,
                                                       web_token: Token) -> None:
    with pytest.raises(HdfsPermissionError, match="owned by bob"):
        pq.write_table(_table(), "hdfs://ns1/user/bob/t.parquet", filesystem=arrow_fs)
    cluster.cancel(web_token)
    with pytest.raises(InvalidTokenError):
        ds.dataset("hdfs://ns1/user/alice", filesystem=arrow_fs)


def test_the_filesystem_pickles_by_its_arguments(tmp_path: Path, tokens_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "hdfs-site.xml").write_text("<configuration>" + "".join(
        f"<property><name>{k}</name><value>{v}</value></property>" for k, v in CONF.items()) + "</configuration>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf_dir))
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(tokens_path))
    fs = arrow_filesystem("hdfs://ns1")
    elsewhere = tmp_path / "executor.tokens"
    elsewhere.write_bytes(tokens_path.read_bytes())
    monkeypatch.setenv("HADOOP_TOKEN_FILE_LOCATION", str(elsewhere))
    again = pickle.loads(pickle.dumps(fs))
    assert again.handler.client.tokens.path == elsewhere  # the unpickling host's own token file
    assert again.handler.uri == "hdfs://ns1" and fs.equals(fs)
