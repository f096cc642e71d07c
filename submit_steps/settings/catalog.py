"""Every ``spark.secrets.*`` setting, grouped by the feature that reads it, with its parser and check.

The README's settings table is generated from :data:`SETTINGS` (``settings_table``), and the settings
are validated by walking it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.conf import FILESYSTEM_SCHEMES
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY
from submit_steps.settings.registry import (DNS_LABEL, DNS_SUBDOMAIN, Setting, boolean, duration, fraction, listed,
                                            no_check, one_of, optional, required, text)

#: Spark's own list of filesystems to obtain tokens for (used when ours is not set).
SPARK_FILESYSTEMS = "spark.kerberos.access.hadoopFileSystems"
#: Where Spark's own Kerberos step mounts an existing token Secret in the driver.
SPARK_CREDENTIALS_DIR = "/mnt/secrets/hadoop-credentials"
LAYOUTS = ("none", "namespace-per-user", "group", "precreated", "controller")


# -- parsers of single settings -------------------------------------------------------------------
def filesystems(key: str, value: str) -> tuple[str, ...]:
    urls = tuple(u.strip().rstrip("/") for u in value.split(",") if u.strip())
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in FILESYSTEM_SCHEMES or not parts.hostname:
            raise ConfigError(f"spark.secrets.hadoop.filesystems: {url!r} is not a filesystem Hadoop issues tokens for",
                              "give hdfs://<nameservice or host:port>, webhdfs://, swebhdfs:// or "
                              "http(s)://<namenode>:<port>")
    return urls


def ca_bundle(key: str, value: str | None) -> str | bool:
    """``verify=`` for HTTPS NameNodes: a PEM path, or True for the system's CAs."""
    if value is None:
        return True
    if not os.path.isfile(value):
        raise ConfigError(f"{key}={value!r} is not a file", "give a PEM file of CA certificates")
    return value


def lease(key: str, value: str) -> tuple[str, str]:
    value = value.strip()
    namespace, _, name = value.partition("/")
    if not (DNS_LABEL.fullmatch(namespace) and DNS_SUBDOMAIN.fullmatch(name)):
        raise ConfigError(f"{key}={value!r} is not namespace/name",
                          "give the --lease of the renew service, e.g. spark-secrets-system/spark-secrets-renewer")
    return namespace, name


def layout_user(key: str, value: str) -> str:
    if not DNS_LABEL.match(value):
        raise ConfigError(f"{key}={value!r} cannot be part of Kubernetes names", "use lowercase letters, digits and '-'")
    return value


def secret_name(key: str, value: str) -> str:
    if len(value) > 253 or not all(DNS_LABEL.match(p) for p in value.split(".")):
        raise ConfigError(f"{key}={value!r} is not a valid Kubernetes name",
                          "use lowercase letters, digits, '-' and '.', at most 253 characters")
    return value


def secret_key(key: str, value: str) -> str:
    if not re.match(r"^[-._a-zA-Z0-9]+$", value) or len(value) > 253:
        raise ConfigError(f"{key}={value!r} is not a valid Secret key", "use letters, digits, '-', '_' and '.'")
    return value


def token_file_format(key: str, value: str) -> int:
    if value not in ("0", "1"):
        raise ConfigError(f"{key}={value!r}", "use 0 (Writable) or 1 (protobuf)")
    return int(value)


def plugin_jar(key: str, value: str | None) -> str | None:
    """The plugin jar's path inside the images, ``"none"``, or None when not given."""
    if value is None or value.strip().lower() == "none":
        return value and "none"
    path = value.strip().removeprefix("local://")
    if "://" in path or not path.startswith("/"):
        raise ConfigError(f"{key}={value!r} is not a path inside the images",
                          "give an absolute path or local:///path/to/spark-secrets-plugin.jar")
    return path


def secrets_dir(key: str, value: str) -> str:
    value = value.rstrip("/")
    if not value.startswith("/") or value in ("", "/") or SPARK_CREDENTIALS_DIR.startswith(value + "/"):
        raise ConfigError(f"{key}={value!r} cannot hold the job's secrets",
                          "give an absolute directory of its own, e.g. /mnt/secrets/spark-secrets")
    return value


def fs_group(key: str, value: str) -> int | None:
    """The fsGroup for job-secret files, or None (``none``: Spark's own mounts)."""
    value = value.strip()
    if value.lower() == "none":
        return None
    if not value.isdigit() or int(value) > 2**31 - 1:
        raise ConfigError(f"{key}={value!r} is not a group ID", "give a number such as 185, or none")
    return int(value)


