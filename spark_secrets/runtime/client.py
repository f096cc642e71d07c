"""An HdfsCLI client (``hdfs.Client``) that authenticates every WebHDFS call with the job's delegation token.

:class:`TokenFileClient` is HdfsCLI's own client (``read``, ``write``, ``list``, ``status``, ``walk``,
``upload``, ... all work as documented there) with its one transport method, ``_request``, replaced:

* the ``delegation=`` parameter is the *current* token for the filesystem from the token file
  (:class:`~spark_secrets.runtime.tokenfile.TokenFile`), looked up at each NameNode call, so a token
  swapped in by the renew service or kubelet is used from the next call on, and a call the NameNode
  refuses for its token is retried once if the file holds a different token by then (HdfsCLI's
  ``TokenClient`` fixes the token in its session instead);
* the NameNodes of an HA nameservice are tried in the order of ``HADOOP_CONF_DIR``, the one that
  answered last first; a standby (``StandbyException``, ``RetriableException``) or an unreachable one
  is skipped, as Hadoop's failover proxy does;
* redirects to DataNodes are followed here, so that a DataNode that cannot be reached is not taken
  for a dead NameNode; the NameNode puts its own ``delegation=`` into the DataNode's address;
* refusals become this project's one-line errors: an unknown or cancelled token, an expired one
  (naming its max date and its renewer, the renew service), permission denied (naming the path's
  owner), no NameNode answering. No message, log line or ``repr`` carries a URL, since request URLs
  hold the token; HdfsCLI's own errors (a missing path, say) are left as they are.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from hdfs import Client

from spark_secrets.errors import (
    ConfigError,
    HdfsAuthenticationError,
    HdfsError,
    HdfsPermissionError,
    InvalidTokenError,
    NameNodeUnavailable,
    TokenExpiredError,
)
from spark_secrets.hadoop.conf import FileSystemTarget, HadoopConf, resolve_filesystem
from spark_secrets.runtime._extra import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT  # there: the package names it without HdfsCLI
from spark_secrets.runtime.tokenfile import TokenFile, TokenWanted
from spark_secrets.hadoop.token import Token, utc_text
from spark_secrets.tokens.namenodes import Failover
from spark_secrets.tokens.webhdfs import redact, remote_error

log = logging.getLogger(__name__)


class _RedactTokenParams(logging.Filter):
    """Keeps urllib3's debug lines (the URLs of requests sends) from printing ``delegation=`` values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and any(p in str(a) for a in record.args for p in ("token=", "delegation=")):
            record.args = tuple(redact(str(a)) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactTokenParams())

_RETRY_ELSEWHERE = ("StandbyException", "RetriableException")
#: The remote exceptions that are about who the caller is or what it may do (the rest goes to HdfsCLI).
_SECURITY = ("SecurityException", "InvalidToken", "AccessControlException", "AuthorizationException")
_DENIED = re.compile(r'user=(?P<user>[^,\s]+), access=(?P<access>[A-Z_]+), inode="(?P<path>[^"]*)":'
                     r'(?P<owner>[^:]*):(?P<group>[^:]*):(?P<mode>[-a-zA-Z+]+)')


