"""What every Hadoop-side JVM of the test bed shares (NameNodes, DataNode, KMS, Hive metastore): the
Java 17 ``--add-opens``, the log4j configuration, ``*-site.xml`` writing, the server environment and
the delegation-token lifetimes the tests shorten."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from spark_secrets.testbed.kdc import Kdc
from spark_secrets.testbed.paths import java_home

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


@dataclass
class TokenLifetimes:
    """NameNode delegation-token timings in milliseconds (Hadoop's defaults: 1 d, 7 d, 1 d)."""

    renew_interval_ms: int = 86_400_000
    max_lifetime_ms: int = 604_800_000
    key_update_interval_ms: int = 86_400_000


def site_xml(props: Mapping[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n" for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


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