# -- submission ------------------------------------------------------------------------------------------
ENABLED = Setting("spark.secrets.enabled", "true", "Run the submission steps at all.",
    parse=required(boolean), group="submission")
STEPS = Setting("spark.secrets.steps", "",
    "Comma-separated dotted paths of extra step classes, run after the default steps.",
    parse=listed, group="submission")

# -- tokens ----------------------------------------------------------------------------------------------
HADOOP_FILESYSTEMS = Setting("spark.secrets.hadoop.filesystems", None,
    "Comma-separated filesystems to obtain delegation tokens for: `hdfs://<nameservice>` (HA: every "
    "NameNode in `HADOOP_CONF_DIR` is tried, standbys skipped), `hdfs://host:port`, `webhdfs://`, "
    "`swebhdfs://`, or a NameNode's WebHDFS address `http(s)://host:port`. Default: Spark's "
    "`spark.kerberos.access.hadoopFileSystems`. Without either, no tokens are obtained and no Secret is made.",
    parse=optional(filesystems), group="tokens", fallback=SPARK_FILESYSTEMS)
HADOOP_CA_BUNDLE = Setting("spark.secrets.hadoop.caBundle", None,
    "PEM file of CA certificates to trust for HTTPS NameNodes and KMS. Default: the system's CA store "
    "(`REQUESTS_CA_BUNDLE`, else `SSL_CERT_FILE`, honoured).",
    parse=ca_bundle, group="tokens")
HIVE_METASTORE_URIS = Setting("spark.secrets.hive.metastoreUris", None,
    "Comma-separated `thrift://host:port` of a Kerberized Hive metastore to obtain a delegation token from "
    "(tried in turn). Default: `spark.hadoop.hive.metastore.uris`, else `hive.metastore.uris` from "
    "`hive-site.xml` in `HADOOP_CONF_DIR`; `none` obtains no Hive token.",
    parse=text, group="tokens", eager=False)
HIVE_PRINCIPAL = Setting("spark.secrets.hive.principal", None,
    "The metastore's Kerberos principal (`_HOST` = each URI's host). Default: "
    "`spark.hadoop.hive.metastore.kerberos.principal`, else `hive.metastore.kerberos.principal` "
    "from `hive-site.xml`.",
    parse=text, group="tokens", eager=False)
RENEWER = Setting("spark.secrets.renewer", None,
    "Principal (or short name) of the renew service, set as the tokens' renewer. Default: the "
    "submitting user, who can then renew and cancel them with `spark-secrets tokens`.",
    parse=text, group="tokens")
TICKET_MIN_LIFETIME = Setting("spark.secrets.ticket.minLifetime", "5min",
    "Refuse to submit when the TGT expires sooner than this (units s, min, h, d).",
    parse=required(duration), group="tokens")

# -- renew -----------------------------------------------------------------------------------------------
RENEW_SERVICE_LEASE = Setting("spark.secrets.renewService.lease", "spark-secrets-system/spark-secrets-renewer",
    "`namespace/name` of the renew service's Lease (its `--lease`), where `spark-secrets doctor` reads "
    "whether the service runs, its principal and its Kubernetes identity.",
    parse=required(lease), group="renew")
RENEW_INTERVAL = Setting("spark.secrets.renewInterval", None,
    "The token servers' renew interval, used only to estimate the first expiry annotation (the renew "
    "service renews each token at first sight and records the real expiry). Default: "
    "`dfs.namenode.delegation.token.renew-interval` from `HADOOP_CONF_DIR` when set there, else `1d`.",
    parse=optional(duration), group="renew")

# -- layout ----------------------------------------------------------------------------------------------
LAYOUT = Setting("spark.secrets.layout", "none",
    "The cluster's RBAC layout (`spark-secrets rbac`), whose conventions fill unset settings: "
    "`namespace-per-user` (namespace `spark-<user>`, driver account `spark`), `group` (driver account "
    "`spark`), `precreated` (driver account `spark-<user>`; fills the admin's Secret "
    "`hadoop-tokens-<user>` instead of creating one), `controller` (driver account `spark-<user>`, "
    "named on the Secret for the renew service to grant it read access), or `none`. All but "
    "`namespace-per-user` need `spark.kubernetes.namespace`.",
    parse=required(one_of(*LAYOUTS, what="a layout")), group="layout")
LAYOUT_USER = Setting("spark.secrets.layout.user", None,
    "The `<user>` in the layout's names. Default: the short name of your Kerberos principal.",
    parse=optional(layout_user), group="layout")

