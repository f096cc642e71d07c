"""Apache Hive's standalone metastore (4.0.1, from Maven Central), Kerberized, with delegation tokens.

Clients authenticate with SASL GSSAPI as ``hive/localhost``'s users, or with a delegation token
(SASL DIGEST-MD5); tokens live in memory with short, configurable lifetimes; the renew service may
act for users (``hadoop.proxyuser.*`` in the metastore's own core-site). The backing database is an
embedded Derby whose schema the metastore creates at first start; tables live on the local disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.jvmconf import JAVA17_OPENS, LOG4J, TokenLifetimes, daemon_env, site_xml
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import hadoop_lib, hive_lib, java_home

METASTORE_MAIN = "org.apache.hadoop.hive.metastore.HiveMetaStore"


class HiveMetastore:
    """One metastore on ``127.0.0.1``; :attr:`uri` and :attr:`principal` are what clients configure."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), heap: str = "512m") -> None:
        self.dir = workdir
        self.kdc = kdc
        self.lifetimes = lifetimes or TokenLifetimes()
        self.proxy_users = list(proxy_users)
        self.heap = heap
        self.port = free_port()
        self.conf_dir = workdir / "conf"
        self.keytab = workdir / "hive.keytab"
        self.warehouse = workdir / "warehouse"
        self.daemon = Daemon("metastore", [], workdir)

    def __repr__(self) -> str:
        return f"HiveMetastore({self.uri})"

    @property
    def uri(self) -> str:
        return f"thrift://localhost:{self.port}"

    @property
    def principal(self) -> str:
        return self.kdc.principal("hive/localhost")

    def client_conf(self) -> dict[str, str]:
        """What a Hive client (Spark's, with ``spark.hadoop.`` before each key) needs for this metastore."""
        return {"hive.metastore.uris": self.uri, "hive.metastore.sasl.enabled": "true",
                "hive.metastore.kerberos.principal": self.kdc.principal("hive/_HOST")}

    def metastore_site(self) -> dict[str, str]:
        lt = self.lifetimes
        return {
            "metastore.thrift.port": str(self.port),
            "metastore.thrift.bind.host": "127.0.0.1",
            "metastore.sasl.enabled": "true",
            "metastore.kerberos.principal": self.principal,
            "metastore.kerberos.keytab.file": str(self.keytab),
            "javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={self.dir / 'metastore_db'};create=true",
            "javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver",
            "metastore.warehouse.dir": f"file://{self.warehouse}",
            "datanucleus.schema.autoCreateAll": "true",
            "metastore.schema.verification": "false",
            # Tokens in memory, with the test's lifetimes (Hadoop-style durations; Hive's defaults 1 d / 7 d).
            "hive.cluster.delegation.token.store.class": "org.apache.hadoop.hive.metastore.security.MemoryTokenStore",
            "metastore.cluster.delegation.token.renew-interval": f"{lt.renew_interval_ms}ms",
            "metastore.cluster.delegation.token.max-lifetime": f"{lt.max_lifetime_ms}ms",
            "metastore.cluster.delegation.key.update-interval": f"{lt.key_update_interval_ms}ms",
            "metastore.cluster.delegation.token.gc-interval": "10s",
            # Lean: only the background tasks the standalone server has the classes of (the default list
            # names one from hive-exec; an empty value reads as unset), no metrics.
            "metastore.task.threads.always": "org.apache.hadoop.hive.metastore.events.EventCleanerTask,"
                                             "org.apache.hadoop.hive.metastore.RuntimeStatsCleanerTask",
            "metastore.housekeeping.threads.on": "false",
            "metastore.metrics.enabled": "false",
            "metastore.event.db.notification.api.auth": "false",
        }

    def core_site(self) -> dict[str, str]:
        props = {
            "hadoop.security.authentication": "kerberos",
            "hadoop.security.authorization": "true",
            "hadoop.rpc.protection": "authentication",
            "hadoop.user.group.static.mapping.overrides": "alice=users;bob=users;hive=hive",
            # The warehouse is a local directory that job pods mount (hostPath) and write as their own
            # user, as a shared filesystem would be: the directories the metastore makes are open.
            "fs.permissions.umask-mode": "000",
        }
        for user in self.proxy_users:
            props[f"hadoop.proxyuser.{user}.hosts"] = "*"
            props[f"hadoop.proxyuser.{user}.users"] = "*"
            props[f"hadoop.proxyuser.{user}.groups"] = "*"
        return props

    def _write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "metastore-site.xml").write_text(site_xml(self.metastore_site()))
        (self.conf_dir / "core-site.xml").write_text(site_xml(self.core_site()))
        (self.conf_dir / "log4j.properties").write_text(LOG4J)

    def _argv(self) -> list[str]:
        return [str(java_home() / "bin" / "java"), f"-Xmx{self.heap}", *JAVA17_OPENS, *self.kdc.java_options(),
                f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
                f"-Dderby.system.home={self.dir}", f"-Dderby.stream.error.file={self.dir / 'derby.log'}",
                "-cp", f"{self.conf_dir}:{hive_lib()}/*:{hadoop_lib()}/*", METASTORE_MAIN]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.warehouse.mkdir(parents=True, exist_ok=True)
        self.warehouse.chmod(0o777)
        self.kdc.add_principal("hive/localhost")
        if not self.keytab.exists():
            self.kdc.export_keytab(self.keytab, "hive/localhost")
        self._write_conf()
        self.daemon = Daemon("metastore", self._argv(), self.dir, env=daemon_env(self.kdc, self.dir), cwd=self.dir)
        seen = self.daemon.log.stat().st_size if self.daemon.log.exists() else 0  # the log is appended to
        self.daemon.start()
        # The port opens a moment before the server takes calls; this line says it does.
        self.daemon.wait_until(lambda: port_open(self.port) and b"Started the new metaserver" in
                               self.daemon.log.read_bytes()[seen:], 180, "serving")

    def stop(self) -> None:
        self.daemon.stop()

    @property
    def running(self) -> bool:
        return self.daemon.running


__all__ = ["HiveMetastore", "METASTORE_MAIN"]
