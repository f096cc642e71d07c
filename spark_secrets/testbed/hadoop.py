"""Secure HDFS from upstream Apache Hadoop jars: NameNode(s) and a DataNode as separate JVMs.

Kerberos authentication against the test-bed KDC, block access tokens, SASL data-transfer
protection (no privileged ports), WebHDFS over HTTP and HTTPS with SPNEGO, delegation tokens with
short, configurable lifetimes, and a proxy-user rule for the renew service. With a nameservice, two
NameNodes share an edits directory (HA with manual failover): ``nn1`` stays standby and ``nn2`` is
made active, so clients must skip the first NameNode they try.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from spark_secrets.errors import TestbedError
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
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
HAADMIN_MAIN = "org.apache.hadoop.hdfs.tools.DFSHAAdmin"
CRYPTO_ADMIN_MAIN = "org.apache.hadoop.hdfs.tools.CryptoAdmin"
_STORE_PASSWORD = "testbed-store"  # guards throwaway test-bed keystores only


@dataclass
class TokenLifetimes:
    """NameNode delegation-token timings in milliseconds (Hadoop's defaults: 1 d, 7 d, 1 d)."""

    renew_interval_ms: int = 86_400_000
    max_lifetime_ms: int = 604_800_000
    key_update_interval_ms: int = 86_400_000


@dataclass
class HdfsPorts:
    """One NameNode's ports."""

    rpc: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    https: int = field(default_factory=free_port)


@dataclass
class DataNodePorts:
    data: int = field(default_factory=free_port)
    http: int = field(default_factory=free_port)
    https: int = field(default_factory=free_port)
    ipc: int = field(default_factory=free_port)


def site_xml(props: Mapping[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n" for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class SecureHdfs:
    """A one-DataNode secure HDFS cluster whose principals live in ``kdc``; HA when given a nameservice."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), heap: str = "384m",
                 nameservice: str | None = None, key_provider: str | None = None) -> None:
        self.dir = workdir
        self.kdc = kdc
        self.lifetimes = lifetimes or TokenLifetimes()
        self.proxy_users = list(proxy_users)
        self.heap = heap
        self.nameservice = nameservice
        #: ``hadoop.security.key.provider.path`` of the NameNode (a KMS), for encryption zones.
        self.key_provider = key_provider
        self.nn_ids: tuple[str, ...] = ("nn1", "nn2") if nameservice else ("nn1",)
        #: The NameNode that serves clients; in HA the second one, so that the first is a standby.
        self.active = self.nn_ids[-1]
        self.nn_ports = {nn: HdfsPorts() for nn in self.nn_ids}
        self.dn_ports = DataNodePorts()
        self.conf_dir = workdir / "conf"
        self.keytab = workdir / "hdfs.keytab"
        self.keystore = workdir / "tls" / "server.jks"
        self.truststore = workdir / "tls" / "trust.jks"
        #: PEM certificate that HTTPS clients (``requests``' ``verify=``) trust for this cluster.
        self.ca_cert = workdir / "tls" / "ca.pem"
        self.namenodes = {nn: Daemon(f"namenode-{nn}", [], workdir) for nn in self.nn_ids}
        self.datanode = Daemon("datanode", [], workdir)
        self._admin_auth: SpnegoAuth | None = None

    def __repr__(self) -> str:
        return f"SecureHdfs({self.uri}, http={self.webhdfs_url})"

    # -- addresses -------------------------------------------------------------------------------
    @property
    def ports(self) -> HdfsPorts:
        """The active NameNode's ports."""
        return self.nn_ports[self.active]

    @property
    def namenode(self) -> Daemon:
        """The active NameNode's process."""
        return self.namenodes[self.active]

    @property
    def uri(self) -> str:
        """``fs.defaultFS``: what ``hdfs://`` clients use."""
        return f"hdfs://{self.nameservice}" if self.nameservice else f"hdfs://localhost:{self.ports.rpc}"

    @property
    def webhdfs_url(self) -> str:
        """The active NameNode's WebHDFS address (HTTP)."""
        return f"http://localhost:{self.ports.http}"

    @property
    def https_url(self) -> str:
        """The active NameNode's WebHDFS address (HTTPS, certificate in :attr:`ca_cert`)."""
        return f"https://localhost:{self.ports.https}"

    @property
    def webhdfs_urls(self) -> list[str]:
        """Every NameNode's HTTP address, in configuration order (standby first in HA)."""
        return [f"http://localhost:{self.nn_ports[nn].http}" for nn in self.nn_ids]

    @property
    def rpc_token_service(self) -> str:
        """The service text a real ``hdfs://`` client of this cluster selects tokens by."""
        return f"ha-hdfs:{self.nameservice}" if self.nameservice else f"127.0.0.1:{self.ports.rpc}"

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
        if self.key_provider:
            props["hadoop.security.key.provider.path"] = self.key_provider
        return props

    def hdfs_site(self) -> dict[str, str]:
        lt, data, dn = self.lifetimes, self.dir / "data", self.dn_ports
        http_principal = self.kdc.principal("HTTP/localhost")
        props = {
            "dfs.datanode.data.dir": f"file://{data}/data",
            "dfs.datanode.address": f"127.0.0.1:{dn.data}",
            "dfs.datanode.http.address": f"127.0.0.1:{dn.http}",
            "dfs.datanode.https.address": f"127.0.0.1:{dn.https}",
            "dfs.datanode.ipc.address": f"127.0.0.1:{dn.ipc}",
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
            # WebHDFS on both HTTP and HTTPS (SWebHDFS); keystores in ssl-server.xml / ssl-client.xml.
            "dfs.http.policy": "HTTP_AND_HTTPS",
            "dfs.permissions.superusergroup": "supergroup",
            "dfs.namenode.delegation.token.renew-interval": str(lt.renew_interval_ms),
            "dfs.namenode.delegation.token.max-lifetime": str(lt.max_lifetime_ms),
            "dfs.namenode.delegation.key.update-interval": str(lt.key_update_interval_ms),
        }
        ns = self.nameservice
        if ns is None:
            p = self.ports
            props.update({"dfs.namenode.rpc-address": f"localhost:{p.rpc}",
                          "dfs.namenode.http-address": f"localhost:{p.http}",
                          "dfs.namenode.https-address": f"localhost:{p.https}"})
            return props
        props.update({
            "dfs.nameservices": ns,
            f"dfs.ha.namenodes.{ns}": ",".join(self.nn_ids),
            "dfs.namenode.shared.edits.dir": f"file://{data}/shared-edits",
            f"dfs.client.failover.proxy.provider.{ns}":
                "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider",
            "dfs.ha.fencing.methods": "shell(/bin/true)",
            "dfs.ha.automatic-failover.enabled": "false",
            "dfs.ha.tail-edits.period": "2s",
        })
        for nn, p in self.nn_ports.items():
            props.update({f"dfs.namenode.rpc-address.{ns}.{nn}": f"localhost:{p.rpc}",
                          f"dfs.namenode.http-address.{ns}.{nn}": f"localhost:{p.http}",
                          f"dfs.namenode.https-address.{ns}.{nn}": f"localhost:{p.https}"})
        return props

    def _namenode_site(self, nn: str) -> dict[str, str]:
        site = {**self.hdfs_site(), "dfs.namenode.name.dir": f"file://{self.dir / 'data' / f'name-{nn}'}"}
        if self.nameservice:
            site["dfs.ha.namenode.id"] = nn
        return site

    def _ssl_client(self) -> dict[str, str]:
        return {"ssl.client.truststore.location": str(self.truststore),
                "ssl.client.truststore.password": _STORE_PASSWORD, "ssl.client.truststore.type": "jks"}

    def client_sites(self) -> tuple[dict[str, str], dict[str, str]]:
        """``core-site`` and ``hdfs-site`` properties a client of this cluster needs (no keytabs)."""
        # Server-only settings stay out, the token lifetimes among them: a real client's configuration
        # rarely has them, and the tests must not learn the cluster's lifetimes from it.
        site = {k: v for k, v in self.hdfs_site().items()
                if "keytab" not in k and not k.startswith(("dfs.datanode.", "dfs.namenode.delegation."))
                and "edits.dir" not in k}
        # Nor the key provider: clients learn it from the NameNode (its server defaults), as most do.
        core = {k: v for k, v in self.core_site().items()
                if "keytab" not in k and k != "hadoop.security.key.provider.path"}
        return core, site

    def client_conf_dir(self) -> Path:
        """A Hadoop client configuration (``HADOOP_CONF_DIR``) for this cluster, with no keytabs."""
        return write_client_conf(self.dir / "client-conf", self)

    def _write_conf(self, d: Path, hdfs_site: Mapping[str, str]) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        (d / "core-site.xml").write_text(site_xml(self.core_site()))
        (d / "hdfs-site.xml").write_text(site_xml(hdfs_site))
        (d / "ssl-server.xml").write_text(site_xml({
            "ssl.server.keystore.location": str(self.keystore), "ssl.server.keystore.password": _STORE_PASSWORD,
            "ssl.server.keystore.keypassword": _STORE_PASSWORD, "ssl.server.keystore.type": "jks"}))
        (d / "ssl-client.xml").write_text(site_xml(self._ssl_client()))
        (d / "log4j.properties").write_text(LOG4J)
        # HttpServer2 looks its web app up as a classpath directory; WebHDFS itself is
        # registered in code, so the (tarball-only) static UI files are not needed.
        for app in ("hdfs", "datanode", "secondary"):
            (d / "webapps" / app).mkdir(parents=True, exist_ok=True)
        return d

    def _nn_conf_dir(self, nn: str) -> Path:
        return self.dir / f"conf-{nn}"

    def _make_tls_stores(self) -> None:
        """A self-signed ``localhost`` certificate (keytool), its PEM form and a Java truststore."""
        if self.truststore.exists():
            return
        self.keystore.parent.mkdir(parents=True, exist_ok=True)
        keytool = str(java_home() / "bin" / "keytool")
        store = ["-storepass", _STORE_PASSWORD, "-storetype", "jks"]
        steps = [
            [keytool, "-genkeypair", "-alias", "localhost", "-keyalg", "RSA", "-keysize", "2048", "-validity", "30",
             "-dname", "CN=localhost", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-ext", "BC:c=ca:true",
             "-keystore", str(self.keystore), "-keypass", _STORE_PASSWORD, *store],
            [keytool, "-exportcert", "-rfc", "-alias", "localhost", "-keystore", str(self.keystore),
             "-file", str(self.ca_cert), *store],
            [keytool, "-importcert", "-noprompt", "-alias", "localhost", "-file", str(self.ca_cert),
             "-keystore", str(self.truststore), *store],
        ]
        for argv in steps:
            proc = subprocess.run(argv, capture_output=True, timeout=60)
            if proc.returncode != 0:
                raise TestbedError(f"keytool {argv[1]} failed", (proc.stdout + proc.stderr).decode(errors="replace")[-500:])

    # -- JVMs ------------------------------------------------------------------------------------
    def java_argv(self, main: str, *args: str, conf_dir: Path | None = None, heap: str | None = None,
                  extra_opts: Sequence[str] = (), extra_classpath: Sequence[Path] = ()) -> list[str]:
        classpath = ":".join([str(conf_dir or self.conf_dir), *map(str, extra_classpath), f"{hadoop_lib()}/*"])
        return [str(java_home() / "bin" / "java"), f"-Xmx{heap or self.heap}", *JAVA17_OPENS,
                *self.kdc.java_options(), *extra_opts, "-cp", classpath, main, *args]

    def java_env(self, ccache: Path | None = None, token_file: Path | None = None) -> dict[str, str]:
        """Environment for a Hadoop JVM: a private ticket cache, and a token file only if given."""
        env = daemon_env(self.kdc, self.dir)
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{ccache}"
        if token_file is not None:
            env["HADOOP_TOKEN_FILE_LOCATION"] = str(token_file)
        return env

    def run_client(self, main: str, *args: str, ccache: Path | None = None, token_file: Path | None = None,
                   timeout: float = 120, input: bytes | None = None, extra_classpath: Sequence[Path] = (),
                   conf_dir: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run one of Hadoop's own command-line classes (or a test's) as a client of this cluster."""
        argv = self.java_argv(main, *args, conf_dir=conf_dir or self.client_conf_dir(), heap="256m",
                              extra_classpath=extra_classpath)
        return subprocess.run(argv, env=self.java_env(ccache, token_file), capture_output=True,
                              timeout=timeout, input=input)

    def fs(self, *args: str, ccache: Path | None = None, token_file: Path | None = None,
           input: bytes | None = None, conf_dir: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        """``hadoop fs ARGS`` (Hadoop's FsShell) against this cluster."""
        return self.run_client(FS_SHELL_MAIN, *args, ccache=ccache, token_file=token_file, input=input,
                               conf_dir=conf_dir)

    def admin_ccache(self) -> Path:
        """A ticket cache of the ``hdfs`` superuser (from the service keytab)."""
        return self.kdc.kinit("hdfs/localhost", self.dir / "ccache-hdfs-admin", keytab=self.keytab)

    def admin_fs(self, *args: str) -> None:
        """``hadoop fs ARGS`` as the HDFS superuser; raises on failure."""
        proc = self.fs(*args, ccache=self.admin_ccache())
        if proc.returncode != 0:
            raise TestbedError(f"hadoop fs {' '.join(args)} failed", proc.stderr.decode(errors="replace")[-500:])

    def create_zone(self, path: str, key: str, owner: str) -> None:
        """An encryption zone at ``path`` under ``key`` (``hdfs crypto -createZone``), owned by ``owner``."""
        self.admin_fs("-mkdir", "-p", path)
        proc = self.run_client(CRYPTO_ADMIN_MAIN, "-createZone", "-keyName", key, "-path", path,
                               ccache=self.admin_ccache())
        if proc.returncode != 0:
            raise TestbedError(f"hdfs crypto -createZone {path} failed", proc.stderr.decode(errors="replace")[-800:])
        self.admin_fs("-chown", f"{owner}:users", path)

    def make_home_dirs(self, users: Sequence[str]) -> None:
        """``/user/<name>`` owned by each user, and a world-writable sticky ``/tmp``."""
        self.admin_fs("-mkdir", "-p", *(f"/user/{u}" for u in users), "/tmp")
        for user in users:
            self.admin_fs("-chown", f"{user}:users", f"/user/{user}")
        self.admin_fs("-chmod", "1777", "/tmp")

    # -- lifecycle -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def serving(self, users: Sequence[str] = ()) -> Iterator[SecureHdfs]:
        """Started, with home directories for ``users``; stopped on exit (tests' extra clusters)."""
        try:
            self.start()
            self.make_home_dirs(users)
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in ("hdfs/localhost", "HTTP/localhost"):
            self.kdc.add_principal(name)
        if not self.keytab.exists():
            self.kdc.export_keytab(self.keytab, "hdfs/localhost", "HTTP/localhost")
        self._make_tls_stores()
        self._write_conf(self.conf_dir, self.hdfs_site())
        for nn in self.nn_ids:
            self._write_conf(self._nn_conf_dir(nn), self._namenode_site(nn))
        self._format()
        for nn in self.nn_ids:
            self.start_namenode(nn, wait=False)
        for nn in self.nn_ids:
            self._wait_listening(nn)
        if self.nameservice:
            self.transition_to_active(self.active)
        self.start_datanode()

    def _format(self) -> None:
        first = self.nn_ids[0]
        name_dir = self.dir / "data" / f"name-{first}"
        if (name_dir / "current").exists():
            return
        fmt = subprocess.run(self.java_argv(NAMENODE_MAIN, "-format", "-force", "-nonInteractive",
                                            conf_dir=self._nn_conf_dir(first)),
                             env=self.java_env(), capture_output=True, timeout=180)
        (self.dir / "format.log").write_bytes(fmt.stdout + fmt.stderr)
        if fmt.returncode != 0:
            raise TestbedError("NameNode format failed", f"see {self.dir / 'format.log'}")
        for other in self.nn_ids[1:]:
            # What `namenode -bootstrapStandby` does: start from a copy of the formatted namespace.
            shutil.copytree(name_dir, self.dir / "data" / f"name-{other}")

    def start_namenode(self, nn: str | None = None, *, wait: bool = True) -> None:
        nn = nn or self.active
        self.namenodes[nn] = Daemon(f"namenode-{nn}", self.java_argv(NAMENODE_MAIN, conf_dir=self._nn_conf_dir(nn)),
                                    self.dir, env=self.java_env())
        self.namenodes[nn].start()
        if wait:
            self._wait_listening(nn)
            if self.nameservice and nn == self.active:
                self.transition_to_active(nn)

    def _wait_listening(self, nn: str) -> None:
        p = self.nn_ports[nn]
        self.namenodes[nn].wait_until(lambda: port_open(p.rpc) and port_open(p.http) and port_open(p.https),
                                      120, "listening")

    def transition_to_active(self, nn: str) -> None:
        """``hdfs haadmin -transitionToActive NN`` as the HDFS superuser (manual failover)."""
        proc = self.run_client(HAADMIN_MAIN, "-transitionToActive", nn, ccache=self.admin_ccache())
        if proc.returncode != 0:
            raise TestbedError(f"haadmin -transitionToActive {nn} failed", proc.stderr.decode(errors="replace")[-800:])
        self.active = nn

    def ha_state(self, nn: str) -> str:
        """``active`` or ``standby``, from the NameNode's own JMX."""
        return str(self._jmx("Hadoop:service=NameNode,name=NameNodeStatus", nn).get("State", "")).lower()

    def start_datanode(self) -> None:
        self.datanode = Daemon("datanode", self.java_argv(DATANODE_MAIN), self.dir, env=self.java_env())
        self.datanode.start()
        self.datanode.wait_until(self._ready, 120, "registered with the NameNode")

    def stop(self) -> None:
        self.datanode.stop()
        for daemon in self.namenodes.values():
            daemon.stop()

    def _jmx(self, query: str, nn: str | None = None) -> dict[str, object]:
        """One NameNode JMX bean, read over SPNEGO as the ``hdfs`` service principal."""
        if self._admin_auth is None:
            login = keytab_login(self.principal, self.keytab, self.dir / "ccache-probe")
            self._admin_auth = SpnegoAuth(login.credentials)
        port = self.nn_ports[nn or self.active].http
        resp = requests.get(f"http://localhost:{port}/jmx", params={"qry": query}, auth=self._admin_auth, timeout=5)
        resp.raise_for_status()
        beans = resp.json()["beans"]
        return beans[0] if beans else {}

    def _ready(self) -> bool:
        state = self._jmx("Hadoop:service=NameNode,name=FSNamesystemState")
        info = self._jmx("Hadoop:service=NameNode,name=NameNodeInfo")
        return int(str(state.get("NumLiveDataNodes", 0))) >= 1 and not info.get("Safemode")

    @property
    def running(self) -> bool:
        return all(d.running for d in self.namenodes.values()) and self.datanode.running


def write_client_conf(dest: Path, *clusters: SecureHdfs) -> Path:
    """One ``HADOOP_CONF_DIR`` for clients of all ``clusters`` (the first one's ``fs.defaultFS``)."""
    dest.mkdir(parents=True, exist_ok=True)
    core: dict[str, str] = {}
    site: dict[str, str] = {}
    nameservices: list[str] = []
    for cluster in reversed(clusters):
        c, h = cluster.client_sites()
        core.update(c)
        site.update(h)
        nameservices += [cluster.nameservice] if cluster.nameservice else []
    if nameservices:
        site["dfs.nameservices"] = ",".join(sorted(nameservices))
    (dest / "core-site.xml").write_text(site_xml(core))
    (dest / "hdfs-site.xml").write_text(site_xml(site))
    (dest / "ssl-client.xml").write_text(site_xml(clusters[0]._ssl_client()))
    (dest / "log4j.properties").write_text(LOG4J)
    return dest


#: The log4j (reload4j) configuration of every Hadoop-side JVM of the test bed: to stderr, which the daemon's log keeps.
LOG4J = """log4j.rootLogger=INFO,console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss,SSS} %p %c{1}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.eclipse.jetty=WARN
log4j.logger.DataNucleus=WARN
log4j.logger.org.apache.hadoop.hive.metastore.conf.MetastoreConf=WARN
"""


def daemon_env(kdc: Kdc, workdir: Path) -> dict[str, str]:
    """A server JVM's environment: the realm, no ticket cache (it logs in from its keytab), no token file."""
    env = kdc.env(workdir / "no-such-ccache")
    env.pop("HADOOP_TOKEN_FILE_LOCATION", None)
    env["JAVA_HOME"] = str(java_home())
    return env

__all__ = ["SecureHdfs", "TokenLifetimes", "HdfsPorts", "DataNodePorts", "FS_SHELL_MAIN", "DTUTIL_MAIN"]