# -- secret ----------------------------------------------------------------------------------------------
SECRET_NAME = Setting("spark.secrets.secret.name", None,
    "Name of the token Secret. Default: derived from the app name plus a random suffix.",
    parse=optional(secret_name), group="secret")
SECRET_KEY = Setting("spark.secrets.secret.key", DEFAULT_TOKEN_KEY, "Key of the token file inside the Secret.",
    parse=required(secret_key), group="secret")
TOKEN_FILE_FORMAT = Setting("spark.secrets.tokenFile.format", "0",
    "Token-file format: 0 = Writable (Hadoop 2 and 3), 1 = protobuf (Hadoop 3 only).",
    parse=required(token_file_format), group="secret")

# -- plugin ----------------------------------------------------------------------------------------------
PLUGIN_JAR = Setting("spark.secrets.plugin.jar", None,
    "Path of the token refresher plugin jar inside the driver and executor images (`local://` accepted), "
    "put on their class path with `spark.plugins` set. A driver running here uses the installed jar "
    "(`spark-secrets jar`). Without it in cluster mode the plugin is left out; `none` always leaves it out.",
    parse=plugin_jar, group="plugin")
REFRESH_ENABLED = Setting("spark.secrets.refresh.enabled", "true", "Plugin: re-read the token file in driver and executors.",
    parse=required(boolean), group="plugin")
REFRESH_TOKEN_FILE = Setting("spark.secrets.refresh.tokenFile", None,
    "Plugin: the token file to re-read. Default: `HADOOP_TOKEN_FILE_LOCATION`.",
    parse=text, group="plugin")
REFRESH_RATIO = Setting("spark.secrets.refresh.ratio", "0.75",
    "Plugin: re-read at the latest after this fraction of the earliest token's remaining lifetime.",
    parse=required(fraction), group="plugin")
REFRESH_POLL_INTERVAL = Setting("spark.secrets.refresh.pollInterval", "10s",
    "Plugin: re-read at least this often; `0` = only on change events and the lifetime deadline.",
    parse=required(duration), group="plugin")
REFRESH_MAX_BACKOFF = Setting("spark.secrets.refresh.maxBackoff", "60s",
    "Plugin: longest wait between retries after a missing or unreadable token file.",
    parse=required(duration), group="plugin")
REFRESH_WATCH = Setting("spark.secrets.refresh.watch", "true",
    "Plugin: watch the token file's directory (inotify) to pick up kubelet's swap at once.",
    parse=required(boolean), group="plugin")

# -- job secrets -----------------------------------------------------------------------------------------
FILE_NAME = Setting("spark.secrets.file.<name>", None,
    "A job secret as the file `<name>` in the job-secrets directory of the driver and every executor, "
    "from a reference: `vault:<mount>/<path>#<field>` (OpenBao/Vault KV v2, `@<version>` pins), "
    "`k8s:<secret>#<key>` (a Secret in the job's namespace, mounted, not copied), `file:<local path>` "
    "or `env:<LOCAL_VAR>` (read here). Never the value itself.",
    parse=no_check, group="job secrets")
ENV_VAR = Setting("spark.secrets.env.<VAR>", None,
    "A job secret as the environment variable `<VAR>` of the driver and every executor (from a Secret "
    "with `secretKeyRef`, never a literal), from a reference as for `spark.secrets.file.<name>`.",
    parse=no_check, group="job secrets")
DIR = Setting("spark.secrets.dir", "/mnt/secrets/spark-secrets",
    "The job-secrets directory inside the pods (a Secret volume, in memory); Python code finds it "
    "through `SPARK_SECRETS_DIR` and reads secrets with `spark_secrets.runtime.secret(name)`.",
    parse=required(secrets_dir), group="job secrets")
DIR_FS_GROUP = Setting("spark.secrets.dir.fsGroup", "185",
    "The group of the job-secret files in the pods. `spark-secrets submit`, notebooks and the "
    "`spark-operator` rendering mount them from a pod template they write (merged into yours; a "
    "SparkApplication's `spec.driver/executor.template`): mode 0440, owner root, this group, which "
    "Kubernetes adds to the pod's processes (`securityContext.fsGroup`), so other users in the container "
    "cannot read them. 185 is the group of Spark images' `spark` user; your template's own fsGroup wins. "
    "`none`, `spark-secrets conf` and the `properties` rendering use Spark's own "
    "secret mounts instead (mode 0644).",
    parse=required(fs_group), group="job secrets")

