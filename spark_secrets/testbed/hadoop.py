"""Secure HDFS from upstream Apache Hadoop jars: NameNode(s) and a DataNode as separate JVMs.

Kerberos authentication against the test-bed KDC, block access tokens, SASL data-transfer
protection (no privileged ports), WebHDFS over HTTP and HTTPS with SPNEGO, delegation tokens with
short, configurable lifetimes, and a proxy-user rule for the renew service. With a nameservice, two
NameNodes share an edits directory (HA with manual failover): ``nn1`` stays standby and ``nn2`` is
made active, so clients must skip the first NameNode they try.

Its ports, addresses and site files are :mod:`.hdfslayout`'s; here are its processes (NameNodes,
DataNode) and the client tools tests use on it (FsShell, haadmin, crypto, JMX).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

from spark_secrets.errors import TestbedError
from spark_secrets.login.kerberos import keytab_login
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.testbed.daemon import Daemon, port_open
from spark_secrets.testbed.hdfslayout import DataNodePorts, HdfsLayout, HdfsPorts, write_client_conf
from spark_secrets.testbed.jvmconf import JAVA17_OPENS, LOG4J, TokenLifetimes, daemon_env, site_xml
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import hadoop_lib, java_home
from spark_secrets.testbed.tls import make_tls_stores

NAMENODE_MAIN = "org.apache.hadoop.hdfs.server.namenode.NameNode"
DATANODE_MAIN = "org.apache.hadoop.hdfs.server.datanode.DataNode"
FS_SHELL_MAIN = "org.apache.hadoop.fs.FsShell"
DTUTIL_MAIN = "org.apache.hadoop.security.token.DtUtilShell"
HAADMIN_MAIN = "org.apache.hadoop.hdfs.tools.DFSHAAdmin"
CRYPTO_ADMIN_MAIN = "org.apache.hadoop.hdfs.tools.CryptoAdmin"


class SecureHdfs(HdfsLayout):
    """A one-DataNode secure HDFS cluster whose principals live in ``kdc``; HA when given a nameservice."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), heap: str = "384m",
                 nameservice: str | None = None, key_provider: str | None = None) -> None:
        super().__init__(workdir, kdc, lifetimes=lifetimes, proxy_users=proxy_users, nameservice=nameservice,
                         key_provider=key_provider)
        self.heap = heap
        self.namenodes = {nn: Daemon(f"namenode-{nn}", [], workdir) for nn in self.nn_ids}
        self.datanode = Daemon("datanode", [], workdir)
        self._admin_auth: SpnegoAuth | None = None

    def __repr__(self) -> str:
        return f"SecureHdfs({self.uri}, http={self.webhdfs_url})"

    @property
    def namenode(self) -> Daemon:
        """The active NameNode's process."""
        return self.namenodes[self.active]

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
        make_tls_stores(self.keystore, self.truststore, self.ca_cert)
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


#: With the names of :mod:`.hdfslayout` and :mod:`.jvmconf` that tests and the other servers import from here.
__all__ = ["SecureHdfs", "TokenLifetimes", "HdfsPorts", "DataNodePorts", "FS_SHELL_MAIN", "DTUTIL_MAIN",
           "write_client_conf", "JAVA17_OPENS", "LOG4J", "daemon_env", "site_xml"]
