"""Secure HDFS from upstream Apache Hadoop jars: a NameNode and a DataNode as separate JVMs.

Kerberos authentication against the test-bed KDC, block access tokens, SASL data-transfer
protection (no privileged ports), WebHDFS over HTTP with SPNEGO, delegation tokens with short,
configurable lifetimes, and a proxy-user rule for the renew service.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from spark_secrets.errors import TestbedError
from spark_secrets.kerberos import keytab_login
from spark_secrets.spnego import SpnegoAuth
from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import hadoop_lib, java_home

# Java 17 closes internals that Hadoop 3.4 still reaches into.
JAVA17_OPENS = [
    f"--add-opens={m}=ALL-UNNAMED"
    for m in (
        "java.base/java.lang", "java.base/java.lang.reflect", "java.base/java.io", "java.base/java.net",
        "java.base/java.nio", "java.base/java.util", "java.base/java.util.concurrent",
        "java.base/sun.nio.ch", "java.base/sun.nio.cs", "java.base/sun.security.action",
        "java.base/sun.util.calendar", "java.security.jgss/sun.security.krb5",
    )
]

NAMENODE_MAIN = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_MAIN = "org.apache.hadoop.hdfs.server.datanode.DataNode"
FS_SHELL_MAIN = "org.apache.hadoop.fs.FsShell"
DTUTIL_MAIN = "org.apache.hadoop.security.token.DtUtilShell"


@dataclass
class TokenLifetimes:
    """NameNode delegation-token timings in milliseconds (Hadoop's defaults: 1 d, 7 d, 1 d)."""

    renew_interval_ms: int = 86_400_000
    max_lifetime_ms: int = 604_800_000
    key_update_interval_ms: int = 86_400_000


@dataclass
class HdfsPorts:
    rpc: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    dn_data: int = field(default_factory=free_port)
    dn_http: int = field(default_factory=free_port)
    dn_ipc: int = field(default_factory=free_port)


def _site_xml(props: Mapping[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n" for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class SecureHdfs:
    """A one-DataNode secure HDFS cluster whose principals live in ``kdc``."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), heap: str = "384m") -> None:
        self.dir = workdir
        self.kdc = kdc
        self.lifetimes = lifetimes or TokenLifetimes()
        self.proxy_users = list(proxy_users)
        self.heap = heap
        self.ports = HdfsPorts()
        self.conf_dir = workdir / "conf"
        self.keytab = workdir / "hdfs.keytab"
        self.namenode = Daemon("namenode", [], workdir)
        self.datanode = Daemon("datanode", [], workdir)
        self._admin_auth: SpnegoAuth | None = None

    def __repr__(self) -> str:
        return f"SecureHdfs(rpc={self.ports.rpc}, http={self.ports.http})"

    # -- addresses -------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        """``fs.defaultFS``: what ``hdfs://`` clients use."""
        return f"hdfs://localhost:{self.ports.rpc}"

    @property
    def webhdfs_url(self) -> str:
        return f"http://localhost:{self.ports.http}"

    @property
    def rpc_token_service(self) -> str:
        """The service text a real ``hdfs://localhost:<rpc>`` client selects tokens by (IP form)."""
        return f"127.0.0.1:{self.ports.rpc}"

    @property
    def principal(self) -> str:
        return self.kdc.principal("hdfs/localhost")

    # -- configuration ---------------------------------------------------------------------------
    def core_site(self) -> dict[str, str]:
        props = {
            "fs.defaultFS": self.uri,
            "hadoop.security.authentication": "kerberos",
            "hadoop.security.authorization": "true",
            "hadoop.rpc.protection": "authentication",
            # SPNEGO on the whole NameNode/DataNode web UI and WebHDFS, as secure clusters run it.
            "hadoop.http.authentication.type": "kerberos",
            "hadoop.http.authentication.simple.anonymous.allowed": "false",
            "hadoop.http.authentication.kerberos.principal": self.kdc.principal("HTTP/localhost"),
            "hadoop.http.authentication.kerberos.keytab": str(self.keytab),
            # No shell `id` look-ups for test users; every user is in group "users".
            "hadoop.user.group.static.mapping.overrides": "alice=users;bob=users;hdfs=supergroup",
        }
        for user in self.proxy_users:
            props[f"hadoop.proxyuser.{user}.hosts"] = "*"
            props[f"hadoop.proxyuser.{user}.users"] = "*"
        return props

    def hdfs_site(self) -> dict[str, str]:
        p, lt, data = self.ports, self.lifetimes, self.dir / "data"
        http_principal = self.kdc.principal("HTTP/localhost")
        return {
            "dfs.namenode.rpc-address": f"localhost:{p.rpc}",
            "dfs.namenode.http-address": f"localhost:{p.http}",
            "dfs.namenode.name.dir": f"file://{data}/name",
            "dfs.datanode.data.dir": f"file://{data}/data",
            "dfs.datanode.address": f"127.0.0.1:{p.dn_data}",
            "dfs.datanode.http.address": f"127.0.0.1:{p.dn_http}",
            "dfs.datanode.ipc.address": f"127.0.0.1:{p.dn_ipc}",
            "dfs.datanode.hostname": "localhost",
            "dfs.replication": "1",
            "dfs.namenode.safemode.extension": "0",
            "dfs.namenode.kerberos.principal": self.principal,
            "dfs.namenode.keytab.file": str(self.keytab),
            "dfs.namenode.kerberos.internal.spnego.principal": http_principal,
            "dfs.datanode.kerberos.principal": self.principal,
            "dfs.datanode.keytab.file": str(self.keytab),
            "dfs.web.authentication.kerberos.principal": http_principal,
            "dfs.web.authentication.kerberos.keytab": str(self.keytab),
            "dfs.block.access.token.enable": "true",
            "dfs.data.transfer.protection": "authentication",
            "ignore.secure.ports.for.testing": "true",
            "dfs.webhdfs.enabled": "true",
            "dfs.permissions.superusergroup": "supergroup",
            "dfs.namenode.delegation.token.renew-interval": str(lt.renew_interval_ms),
            "dfs.namenode.delegation.token.max-lifetime": str(lt.max_lifetime_ms),
            "dfs.namenode.delegation.key.update-interval": str(lt.key_update_interval_ms),
        }

    def client_conf_dir(self) -> Path:
        """A Hadoop client configuration (``HADOOP_CONF_DIR``) for this cluster, with no keytabs."""
        d = self.dir / "client-conf"
        d.mkdir(parents=True, exist_ok=True)
        site = {k: v for k, v in self.hdfs_site().items() if "keytab" not in k and not k.startswith("dfs.datanode.")
                and "name.dir" not in k}
        core = {k: v for k, v in self.core_site().items() if "keytab" not in k}
        (d / "core-site.xml").write_text(_site_xml(core))
        (d / "hdfs-site.xml").write_text(_site_xml(site))
        (d / "log4j.properties").write_text(_LOG4J)
        return d

    def _write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "core-site.xml").write_text(_site_xml(self.core_site()))
        (self.conf_dir / "hdfs-site.xml").write_text(_site_xml(self.hdfs_site()))
        (self.conf_dir / "log4j.properties").write_text(_LOG4J)
        # HttpServer2 looks its web app up as a classpath directory; WebHDFS itself is
        # registered in code, so the (tarball-only) static UI files are not needed.
        for app in ("hdfs", "datanode", "secondary"):
            (self.conf_dir / "webapps" / app).mkdir(parents=True, exist_ok=True)

    # -- JVMs ------------------------------------------------------------------------------------
    def java_argv(self, main: str, *args: str, conf_dir: Path | None = None, heap: str | None = None,
                  extra_opts: Sequence[str] = (), extra_classpath: Sequence[Path] = ()) -> list[str]:
        classpath = ":".join([str(conf_dir or self.conf_dir), *map(str, extra_classpath), f"{hadoop_lib()}/*"])
        return [str(java_home() / "bin" / "java"), f"-Xmx{heap or self.heap}", *JAVA17_OPENS,
                *self.kdc.java_options(), *extra_opts, "-cp", classpath, main, *args]

    def java_env(self, ccache: Path | None = None, token_file: Path | None = None) -> dict[str, str]:
        """Environment for a Hadoop JVM: a private ticket cache, and a token file only if given."""
        env = self.kdc.env(ccache if ccache is not None else self.dir / "no-such-ccache")
        env.pop("HADOOP_TOKEN_FILE_LOCATION", None)
        env["JAVA_HOME"] = str(java_home())
        if token_file is not None:
            env["HADOOP_TOKEN_FILE_LOCATION"] = str(token_file)
        return env

    def run_client(self, main: str, *args: str, ccache: Path | None = None, token_file: Path | None = None,
                   timeout: float = 120, input: bytes | None = None,
                   extra_classpath: Sequence[Path] = ()) -> subprocess.CompletedProcess[bytes]:
        """Run one of Hadoop's own command-line classes (or a test's) as a client of this cluster."""
        argv = self.java_argv(main, *args, conf_dir=self.client_conf_dir(), heap="256m",
                              extra_classpath=extra_classpath)
        return subprocess.run(argv, env=self.java_env(ccache, token_file), capture_output=True,
                              timeout=timeout, input=input)

    def fs(self, *args: str, ccache: Path | None = None, token_file: Path | None = None,
           input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """``hadoop fs ARGS`` (Hadoop's FsShell) against this cluster."""
        return self.run_client(FS_SHELL_MAIN, *args, ccache=ccache, token_file=token_file, input=input)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("hdfs/localhost", "HTTP/localhost"):
            self.kdc.add_principal(name)
        if not self.keytab.exists():
            self.kdc.export_keytab(self.keytab, "hdfs/localhost", "HTTP/localhost")
        self._write_conf()
        if not (self.dir / "data" / "name" / "current").exists():
            fmt = subprocess.run(self.java_argv(NAMENODE_MAIN, "-format", "-force", "-nonInteractive"),
                                 env=self.java_env(), capture_output=True, timeout=180)
            (self.dir / "format.log").write_bytes(fmt.stdout + fmt.stderr)
            if fmt.returncode != 0:
                raise TestbedError("NameNode format failed", f"see {self.dir / 'format.log'}")
        self.start_namenode()
        self.start_datanode()

    def start_namenode(self) -> None:
        self.namenode = Daemon("namenode", self.java_argv(NAMENODE_MAIN), self.dir, env=self.java_env())
        self.namenode.start()
        self.namenode.wait_until(lambda: port_open(self.ports.rpc) and port_open(self.ports.http), 120, "listening")

    def start_datanode(self) -> None:
        self.datanode = Daemon("datanode", self.java_argv(DATANODE_MAIN), self.dir, env=self.java_env())
        self.datanode.start()
        self.datanode.wait_until(self._ready, 120, "registered with the NameNode")

    def stop(self) -> None:
        self.datanode.stop()
        self.namenode.stop()

    def _jmx(self, query: str) -> dict[str, object]:
        """One NameNode JMX bean, read over SPNEGO as the ``hdfs`` service principal."""
        if self._admin_auth is None:
            login = keytab_login(self.principal, self.keytab, self.dir / "ccache-probe")
            self._admin_auth = SpnegoAuth(login.credentials)
        resp = requests.get(f"{self.webhdfs_url}/jmx", params={"qry": query}, auth=self._admin_auth, timeout=5)
        resp.raise_for_status()
        beans = resp.json()["beans"]
        return beans[0] if beans else {}

    def _ready(self) -> bool:
        state = self._jmx("Hadoop:service=NameNode,name=FSNamesystemState")
        info = self._jmx("Hadoop:service=NameNode,name=NameNodeInfo")
        return int(state.get("NumLiveDataNodes", 0)) >= 1 and not info.get("Safemode")

    @property
    def running(self) -> bool:
        return self.namenode.running and self.datanode.running


_LOG4J = """log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss,SSS} %p %c{1}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.eclipse.jetty=WARN
"""

__all__ = ["SecureHdfs", "TokenLifetimes", "HdfsPorts", "FS_SHELL_MAIN", "DTUTIL_MAIN"]