# -- connect ---------------------------------------------------------------------------------------------
def port(key: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{key}={value!r} is not a TCP port", "give a number from 1 to 65535")
    return int(value)


CONNECT_ADDRESSES = ("auto", "service", "pod")
CONNECT_IDLE_TIMEOUT = Setting("spark.secrets.connect.idleTimeout", "30min",
    "Your Spark Connect server (`connect()`, `spark-secrets connect`) stops after this long without a call, "
    "a running operation, a Spark job or a streaming query; its tokens are then cancelled with its Secret. "
    "Its tokens are kept alive until then, queries or not.",
    parse=required(duration), group="connect")
CONNECT_PORT = Setting("spark.secrets.connect.port", "15002",
    "The Connect server's gRPC port in its driver pod. Default: Spark's `spark.connect.grpc.binding.port`, else 15002.",
    parse=required(port), group="connect", fallback="spark.connect.grpc.binding.port")
CONNECT_ADDRESS = Setting("spark.secrets.connect.address", "auto",
    "How the notebook reaches its server: `service` (the driver's headless Service, `<name>.<namespace>.svc`: "
    "a notebook inside the cluster), `pod` (the driver pod's IP: a flat network) or `auto` (the Service name "
    "when it resolves here, else the pod IP).",
    parse=required(one_of(*CONNECT_ADDRESSES, what="an address kind")), group="connect")
CONNECT_START_TIMEOUT = Setting("spark.secrets.connect.startTimeout", "5min",
    "How long `connect()` waits for a new server to accept connections.",
    parse=required(duration), group="connect")

# -- vault -----------------------------------------------------------------------------------------------
VAULT_ADDRESS = Setting("spark.secrets.vault.address", None,
    "OpenBao/Vault address for `vault:` references. Default: `VAULT_ADDR`, else `BAO_ADDR`.",
    parse=text, group="vault")
VAULT_NAMESPACE = Setting("spark.secrets.vault.namespace", None,
    "OpenBao/Vault namespace. Default: `VAULT_NAMESPACE`, else `BAO_NAMESPACE`, else none.",
    parse=text, group="vault")
VAULT_CA_CERT = Setting("spark.secrets.vault.caCert", None,
    "PEM file of the CA that signed OpenBao/Vault's certificate. Default: `VAULT_CACERT`, else the system's.",
    parse=text, group="vault")
VAULT_AUTH = Setting("spark.secrets.vault.auth", "auto",
    "How the submitter logs in: `token` (`VAULT_TOKEN`/`BAO_TOKEN`, else `~/.vault-token`, as the CLI "
    "leaves it), `kubernetes` (the pod's service-account token, role `spark.secrets.vault.role`), "
    "`approle` (`VAULT_ROLE_ID` and `VAULT_SECRET_ID` from the environment) or `auto` (in that order).",
    parse=text, group="vault")
VAULT_ROLE = Setting("spark.secrets.vault.role", None, "The Kubernetes auth role, for `spark.secrets.vault.auth=kubernetes`.",
    parse=text, group="vault")
VAULT_AUTH_MOUNT = Setting("spark.secrets.vault.authMount", None,
    "The auth method's mount path. Default: `kubernetes` or `approle`.",
    parse=text, group="vault")

#: Every setting, in the order the README's table lists them.
SETTINGS: tuple[Setting[Any], ...] = (
    ENABLED, HADOOP_FILESYSTEMS, HADOOP_CA_BUNDLE, HIVE_METASTORE_URIS, HIVE_PRINCIPAL, RENEWER, RENEW_SERVICE_LEASE,
    TICKET_MIN_LIFETIME, LAYOUT, LAYOUT_USER, SECRET_NAME, SECRET_KEY, TOKEN_FILE_FORMAT, RENEW_INTERVAL, PLUGIN_JAR,
    REFRESH_ENABLED, REFRESH_TOKEN_FILE, REFRESH_RATIO, REFRESH_POLL_INTERVAL, REFRESH_MAX_BACKOFF, REFRESH_WATCH,
    FILE_NAME, ENV_VAR, DIR, DIR_FS_GROUP, VAULT_ADDRESS, VAULT_NAMESPACE, VAULT_CA_CERT, VAULT_AUTH, VAULT_ROLE,
    VAULT_AUTH_MOUNT, CONNECT_IDLE_TIMEOUT, CONNECT_PORT, CONNECT_ADDRESS, CONNECT_START_TIMEOUT, STEPS,
)
