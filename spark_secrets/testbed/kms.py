"""Hadoop's key management server (``KMSWebServer`` from ``hadoop-kms``), Kerberized, for encryption zones.

Keys live in a Java keystore file; clients and the NameNode authenticate with SPNEGO as
``HTTP/localhost``; delegation tokens (kind ``kms-dt``) get short, configurable lifetimes; the renew
service may act for users (``hadoop.kms.proxyuser.*``). Key ACLs allow every signed-in user, as a
test bed may: what is under test is who holds which token, not key policy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import requests

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.jvmconf import JAVA17_OPENS, LOG4J, TokenLifetimes, daemon_env, site_xml
from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import hadoop_lib, java_home

KMS_MAIN = "org.apache.hadoop.crypto.key.kms.server.KMSWebServer"
KEY_SHELL_MAIN = "org.apache.hadoop.crypto.key.KeyShell"
_KEY_OPS = ("MANAGEMENT", "GENERATE_EEK", "DECRYPT_EEK", "READ")


class Kms:
    """One KMS instance on ``localhost``; :attr:`provider_uri` is what Hadoop's configuration names."""

    def __init__(self, workdir: Path, kdc: Kdc, *, lifetimes: TokenLifetimes | None = None,
                 proxy_users: Sequence[str] = ("spark-renewer",), heap: str = "256m") -> None:
        self.dir = workdir
        self.kdc = kdc
        self.lifetimes = lifetimes or TokenLifetimes()
        self.proxy_users = list(proxy_users)
        self.heap = heap
        self.port = free_port()
        self.conf_dir = workdir / "conf"
        self.keytab = workdir / "kms.keytab"
        self.daemon = Daemon("kms", [], workdir)

    def __repr__(self) -> str:
        return f"Kms({self.provider_uri})"

    @property
    def provider_uri(self) -> str:
        """``hadoop.security.key.provider.path`` for this KMS."""
        return f"kms://http@localhost:{self.port}/kms"

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/kms"

    def kms_site(self) -> dict[str, str]:
        lt = self.lifetimes
        auth = "hadoop.kms.authentication."
        props = {
            "hadoop.kms.http.port": str(self.port),
            "hadoop.kms.http.host": "127.0.0.1",
            "hadoop.kms.key.provider.uri": f"jceks://file@{self.dir / 'keys.jceks'}",
            f"{auth}type": "kerberos",
            f"{auth}kerberos.keytab": str(self.keytab),
            f"{auth}kerberos.principal": self.kdc.principal("HTTP/localhost"),
            f"{auth}kerberos.name.rules": "DEFAULT",
            # The server-side timings, in seconds (Hadoop's defaults: 1 d renew, 7 d max).
            f"{auth}delegation-token.renew-interval.sec": str(max(1, lt.renew_interval_ms // 1000)),
            f"{auth}delegation-token.max-lifetime.sec": str(max(1, lt.max_lifetime_ms // 1000)),
            f"{auth}delegation-token.update-interval.sec": str(max(1, lt.key_update_interval_ms // 1000)),
            f"{auth}delegation-token.removal-scan-interval.sec": "5",
        }
        for user in self.proxy_users:
            props[f"hadoop.kms.proxyuser.{user}.users"] = "*"
            props[f"hadoop.kms.proxyuser.{user}.hosts"] = "*"
        return props

    def _write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "kms-site.xml").write_text(site_xml(self.kms_site()))
        (self.conf_dir / "core-site.xml").write_text(site_xml({
            "hadoop.security.authentication": "kerberos",
            "hadoop.user.group.static.mapping.overrides": "alice=users;bob=users;hdfs=supergroup"}))
        (self.conf_dir / "kms-acls.xml").write_text(site_xml(
            {f"default.key.acl.{op}": "*" for op in _KEY_OPS}))
        (self.conf_dir / "log4j.properties").write_text(LOG4J)

    def _argv(self) -> list[str]:
        return [str(java_home() / "bin" / "java"), f"-Xmx{self.heap}", *JAVA17_OPENS, *self.kdc.java_options(),
                f"-Dkms.config.dir={self.conf_dir}", f"-Dlog4j.configuration=file:{self.conf_dir / 'log4j.properties'}",
                f"-Dkms.log.dir={self.dir}", "-cp", f"{self.conf_dir}:{hadoop_lib()}/*", KMS_MAIN]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kdc.add_principal("HTTP/localhost")
        if not self.keytab.exists():
            self.kdc.export_keytab(self.keytab, "HTTP/localhost")
        self._write_conf()
        env = daemon_env(self.kdc, self.dir)
        env["HADOOP_KEYSTORE_PASSWORD"] = "testbed-kms"  # guards the throwaway key store only
        self.daemon = Daemon("kms", self._argv(), self.dir, env=env)
        self.daemon.start()
        self.daemon.wait_until(self._answering, 120, "answering HTTP")

    def _answering(self) -> bool:
        if not port_open(self.port):
            return False
        try:  # unauthenticated: 401 with a Negotiate challenge once the web app is up
            return requests.get(f"{self.url}/v1/keys/names", timeout=5).status_code == 401
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.daemon.stop()

    @property
    def running(self) -> bool:
        return self.daemon.running

    # -- keys ------------------------------------------------------------------------------------
    def create_key(self, name: str, ccache: Path) -> None:
        """``hadoop key create NAME`` against this KMS, as the holder of ``ccache``."""
        argv = [str(java_home() / "bin" / "java"), "-Xmx128m", *JAVA17_OPENS, *self.kdc.java_options(),
                "-cp", f"{self.conf_dir}:{hadoop_lib()}/*", KEY_SHELL_MAIN, "create", name,
                "-provider", self.provider_uri]
        env = {**daemon_env(self.kdc, self.dir), "KRB5CCNAME": f"FILE:{ccache}"}
        proc = subprocess.run(argv, env=env, capture_output=True, timeout=120)
        if proc.returncode != 0:
            raise TestbedError(f"hadoop key create {name} failed", (proc.stdout + proc.stderr).decode(errors="replace")[-800:])


__all__ = ["Kms", "KMS_MAIN"]