def _remote_exception(resp: requests.Response) -> tuple[str, str]:
    try:
        remote = resp.json()["RemoteException"]
        return str(remote.get("exception", "")), str(remote.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", ""


class TokenFileClient(Client):
    """HdfsCLI's WebHDFS client for one filesystem, with the delegation token from a token file."""

    def __init__(self, target: FileSystemTarget, tokens: TokenFile, *, verify: bool | str = True,
                 timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None) -> None:
        self.target = target
        self.tokens = tokens
        self.wanted = TokenWanted.of(target)
        self._bases = tuple(nn.http_url for nn in target.namenodes)
        self._failover = Failover()
        # Given with each request: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE in requests.
        self._verify = verify
        session = session if session is not None else requests.Session()
        super().__init__(";".join(self._bases), timeout=timeout, session=session)
        self.token()  # fail now, not at the first read, when the file has no (live) token for this filesystem

    def __repr__(self) -> str:
        return f"TokenFileClient({self.target.uri!r}, token_file={str(self.tokens.path)!r})"

    # -- the token -------------------------------------------------------------------------------
    def token(self) -> Token:
        """The token calls use now; :class:`TokenExpiredError` if even a fresh read of the file has
        only a token past its max date."""
        token = self.tokens.token_for(self.wanted)
        if _past_max_date(token):
            token = self.tokens.token_for(self.wanted, force=True)
            if _past_max_date(token):
                raise self._expired(token)
        return token

    def _describe(self, token: Token) -> str:
        ident = token.decode_identifier()
        who = f"owner {ident.owner}, renewer {ident.renewer or '(none)'}, " if ident else ""
        return f"{who}id {token.fingerprint}"

    def _expired(self, token: Token) -> TokenExpiredError:
        ident = token.decode_identifier()
        where = f"the delegation token for {self.target.uri} in {self.tokens.path}"
        if ident is None:
            return TokenExpiredError(f"{where} has expired", "obtain a new token")
        max_date, renewer = utc_text(ident.max_date), ident.renewer or "(no renewer)"
        if _past_max_date(token):
            return TokenExpiredError(
                f"{where} has expired: its max date {max_date} has passed (owner {ident.owner}; no renewal "
                f"by its renewer {renewer} can extend it)",
                f"a new token is needed: the renew service ({renewer}) re-issues it into the job's token "
                f"Secret if it may obtain tokens for {ident.owner}, otherwise resubmit the job")
        return TokenExpiredError(
            f"{where} has expired before its max date {max_date}: its renewer {renewer} (the renew service) "
            f"did not renew it in time (owner {ident.owner})",
            f"check that the renew service ({renewer}) is running and renews this job's token Secret")

    # -- transport (HdfsCLI calls this for every request) ------------------------------------------
    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        for base in self._bases:
            if url.startswith(base + "/"):
                return self._namenode_call(method, url[len(base):], kwargs)
        return self._datanode_call(method, url, kwargs)

    def _namenode_call(self, method: str, rest: str, kwargs: dict[str, Any]) -> requests.Response:
        follow = kwargs.pop("allow_redirects", True)
        params = dict(kwargs.pop("params", None) or {})
        op = str(params.get("op", "?"))
        token = self.token()
        retried = False
        while True:
            resp = self._on_active(method, rest, op, {**kwargs, "params": {**params, "delegation": token.encode_url()}})
            if resp.ok:
                break
            error = self._refusal(resp, op, f"NameNode {urlsplit(self._failover.last(self._bases)).netloc}", token)
            if isinstance(error, InvalidTokenError) and not retried:
                fresh = self.tokens.token_for(self.wanted, force=True)
                if fresh != token:  # the file changed since: try the new token once
                    log.info("NameNode refused the token for %s; retrying with the token file's new one", op)
                    resp.close()
                    token, retried = self.token(), True
                    continue
            if error is not None:
                resp.close()
                raise error
            return resp  # a missing path and the like: HdfsCLI raises (or returns, with strict=False)
        if follow and resp.is_redirect and "location" in resp.headers:
            location = resp.headers["location"]
            resp.close()
            return self._datanode_call(method, location, kwargs)
        return resp

    @property
    def active(self) -> int:
        """Which of the NameNodes (``urls``) answered last, so is asked first (0 before any call)."""
        return self._bases.index(self._failover.last(self._bases))

    def _on_active(self, method: str, rest: str, op: str, kwargs: dict[str, Any]) -> requests.Response:
        """One request to the first NameNode that answers as active, starting with the last one that did."""
        def attempt(base: str) -> requests.Response:
            try:
                resp = self._send(method, base + rest, allow_redirects=False, **kwargs)
            except requests.exceptions.SSLError:
                raise self._untrusted(f"NameNode {urlsplit(base).netloc}", op) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise NameNodeUnavailable("no answer in time" if isinstance(exc, requests.exceptions.Timeout)
                                          else "cannot connect") from None
            if not resp.ok:
                exception, message = _remote_exception(resp)
                if exception in _RETRY_ELSEWHERE or (not exception and "standby" in message.lower()):
                    resp.close()
                    raise NameNodeUnavailable("standby" if "standby" in (exception + message).lower() else exception)
            return resp

        return self._failover.call(self._bases, self.target.uri, op, attempt)

    def _datanode_call(self, method: str, url: str, kwargs: dict[str, Any]) -> requests.Response:
        """A DataNode's address from a NameNode's redirect; it carries the NameNode's ``delegation=``."""
        kwargs.pop("allow_redirects", None)
        kwargs.pop("params", None)
        parts = urlsplit(url)
        op = (parse_qs(parts.query).get("op") or ["?"])[0]
        where = f"DataNode {parts.netloc}"
        try:
            resp = self._send(method, url, allow_redirects=False, **kwargs)
        except requests.exceptions.SSLError:
            raise self._untrusted(where, op) from None
        except requests.exceptions.Timeout:
            raise HdfsError(f"{where} did not answer {op} on {self.target.uri} in time") from None
        except requests.exceptions.ConnectionError:
            raise HdfsError(f"cannot connect to {where} for {op} on {self.target.uri}",
                            "check that the DataNodes' addresses are reachable from here") from None
        if not resp.ok:
            error = self._refusal(resp, op, where, None)
            if error is not None:
                resp.close()
                raise error
        return resp

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {"content-type": "application/octet-stream", **(kwargs.pop("headers", None) or {})}
        return self._session.request(method=method, url=url, timeout=self._timeout, headers=headers,
                                     verify=self._verify, **kwargs)

    def _untrusted(self, where: str, op: str) -> HdfsError:
        return HdfsError(f"TLS to {where} failed during {op} on {self.target.uri}: its certificate is not trusted",
                         "give the CA certificate with ca_bundle= (or REQUESTS_CA_BUNDLE)")

    # -- errors ----------------------------------------------------------------------------------
    def _refusal(self, resp: requests.Response, op: str, where: str, token: Token | None) -> HdfsError | None:
        """This project's error for a refusal about the token or permissions; ``None`` for the rest
        (a missing path, an existing file, ...: Hadoop answers most IOExceptions with 403 too)."""
        exception, message = _remote_exception(resp)
        if exception not in _SECURITY and not (not exception and resp.status_code in (401, 403)):
            return None
        error = remote_error(resp, op, where)
        message = " ".join(redact(message).split())[:300]
        token = token or self.tokens.token_for(self.wanted)
        if isinstance(error, TokenExpiredError):
            return self._expired(token)
        if isinstance(error, InvalidTokenError):
            return InvalidTokenError(
                f"{where} refused {op} on {self.target.uri}: it does not accept the delegation token in "
                f"{self.tokens.path} ({self._describe(token)}): cancelled, or not issued by this cluster",
                "a new token is needed: the renew service re-issues it into the job's token Secret, or resubmit the job")
        if isinstance(error, HdfsAuthenticationError):
            return HdfsAuthenticationError(
                f"{where} did not accept the delegation token for {op} on {self.target.uri} (HTTP 401)",
                "check that the token file holds a token issued by this cluster")
        if isinstance(error, HdfsPermissionError) or exception == "AccessControlException":
            return self._denied(message, op, where)
        return None

    def _denied(self, message: str, op: str, where: str) -> HdfsPermissionError:
        found = _DENIED.search(message)
        if found is None:
            return HdfsPermissionError(f"{where} refused {op} on {self.target.uri}: permission denied ({message})")
        f = found.groupdict()
        return HdfsPermissionError(
            f"permission denied on {self.target.uri}: {f['user']} may not {f['access']} {f['path']}, "
            f"owned by {f['owner']} (group {f['group']}, {f['mode']})",
            f"ask {f['owner']} or an HDFS administrator for access, or use a path {f['user']} may use")


def _past_max_date(token: Token) -> bool:
    ident = token.decode_identifier()
    return ident is not None and ident.max_date <= time.time() * 1000


def _conf(conf: HadoopConf | str | Path | None) -> HadoopConf:
    return conf if isinstance(conf, HadoopConf) else HadoopConf.load(conf)


def hdfs_client(fs: str | None = None, *, token_file: str | Path | None = None, ca_bundle: str | bool | None = None,
                conf: HadoopConf | str | Path | None = None, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                session: requests.Session | None = None, tokens: TokenFile | None = None) -> TokenFileClient:
    """An HdfsCLI client for ``fs`` (``hdfs://<nameservice>``, ``hdfs://host:port``, ``webhdfs://``,
    ``swebhdfs://``; default ``fs.defaultFS``) that uses only the job's delegation token.

    ``token_file`` defaults to ``$HADOOP_TOKEN_FILE_LOCATION``; ``conf`` (a :class:`HadoopConf` or a
    directory) to ``$HADOOP_CONF_DIR``; ``ca_bundle`` is a PEM file to trust for HTTPS NameNodes and
    DataNodes (default: the system's, ``REQUESTS_CA_BUNDLE`` honoured).
    """
    hadoop = _conf(conf)
    uri = fs or hadoop.default_fs
    if not uri:
        raise ConfigError(f"no filesystem given and no fs.defaultFS in {hadoop.source}",
                          "pass fs='hdfs://<nameservice>' or set HADOOP_CONF_DIR")
    target = resolve_filesystem(uri, hadoop)
    return TokenFileClient(target, tokens if tokens is not None else TokenFile(token_file),
                           verify=True if ca_bundle is None else ca_bundle, timeout=timeout, session=session)
