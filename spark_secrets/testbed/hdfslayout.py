"""Where a secure HDFS's parts are and how they are configured: NameNode and DataNode ports, the
addresses clients use, principals and keytab, and the site files of servers and clients.

:class:`~spark_secrets.testbed.hadoop.SecureHdfs` adds the processes and the client tools; the layout
alone is what a client configuration (:func:`write_client_conf`) is made from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spark_secrets.testbed.daemon import free_port
from spark_secrets.testbed.jvmconf import LOG4J, TokenLifetimes, site_xml
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.tls import STORE_PASSWORD


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


class HdfsLayout:
    """A one-DataNode secure HDFS cluster's layout; HA (two NameNodes) when given a nameservice."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), nameservice: str | None = None,
                 key_provider: str | None = None) -> None:
        self.dir = workdir
        self.kdc = kdc
        self.lifetimes = lifetimes or TokenLifetimes()
        self.proxy_users = list(proxy_users)
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

    # -- addresses -------------------------------------------------------------------------------
    @property
    def ports(self) -> HdfsPorts:
        """The active NameNode's ports."""
        return self.nn_ports[self.active]

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
                "ssl.client.truststore.password": STORE_PASSWORD, "ssl.client.truststore.type": "jks"}

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
            "ssl.server.keystore.location": str(self.keystore), "ssl.server.keystore.password": STORE_PASSWORD,
            "ssl.server.keystore.keypassword": STORE_PASSWORD, "ssl.server.keystore.type": "jks"}))
        (d / "ssl-client.xml").write_text(site_xml(self._ssl_client()))
        (d / "log4j.properties").write_text(LOG4J)
        # HttpServer2 looks its web app up as a classpath directory; WebHDFS itself is
        # registered in code, so the (tarball-only) static UI files are not needed.
        for app in ("hdfs", "datanode", "secondary"):
            (d / "webapps" / app).mkdir(parents=True, exist_ok=True)
        return d

    def _nn_conf_dir(self, nn: str) -> Path:
        return self.dir / f"conf-{nn}"


def write_client_conf(dest: Path, *clusters: HdfsLayout) -> Path:
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
