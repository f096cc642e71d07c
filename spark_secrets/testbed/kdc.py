"""A real MIT Kerberos KDC (Debian's krb5-kdc) in a private directory on a free loopback port."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port, port_open
from spark_secrets.testbed.paths import system_binary

DEFAULT_REALM = "SPARKSECRETS.TEST"


class Kdc:
    """A realm with its own database, ``krb5.conf`` and ``krb5kdc`` process.

    Hosts are ``localhost``; ``rdns``, hostname canonicalization and short-name qualification are off
    (in a pod, MIT krb5 would otherwise append the first DNS search domain, ``<ns>.svc.cluster.local``,
    to ``localhost`` and look for a realm of that name), so a client asking
    for ``HTTP@localhost`` gets ``HTTP/localhost@REALM`` in MIT and Java alike.
    """

    def __init__(self, workdir: Path, realm: str = DEFAULT_REALM,
                 max_life: str = "1d", max_renewable_life: str = "7d") -> None:
        self.dir = workdir
        self.realm = realm
        self.max_life = max_life
        self.max_renewable_life = max_renewable_life
        self.port = 0
        self.krb5_conf = workdir / "krb5.conf"
        self.kdc_conf = workdir / "kdc.conf"
        self._daemon: Daemon | None = None

    def __repr__(self) -> str:
        return f"Kdc(realm={self.realm!r}, port={self.port})"

    # -- environment ---------------------------------------------------------------------------
    def env(self, ccache: Path | str | None = None) -> dict[str, str]:
        """Environment for MIT tools and gssapi in this realm; ``ccache`` sets ``KRB5CCNAME``."""
        env = {k: v for k, v in os.environ.items() if k not in ("KRB5CCNAME", "KRB5_CLIENT_KTNAME")}
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{ccache}" if not str(ccache).startswith(("FILE:", "DIR:", "MEMORY:")) else str(ccache)
        return env

    def java_options(self) -> list[str]:
        """JVM flags: Java ignores ``KRB5_CONFIG``."""
        return [f"-Djava.security.krb5.conf={self.krb5_conf}", "-Djavax.security.auth.useSubjectCredsOnly=false"]

    def principal(self, name: str) -> str:
        return name if "@" in name else f"{name}@{self.realm}"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._write_config()
        db = self.dir / "principal"
        if not db.exists():
            self._run([str(system_binary("kdb5_util", "krb5-kdc")), "-r", self.realm, "create", "-s",
                       "-P", secrets.token_hex(16)])
        self._daemon = Daemon("krb5kdc", [str(system_binary("krb5kdc", "krb5-kdc")), "-n", "-r", self.realm],
                              self.dir, env=self.env())
        self._daemon.start()
        self._daemon.wait_until(lambda: port_open(self.port), 20, "listening")
        self.activate()

    def activate(self) -> None:
        """Point this process's Kerberos library (gssapi) at this realm's ``krb5.conf``."""
        os.environ["KRB5_CONFIG"] = str(self.krb5_conf)

    def stop(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running

    @property
    def daemon(self) -> Daemon:
        """The ``krb5kdc`` process (to pause it in fault tests)."""
        if self._daemon is None:
            raise TestbedError("the KDC is not started", "start it first")
        return self._daemon

    # -- principals, keytabs, caches -----------------------------------------------------------
    def add_principal(self, name: str, password: str | None = None) -> str:
        """Create ``name`` (random key unless a password is given); returns the full principal."""
        principal = self.principal(name)
        key = ["-pw", password] if password is not None else ["-randkey"]
        self._kadmin("addprinc", *key, principal)
        return principal

    def export_keytab(self, path: Path, *names: str) -> Path:
        """Write the current keys of ``names`` into the keytab ``path`` (keys are not changed)."""
        for name in names:
            self._kadmin("ktadd", "-norandkey", "-k", str(path), self.principal(name))
        os.chmod(path, 0o600)
        return path

    def kinit(self, name: str, ccache: Path, *, keytab: Path | None = None, password: str | None = None,
              lifetime: str | None = None, renewable: str | None = None) -> Path:
        """Get a TGT for ``name`` into the file cache ``ccache`` with MIT's own ``kinit``."""
        argv = [str(system_binary("kinit", "krb5-user"))]
        if lifetime:
            argv += ["-l", lifetime]
        if renewable:
            argv += ["-r", renewable]
        if keytab is not None:
            argv += ["-k", "-t", str(keytab)]
        argv.append(self.principal(name))
        self._run(argv, env=self.env(ccache), stdin=(password + "\n") if password is not None else None)
        return ccache

    # -- internals -----------------------------------------------------------------------------
    def _kadmin(self, *query: str) -> None:
        self._run([str(system_binary("kadmin.local", "krb5-admin-server")), "-r", self.realm, "-q",
                   " ".join(query)], check_output=True)

    def _run(self, argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None,
             check_output: bool = False) -> None:
        proc = subprocess.run(argv, env=env or self.env(), input=(stdin or "").encode(),
                              capture_output=True, timeout=60)
        err = proc.stderr.decode(errors="replace")
        # kadmin.local exits 0 when a query fails; its errors read "<query>: <problem> while <doing>".
        failed = proc.returncode != 0 or (check_output and " while " in err)
        if failed and "already exists" not in err:
            raise TestbedError(f"{Path(argv[0]).name} failed in the test-bed KDC", err.strip()[-800:])

    def _write_config(self) -> None:
        d, r, p = self.dir, self.realm, self.port
        self.kdc_conf.write_text(f"""[kdcdefaults]
 kdc_listen = 127.0.0.1:{p}
 kdc_tcp_listen = 127.0.0.1:{p}

[realms]
 {r} = {{
  database_name = {d}/principal
  key_stash_file = {d}/stash
  acl_file = {d}/kadm5.acl
  kdc_listen = 127.0.0.1:{p}
  kdc_tcp_listen = 127.0.0.1:{p}
  max_life = {self.max_life}
  max_renewable_life = {self.max_renewable_life}
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}

[logging]
 kdc = FILE:{d}/kdc-events.log
""")
        (d / "kadm5.acl").write_text(f"*/admin@{r} *\n")
        self.krb5_conf.write_text(f"""[libdefaults]
 default_realm = {r}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 rdns = false
 dns_canonicalize_hostname = false
 qualify_shortname = ""
 udp_preference_limit = 1
 ticket_lifetime = {self.max_life}
 renew_lifetime = {self.max_renewable_life}
 forwardable = true
 default_ccache_name = FILE:{d}/ccache-default
 default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
 permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
 {r} = {{
  kdc = 127.0.0.1:{p}
 }}

[domain_realm]
 localhost = {r}
 .localhost = {r}
""")
