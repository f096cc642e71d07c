"""Hadoop client configuration (``core-site.xml``, ``hdfs-site.xml``) and what a filesystem URI means.

A filesystem to obtain tokens for may be given as Hadoop clients name it (``hdfs://nameservice``,
``hdfs://host:port``, ``webhdfs://``, ``swebhdfs://``) or as a NameNode's WebHDFS address
(``http(s)://host:port``). :func:`resolve_filesystem` turns it into the NameNode HTTP addresses to
ask, in order, and the token service names that Hadoop's own clients select tokens by.
"""

import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from spark_secrets.errors import ConfigError, HdfsError

DEFAULT_RPC_PORT = 8020
DEFAULT_HTTP_PORT = 9870
DEFAULT_HTTPS_PORT = 9871
#: hive-site.xml too: Spark's Hive client reads it there, and with it the metastore's address and principal.
_SITE_FILES = ("core-site.xml", "hdfs-site.xml", "hive-site.xml")


#: The URI schemes a filesystem to obtain tokens for may have (the steps, the CLI and the renew service).
FILESYSTEM_SCHEMES = ("hdfs", "webhdfs", "swebhdfs", "http", "https")


class HadoopConf(Mapping[str, str]):
    """The properties of a Hadoop client configuration directory (later files override earlier)."""

    def __init__(self, props: Mapping[str, str] | None = None, source: str = "(given)") -> None:
        self._props = dict(props or {})
        self.source = source

    @classmethod
    def load(cls, conf_dir: str | Path | None = None) -> "HadoopConf":
        """Read ``conf_dir``, else ``$HADOOP_CONF_DIR``, else ``$HADOOP_HOME/etc/hadoop``; empty if none."""
        if conf_dir is None:
            conf_dir = os.environ.get("HADOOP_CONF_DIR") or (
                f"{os.environ['HADOOP_HOME']}/etc/hadoop" if os.environ.get("HADOOP_HOME") else None)
        if conf_dir is None:
            return cls({}, "(no HADOOP_CONF_DIR)")
        props: dict[str, str] = {}
        for name in _SITE_FILES:
            path = Path(conf_dir) / name
            if path.is_file():
                props.update(_read_site(path))
        return cls(props, str(conf_dir))

    def __getitem__(self, key: str) -> str:
        return self._props[key]

    def __iter__(self):
        return iter(self._props)

    def __len__(self) -> int:
        return len(self._props)

    def __repr__(self) -> str:
        return f"HadoopConf({self.source!r}, {len(self)} properties)"

    def values_of(self, key: str) -> list[str]:
        """A comma-separated property as a list (Hadoop's ``getTrimmedStrings``)."""
        return [v.strip() for v in self.get(key, "").split(",") if v.strip()]

    @property
    def default_fs(self) -> str | None:
        fs = self.get("fs.defaultFS") or self.get("fs.default.name")
        return fs if fs and not fs.startswith("file:") else None

    @property
    def https_only(self) -> bool:
        return self.get("dfs.http.policy", "HTTP_ONLY").upper() == "HTTPS_ONLY"


def _read_site(path: Path) -> dict[str, str]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"cannot read Hadoop configuration {path}: {exc}", "fix or remove the file") from None
    props: dict[str, str] = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name:
            props[name.strip()] = (value or "").strip()
    return props


class NameNodeAddress(NamedTuple):
    """One NameNode: its WebHDFS base URL and, when known, its RPC ``host:port``."""

    http_url: str
    rpc_address: str | None = None


class FileSystemTarget(NamedTuple):
    """A filesystem to obtain a token for: NameNodes to try in order, and how clients name its tokens."""

    uri: str
    namenodes: tuple[NameNodeAddress, ...]
    nameservice: str | None = None
    rpc_service: str | None = None

    @property
    def https(self) -> bool:
        return self.namenodes[0].http_url.startswith("https:")

    @property
    def web_scheme(self) -> str:
        return "swebhdfs" if self.https else "webhdfs"

    def hdfs_service(self, minted: str) -> str:
        """Service for the ``hdfs://`` (RPC) token; ``minted`` is what the NameNode set (its RPC ip:port)."""
        if self.nameservice:
            return f"ha-hdfs:{self.nameservice}"
        return self.rpc_service or minted

    def web_service(self, used: NameNodeAddress) -> str:
        """Service for the WebHDFS/SWebHDFS token: ``ha-<scheme>:<ns>`` or the HTTP ``ip:port`` used."""
        if self.nameservice:
            return f"ha-{self.web_scheme}:{self.nameservice}"
        return token_service_address(used.http_url)


