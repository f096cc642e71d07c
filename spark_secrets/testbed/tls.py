"""The secure HDFS's TLS material: a self-signed ``localhost`` certificate in a Java keystore, its PEM
form (what ``requests``' ``verify=`` takes) and a Java truststore holding it, made by ``keytool``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import java_home

STORE_PASSWORD = "testbed-store"  # guards throwaway test-bed keystores only


def make_tls_stores(keystore: Path, truststore: Path, ca_cert: Path) -> None:
    """The three files, unless the truststore (written last) is there already."""
    if truststore.exists():
        return
    keystore.parent.mkdir(parents=True, exist_ok=True)
    keytool = str(java_home() / "bin" / "keytool")
    store = ["-storepass", STORE_PASSWORD, "-storetype", "jks"]
    steps = [
        [keytool, "-genkeypair", "-alias", "localhost", "-keyalg", "RSA", "-keysize", "2048", "-validity", "30",
         "-dname", "CN=localhost", "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-ext", "BC:c=ca:true",
         "-keystore", str(keystore), "-keypass", STORE_PASSWORD, *store],
        [keytool, "-exportcert", "-rfc", "-alias", "localhost", "-keystore", str(keystore), "-file", str(ca_cert), *store],
        [keytool, "-importcert", "-noprompt", "-alias", "localhost", "-file", str(ca_cert), "-keystore", str(truststore),
         *store],
    ]
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise TestbedError(f"keytool {argv[1]} failed", (proc.stdout + proc.stderr).decode(errors="replace")[-500:])
