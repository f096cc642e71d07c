"""PostgreSQL from Debian's packages, for OpenBao's database secrets engine (leased credentials).

One cluster made by ``initdb``, run as the ``postgres`` system user (the server refuses root) on
``127.0.0.1``, password (SCRAM) logins only; ``vault`` is the superuser OpenBao creates and drops the jobs'
roles with. Its files live in a directory of their own under the system's temporary directory (that user
cannot enter root's private test-bed tree), removed at stop; the server's log stays with the test bed's.
"""

from __future__ import annotations

import glob
import os
import secrets as random
import shutil
import subprocess
import tempfile
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port, port_open

HINT = "run tests/testbed/install.sh (it installs Debian's postgresql)"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise TestbedError(f"PostgreSQL's {name} is not installed", HINT)
    return found[-1]


class Postgres:
    """One server; :attr:`admin_password` is the superuser ``vault``'s (OpenBao's connection)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.home = Path(tempfile.mkdtemp(prefix="spark-secrets-postgres-"))
        self.data = self.home / "data"
        self.port = free_port()
        self.admin_user = "vault"
        self.admin_password = random.token_urlsafe(18)
        self.daemon = Daemon("postgres", [], workdir)

    def __repr__(self) -> str:
        return f"Postgres(127.0.0.1:{self.port})"

    def _as_postgres(self) -> list[str]:
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            shutil.chown(self.home, "postgres", "postgres")
        except LookupError:
            raise TestbedError("no postgres system user", HINT) from None
        os.chmod(self.home, 0o700)
        if not self.data.exists():
            pwfile = self.home / "pw"
            pwfile.write_text(self.admin_password + "\n")
            shutil.chown(pwfile, "postgres", "postgres")
            proc = subprocess.run([*self._as_postgres(), _bin("initdb"), "-D", str(self.data), "-U", self.admin_user,
                                   f"--pwfile={pwfile}", "--auth=scram-sha-256", "--no-sync"],
                                  capture_output=True, text=True)
            pwfile.unlink()
            if proc.returncode != 0:
                raise TestbedError("initdb failed", proc.stderr[-500:])
        self.daemon.argv = [*self._as_postgres(), _bin("postgres"), "-D", str(self.data), "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.home}",
                            "-c", "fsync=off"]
        self.daemon.start()
        self.daemon.wait_until(lambda: port_open(self.port), 60, "listening")

    def stop(self) -> None:
        self.daemon.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def connection_url(self) -> str:
        """OpenBao's template: it fills in the admin's name and password itself."""
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def login(self, user: str, password: str) -> str:
        """Logs in as ``user`` with ``password`` and runs ``select current_user``: its answer, or raises
        TestbedError with the server's reason (as a job's client would meet it)."""
        proc = subprocess.run([_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", "postgres",
                               "-tAc", "select current_user"], env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise TestbedError(f"PostgreSQL refused {user}", proc.stderr.strip()[-300:])
        return proc.stdout.strip()