def token_service_address(url_or_address: str, default_port: int | None = None) -> str:
    """``SecurityUtil.buildTokenService``: ``ip:port`` of a URL or ``host:port``."""
    text = url_or_address if "://" in url_or_address else f"x://{url_or_address}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise HdfsError(f"not a host address: {url_or_address!r}")
    port = parts.port or default_port or {"https": DEFAULT_HTTPS_PORT, "swebhdfs": DEFAULT_HTTPS_PORT}.get(
        parts.scheme, DEFAULT_HTTP_PORT if parts.scheme in ("http", "webhdfs") else DEFAULT_RPC_PORT)
    try:
        # An ASCII name as bytes: a str would load the IDNA codec (2 ms of a cold fetch).
        host = parts.hostname.encode("ascii") if parts.hostname.isascii() else parts.hostname
        ip = socket.gethostbyname(host)  # type: ignore[arg-type]
    except OSError:
        raise HdfsError(f"cannot resolve host {parts.hostname!r}", "check the address and DNS") from None
    return f"{ip}:{port}"


def _host_port(address: str, host_if_wildcard: str) -> str:
    host, _, port = address.rpartition(":")
    return f"{host_if_wildcard if host in ('', '0.0.0.0') else host}:{port}"


def resolve_filesystem(uri: str, conf: HadoopConf | None = None) -> FileSystemTarget:
    """What to ask, and which service names to give, for one filesystem URI or NameNode URL."""
    conf = conf if conf is not None else HadoopConf.load()
    text = uri.strip().rstrip("/")
    parts = urlsplit(text)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in FILESYSTEM_SCHEMES or not host:
        raise ConfigError(f"{uri!r} is not a filesystem Hadoop can issue tokens for",
                          "use hdfs://<nameservice or host:port>, webhdfs://, swebhdfs:// or http(s)://<namenode>:<port>")
    if scheme in ("http", "https"):
        return FileSystemTarget(text, (NameNodeAddress(f"{scheme}://{parts.netloc}"),))
    https = scheme == "swebhdfs" or (scheme == "hdfs" and conf.https_only)
    if parts.port is None and (host in conf.values_of("dfs.nameservices") or conf.get(f"dfs.ha.namenodes.{host}")):
        return _nameservice(text, host, scheme, https, conf)
    if scheme == "hdfs":
        port = parts.port or DEFAULT_RPC_PORT
        http = _http_address_for_rpc(f"{host}:{port}", https, conf) or \
            f"{host}:{DEFAULT_HTTPS_PORT if https else DEFAULT_HTTP_PORT}"
        return FileSystemTarget(text, (NameNodeAddress(f"{'https' if https else 'http'}://{http}", f"{host}:{port}"),),
                                rpc_service=token_service_address(f"{host}:{port}"))
    port = parts.port or (DEFAULT_HTTPS_PORT if https else DEFAULT_HTTP_PORT)
    return FileSystemTarget(text, (NameNodeAddress(f"{'https' if https else 'http'}://{host}:{port}"),))


def _nameservice(uri: str, ns: str, scheme: str, https: bool, conf: HadoopConf) -> FileSystemTarget:
    ids = conf.values_of(f"dfs.ha.namenodes.{ns}")
    namenodes = []
    for suffix in [f".{ns}.{nn}" for nn in ids] if ids else [f".{ns}"]:
        rpc = conf.get(f"dfs.namenode.rpc-address{suffix}")
        http = conf.get(f"dfs.namenode.{'https' if https else 'http'}-address{suffix}")
        if not http:
            if not rpc:
                raise ConfigError(f"{uri}: no address for NameNode {suffix[1:]} in {conf.source}",
                                  f"set dfs.namenode.http-address{suffix} in hdfs-site.xml")
            http = f"{rpc.rpartition(':')[0]}:{DEFAULT_HTTPS_PORT if https else DEFAULT_HTTP_PORT}"
        rpc_host = rpc.rpartition(":")[0] if rpc else "localhost"
        namenodes.append(NameNodeAddress(f"{'https' if https else 'http'}://{_host_port(http, rpc_host)}", rpc))
    if not ids:  # a federated, non-HA nameservice: one NameNode, addressed by its RPC ip:port
        rpc = namenodes[0].rpc_address
        return FileSystemTarget(uri, tuple(namenodes), rpc_service=token_service_address(rpc) if rpc else None)
    return FileSystemTarget(uri, tuple(namenodes), nameservice=ns)


def _http_address_for_rpc(rpc: str, https: bool, conf: HadoopConf) -> str | None:
    """The configured HTTP(S) address of the NameNode whose RPC address is ``rpc``, if configured."""
    kind = "https" if https else "http"
    wanted = token_service_address(rpc)
    for key, value in conf.items():
        if key.startswith("dfs.namenode.rpc-address") and _same_address(value, wanted):
            http = conf.get(key.replace("rpc-address", f"{kind}-address", 1))
            if http:
                return _host_port(http, rpc.rpartition(":")[0])
    return None


def _same_address(address: str, ip_port: str) -> bool:
    try:
        return token_service_address(address) == ip_port
    except HdfsError:
        return False
