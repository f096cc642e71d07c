"""The ``spark.secrets.*`` settings the submission steps read, validated up front.

Settings are read from the Spark conf at call time (``--conf`` flags, ``spark-defaults.conf``,
properties files), never from the environment at import time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from spark_secrets.duration import parse_duration
from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.conf import FILESYSTEM_SCHEMES, HadoopConf
from spark_secrets.secrets.jobsecret import SUFFIX as JOB_SECRETS_SUFFIX
from spark_secrets.tokens.metastore import Metastore
from spark_secrets.jobsecrets.reference import JobSecret, parse_job_secret
from spark_secrets.secrets.tokensecret import DEFAULT_TOKEN_KEY

PREFIX = "spark.secrets."
#: Spark's own list of filesystems to obtain tokens for (used when ours is not set).
SPARK_FILESYSTEMS = "spark.kerberos.access.hadoopFileSystems"
#: Where Spark's own Kerberos step mounts an existing token Secret in the driver.
SPARK_CREDENTIALS_DIR = "/mnt/secrets/hadoop-credentials"
LAYOUTS = ("none", "namespace-per-user", "group", "precreated", "controller")
#: Where the driver runs; ``spark-submit --deploy-mode`` sets it (see :func:`submit_steps.sparkconf.conf_from_submit_args`).
DEPLOY_MODE = "spark.submit.deployMode"
#: The ending of the token Secret's generated name.
TOKEN_SECRET_SUFFIX = "-hadoop-tokens"
#: Kubernetes' longest object name (a DNS subdomain).
NAME_MAX = 253


@dataclass(frozen=True)
class Setting:
    key: str
    default: str | None
    doc: str


#: Every setting, in the order the README's table lists them.
SETTINGS: tuple[Setting, ...] = (
    Setting("spark.secrets.enabled", "true", "Run the submission steps at all."),
    Setting("spark.secrets.hadoop.filesystems", None,
            "Comma-separated filesystems to obtain delegation tokens for: `hdfs://<nameservice>` (HA: every "
            "NameNode in `HADOOP_CONF_DIR` is tried, standbys skipped), `hdfs://host:port`, `webhdfs://`, "
            "`swebhdfs://`, or a NameNode's WebHDFS address `http(s)://host:port`. Default: Spark's "
            "`spark.kerberos.access.hadoopFileSystems`. Without either, no tokens are obtained and no Secret is made."),
    Setting("spark.secrets.hadoop.caBundle", None,
            "PEM file of CA certificates to trust for HTTPS NameNodes. Default: the system's (`REQUESTS_CA_BUNDLE` honoured)."),
    Setting("spark.secrets.hive.metastoreUris", None,
            "Comma-separated `thrift://host:port` of a Kerberized Hive metastore to obtain a delegation token from "
            "(tried in turn). Default: `spark.hadoop.hive.metastore.uris`, else `hive.metastore.uris` from "
            "`hive-site.xml` in `HADOOP_CONF_DIR`; `none` obtains no Hive token."),
    Setting("spark.secrets.hive.principal", None,
            "The metastore's Kerberos principal (`_HOST` = each URI's host). Default: "
            "`spark.hadoop.hive.metastore.kerberos.principal`, else `hive.metastore.kerberos.principal` "
            "from `hive-site.xml`."),
    Setting("spark.secrets.renewer", None,
            "Principal (or short name) of the renew service, set as the tokens' renewer. Default: the "
            "submitting user, who can then renew and cancel them with `spark-secrets tokens`."),
    Setting("spark.secrets.renewService.lease", "spark-secrets-system/spark-secrets-renewer",
            "`namespace/name` of the renew service's Lease (its `--lease`), where `spark-secrets doctor` reads "
            "whether the service runs, its principal and its Kubernetes identity."),
    Setting("spark.secrets.ticket.minLifetime", "5min",
            "Refuse to submit when the TGT expires sooner than this (units s, min, h, d)."),
    Setting("spark.secrets.layout", "none",
            "The cluster's RBAC layout (`spark-secrets rbac`), whose conventions fill unset settings: "
            "`namespace-per-user` (namespace `spark-<user>`, driver account `spark`), `group` (driver account "
            "`spark`), `precreated` (driver account `spark-<user>`; fills the admin's Secret "
            "`hadoop-tokens-<user>` instead of creating one), `controller` (driver account `spark-<user>`, "
            "named on the Secret for the renew service to grant it read access), or `none`. All but "
            "`namespace-per-user` need `spark.kubernetes.namespace`."),
    Setting("spark.secrets.layout.user", None,
            "The `<user>` in the layout's names. Default: the short name of your Kerberos principal."),
    Setting("spark.secrets.secret.name", None,
            "Name of the token Secret. Default: derived from the app name plus a random suffix."),
    Setting("spark.secrets.secret.key", DEFAULT_TOKEN_KEY, "Key of the token file inside the Secret."),
    Setting("spark.secrets.tokenFile.format", "0",
            "Token-file format: 0 = Writable (Hadoop 2 and 3), 1 = protobuf (Hadoop 3 only)."),
    Setting("spark.secrets.renewInterval", None,
            "The token servers' renew interval, used only to estimate the first expiry annotation (the renew "
            "service renews each token at first sight and records the real expiry). Default: "
            "`dfs.namenode.delegation.token.renew-interval` from `HADOOP_CONF_DIR` when set there, else `1d`."),
    Setting("spark.secrets.plugin.jar", None,
            "Path of the token refresher plugin jar inside the driver and executor images (`local://` accepted), "
            "put on their class path with `spark.plugins` set. A driver running here uses the installed jar "
            "(`spark-secrets jar`). Without it in cluster mode the plugin is left out; `none` always leaves it out."),
    Setting("spark.secrets.refresh.enabled", "true", "Plugin: re-read the token file in driver and executors."),
    Setting("spark.secrets.refresh.tokenFile", None,
            "Plugin: the token file to re-read. Default: `HADOOP_TOKEN_FILE_LOCATION`."),
    Setting("spark.secrets.refresh.ratio", "0.75",
            "Plugin: re-read at the latest after this fraction of the earliest token's remaining lifetime."),
    Setting("spark.secrets.refresh.pollInterval", "10s",
            "Plugin: re-read at least this often; `0` = only on change events and the lifetime deadline."),
    Setting("spark.secrets.refresh.maxBackoff", "60s",
            "Plugin: longest wait between retries after a missing or unreadable token file."),
    Setting("spark.secrets.refresh.watch", "true",
            "Plugin: watch the token file's directory (inotify) to pick up kubelet's swap at once."),
    Setting("spark.secrets.file.<name>", None,
            "A job secret as the file `<name>` in the job-secrets directory of the driver and every executor, "
            "from a reference: `vault:<mount>/<path>#<field>` (OpenBao/Vault KV v2, `@<version>` pins), "
            "`k8s:<secret>#<key>` (a Secret in the job's namespace, mounted, not copied), `file:<local path>` "
            "or `env:<LOCAL_VAR>` (read here). Never the value itself."),
    Setting("spark.secrets.env.<VAR>", None,
            "A job secret as the environment variable `<VAR>` of the driver and every executor (from a Secret "
            "with `secretKeyRef`, never a literal), from a reference as for `spark.secrets.file.<name>`."),
    Setting("spark.secrets.dir", "/mnt/secrets/spark-secrets",
            "The job-secrets directory inside the pods (a Secret volume, in memory); Python code finds it "
            "through `SPARK_SECRETS_DIR` and reads secrets with `spark_secrets.runtime.secret(name)`."),
    Setting("spark.secrets.dir.fsGroup", "185",
            "The group of the job-secret files in the pods. `spark-secrets submit` and notebooks mount them "
            "from a pod template they write (merged into yours): mode 0440, owner root, this group, which "
            "Kubernetes adds to the pod's processes (`securityContext.fsGroup`), so other users in the container "
            "cannot read them. 185 is the group of Spark images' `spark` user; your template's own fsGroup wins. "
            "`none`, `spark-secrets conf` and the `properties` and `spark-operator` renderings use Spark's own "
            "secret mounts instead (mode 0644)."),
    Setting("spark.secrets.vault.address", None,
            "OpenBao/Vault address for `vault:` references. Default: `VAULT_ADDR`, else `BAO_ADDR`."),
    Setting("spark.secrets.vault.namespace", None,
            "OpenBao/Vault namespace. Default: `VAULT_NAMESPACE`, else `BAO_NAMESPACE`, else none."),
    Setting("spark.secrets.vault.caCert", None,
            "PEM file of the CA that signed OpenBao/Vault's certificate. Default: `VAULT_CACERT`, else the system's."),
    Setting("spark.secrets.vault.auth", "auto",
            "How the submitter logs in: `token` (`VAULT_TOKEN`/`BAO_TOKEN`, else `~/.vault-token`, as the CLI "
            "leaves it), `kubernetes` (the pod's service-account token, role `spark.secrets.vault.role`), "
            "`approle` (`VAULT_ROLE_ID` and `VAULT_SECRET_ID` from the environment) or `auto` (in that order)."),
    Setting("spark.secrets.vault.role", None, "The Kubernetes auth role, for `spark.secrets.vault.auth=kubernetes`."),
    Setting("spark.secrets.vault.authMount", None,
            "The auth method's mount path. Default: `kubernetes` or `approle`."),
    Setting("spark.secrets.steps", "",
            "Comma-separated dotted paths of extra step classes, run after the default steps."),
)
#: Settings named by a job secret's name (their rows in SETTINGS show the pattern).
JOB_SECRET_PREFIXES = ("spark.secrets.file.", "spark.secrets.env.")
_KNOWN = {s.key for s in SETTINGS if not s.key.endswith(">")}
_DEFAULTS = {s.key: s.default for s in SETTINGS}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def name_base(app_name: str) -> str:
    """``app_name`` made the start of a Kubernetes name: lowercase letters, digits and '-', at most 200."""
    return re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")[:200] or "spark"


def _bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{key}={text!r} is not a boolean", "use true or false")
    return lowered == "true"


@dataclass(frozen=True)
class Settings:
    """The validated view of a Spark conf that the steps use: every value is parsed (and checked) once,
    when the settings are made, and kept."""

    conf: Mapping[str, str]

    def __post_init__(self) -> None:
        unknown = sorted(k for k in self.conf if k.startswith(PREFIX) and k not in _KNOWN
                         and not k.startswith(JOB_SECRET_PREFIXES))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]}",
                              f"known {PREFIX}* settings are: {', '.join(sorted(_KNOWN))}")
        # Touch every property once so bad values fail before anything happens.
        _ = (self.enabled, self.filesystems, self.ca_bundle, self.min_ticket_lifetime, self.secret_key, self.token_file_format,
             self.renew_interval, self.secret_name, self.user_steps, self.plugin_jar, self._refresh_values(),
             self.layout, self.layout_user, self.renew_service_lease, self.job_secrets, self.secrets_dir,
             self.secrets_fs_group)
        if any(k.startswith(("spark.secrets.hive.", "spark.hadoop.hive.metastore.")) for k in self.conf):
            _ = self.hive_metastore  # given here: checked now (else hive-site.xml is read when first needed)

    def get(self, key: str) -> str | None:
        value = self.conf.get(key)
        return value if value not in (None, "") else _DEFAULTS.get(key)

    def _value(self, key: str) -> str:
        """A setting whose default is in :data:`SETTINGS`, so it always has a value."""
        value = self.get(key)
        assert value is not None, f"{key} has no default in SETTINGS"
        return value

    @cached_property
    def enabled(self) -> bool:
        return _bool("spark.secrets.enabled", self._value("spark.secrets.enabled"))

    @cached_property
    def filesystems(self) -> tuple[str, ...]:
        key = "spark.secrets.hadoop.filesystems"
        raw = self.get(key) or self.conf.get(SPARK_FILESYSTEMS) or ""
        urls = tuple(u.strip().rstrip("/") for u in raw.split(",") if u.strip())
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in FILESYSTEM_SCHEMES or not parts.hostname:
                raise ConfigError(f"{key}: {url!r} is not a filesystem Hadoop issues tokens for",
                                  "give hdfs://<nameservice or host:port>, webhdfs://, swebhdfs:// or "
                                  "http(s)://<namenode>:<port>")
        return urls

    @property
    def wants_tokens(self) -> bool:
        """Whether the job gets a token Secret: filesystems or a metastore to obtain tokens from."""
        return bool(self.filesystems) or self.hive_metastore is not None

    @cached_property
    def job_secrets(self) -> tuple[JobSecret, ...]:
        """The job's ``spark.secrets.file.*`` and ``spark.secrets.env.*``, parsed (no value read yet)."""
        return tuple(parse_job_secret(k, v) for k, v in sorted(self.conf.items()) if k.startswith(JOB_SECRET_PREFIXES))

    @cached_property
    def secrets_dir(self) -> str:
        value = self._value("spark.secrets.dir").rstrip("/")
        if not value.startswith("/") or value in ("", "/") or SPARK_CREDENTIALS_DIR.startswith(value + "/"):
            raise ConfigError(f"spark.secrets.dir={value!r} cannot hold the job's secrets",
                              "give an absolute directory of its own, e.g. /mnt/secrets/spark-secrets")
        return value

    @cached_property
    def secrets_fs_group(self) -> int | None:
        """The fsGroup for job-secret files, or None (``none``: Spark's own mounts)."""
        key = "spark.secrets.dir.fsGroup"
        value = self._value(key).strip()
        if value.lower() == "none":
            return None
        if not value.isdigit() or int(value) > 2**31 - 1:
            raise ConfigError(f"{key}={value!r} is not a group ID", "give a number such as 185, or none")
        return int(value)

    @property
    def secrets_fs_group_given(self) -> bool:
        """Whether the user set the fsGroup (then it must agree with a pod template's own)."""
        return bool(self.conf.get("spark.secrets.dir.fsGroup"))

    def vault_setting(self, name: str) -> str | None:
        """``spark.secrets.vault.<name>``, for :meth:`spark_secrets.jobsecrets.vault.VaultConfig.from_settings`."""
        return self.get(f"spark.secrets.vault.{name}")

    def _hive_conf(self, key: str) -> str | None:
        """A Hive client setting as Spark gives it to Hive: ``spark.hadoop.<key>``, else ``hive-site.xml``."""
        return self.conf.get(f"spark.hadoop.{key}") or self.hadoop_conf.get(key) or None

    @cached_property
    def hive_metastore(self) -> Metastore | None:
        """The Kerberized metastore to obtain a token from, or None (no URIs, or ``none``)."""
        uris = self.get("spark.secrets.hive.metastoreUris") or self._hive_conf("hive.metastore.uris") or ""
        if not uris.strip() or uris.strip().lower() == "none":
            return None
        principal = self.get("spark.secrets.hive.principal") or self._hive_conf("hive.metastore.kerberos.principal")
        return Metastore.parse(uris, principal, self._hive_conf("hive.metastore.token.signature"))

    @cached_property
    def ca_bundle(self) -> str | bool:
        """``verify=`` for HTTPS NameNodes: a PEM path, or True for the system's CAs."""
        path = self.get("spark.secrets.hadoop.caBundle")
        if path is None:
            return True
        if not os.path.isfile(path):
            raise ConfigError(f"spark.secrets.hadoop.caBundle={path!r} is not a file",
                              "give a PEM file of CA certificates")
        return path

    @cached_property
    def layout(self) -> str:
        value = self._value("spark.secrets.layout").strip()
        if value not in LAYOUTS:
            raise ConfigError(f"spark.secrets.layout={value!r} is not a layout", f"use one of {', '.join(LAYOUTS)}")
        return value

    @cached_property
    def layout_user(self) -> str | None:
        value = self.get("spark.secrets.layout.user")
        if value is not None and not _DNS_LABEL.match(value):
            raise ConfigError(f"spark.secrets.layout.user={value!r} cannot be part of Kubernetes names",
                              "use lowercase letters, digits and '-'")
        return value

    @cached_property
    def renewer(self) -> str | None:
        return self.get("spark.secrets.renewer")

    @cached_property
    def renew_service_lease(self) -> tuple[str, str]:
        value = self._value("spark.secrets.renewService.lease").strip()
        namespace, _, name = value.partition("/")
        if not (_DNS_LABEL.fullmatch(namespace) and _DNS_SUBDOMAIN.fullmatch(name)):
            raise ConfigError(f"spark.secrets.renewService.lease={value!r} is not namespace/name",
                              "give the --lease of the renew service, e.g. spark-secrets-system/spark-secrets-renewer")
        return namespace, name

    @cached_property
    def min_ticket_lifetime(self) -> dt.timedelta:
        return parse_duration("spark.secrets.ticket.minLifetime", self._value("spark.secrets.ticket.minLifetime"))

    @cached_property
    def renew_interval(self) -> dt.timedelta | None:
        """The configured renew interval, or None when unset."""
        value = self.get("spark.secrets.renewInterval")
        return None if value is None else parse_duration("spark.secrets.renewInterval", value)

    @cached_property
    def secret_name(self) -> str | None:
        name = self.get("spark.secrets.secret.name")
        if name is not None and (len(name) > 253 or not all(_DNS_LABEL.match(p) for p in name.split("."))):
            raise ConfigError(f"spark.secrets.secret.name={name!r} is not a valid Kubernetes name",
                              "use lowercase letters, digits, '-' and '.', at most 253 characters")
        return name

    @cached_property
    def secret_key(self) -> str:
        key = self._value("spark.secrets.secret.key")
        if not re.match(r"^[-._a-zA-Z0-9]+$", key) or len(key) > 253:
            raise ConfigError(f"spark.secrets.secret.key={key!r} is not a valid Secret key",
                              "use letters, digits, '-', '_' and '.'")
        return key

    @cached_property
    def token_file_format(self) -> int:
        value = self._value("spark.secrets.tokenFile.format")
        if value not in ("0", "1"):
            raise ConfigError(f"spark.secrets.tokenFile.format={value!r}", "use 0 (Writable) or 1 (protobuf)")
        return int(value)

    @cached_property
    def plugin_jar(self) -> str | None:
        """The plugin jar's path inside the images, ``"none"``, or None when not given."""
        value = self.get("spark.secrets.plugin.jar")
        if value is None or value.strip().lower() == "none":
            return value and "none"
        path = value.strip().removeprefix("local://")
        if "://" in path or not path.startswith("/"):
            raise ConfigError(f"spark.secrets.plugin.jar={value!r} is not a path inside the images",
                              "give an absolute path or local:///path/to/spark-secrets-plugin.jar")
        return path

    def _refresh_values(self) -> tuple[object, ...]:
        """The plugin's settings are read by the JVM; check their form here, before submitting."""
        ratio_text = self._value("spark.secrets.refresh.ratio")
        try:
            ratio = float(ratio_text)
        except ValueError:
            ratio = -1.0
        if not 0 < ratio < 1:
            raise ConfigError(f"spark.secrets.refresh.ratio={ratio_text!r}", "use a fraction between 0 and 1, e.g. 0.75")
        return (ratio, _bool("spark.secrets.refresh.enabled", self._value("spark.secrets.refresh.enabled")),
                _bool("spark.secrets.refresh.watch", self._value("spark.secrets.refresh.watch")),
                *(parse_duration(k, self._value(k)) for k in ("spark.secrets.refresh.pollInterval",
                                                                  "spark.secrets.refresh.maxBackoff")))

    @cached_property
    def refresh_enabled(self) -> bool:
        """Whether the plugin re-reads the token file (``spark.secrets.refresh.enabled``)."""
        return bool(self._refresh_values()[1])

    @cached_property
    def user_steps(self) -> tuple[str, ...]:
        raw = self.get("spark.secrets.steps") or ""
        return tuple(s.strip() for s in raw.split(",") if s.strip())

    @cached_property
    def hadoop_conf(self) -> HadoopConf:
        """The Hadoop client configuration (``HADOOP_CONF_DIR``), read once for every step that needs it."""
        return HadoopConf.load()

    # -- Spark's own settings the steps depend on --------------------------------------------------
    @cached_property
    def app_name(self) -> str:
        return self.conf.get("spark.app.name") or "spark"

    @cached_property
    def namespace(self) -> str:
        return self.conf.get("spark.kubernetes.namespace") or "default"

    @cached_property
    def deploy_mode(self) -> str:
        """Where the driver runs, decided here once for every step and the submission: ``cluster`` (a driver
        pod) when ``spark.submit.deployMode`` (where ``--deploy-mode`` goes) says so, else ``client`` (this
        machine), Spark's own default when neither is given."""
        return "cluster" if self.conf.get(DEPLOY_MODE) == "cluster" else "client"

    @property
    def cluster_mode(self) -> bool:
        """Whether the driver runs in a pod (:attr:`deploy_mode` ``cluster``)."""
        return self.deploy_mode == "cluster"

    # -- the names of the job's Secrets -----------------------------------------------------------
    @cached_property
    def secret_stem(self) -> str:
        """What the names of both of the job's Secrets start with, chosen once so that they share it:
        ``spark.secrets.secret.name`` without a ``-hadoop-tokens`` ending, else the app name (DNS-safe) and
        8 random hex digits. A layout's ``<user>--`` owner prefix goes before both (the steps add it)."""
        if self.secret_name is not None:
            return self.secret_name.removesuffix(TOKEN_SECRET_SUFFIX)
        return f"{name_base(self.app_name)}-{random.token_hex(4)}"

    @cached_property
    def token_secret_name(self) -> str:
        """The token Secret's name: ``spark.secrets.secret.name`` as given, else ``<stem>-hadoop-tokens``."""
        return self.secret_name or f"{self.secret_stem}{TOKEN_SECRET_SUFFIX}"

    @cached_property
    def job_secrets_name(self) -> str:
        """The job-secrets Secret's name: ``<stem>-job-secrets`` (the stem shortened to fit 253 characters)."""
        stem = self.secret_stem[:NAME_MAX - len(JOB_SECRETS_SUFFIX)].rstrip("-.")
        return f"{stem}{JOB_SECRETS_SUFFIX}"


def settings_table() -> str:
    """The Markdown table of every setting (the README embeds it)."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.key}` | {f'`{s.default}`' if s.default else '—'} | {s.doc} |" for s in SETTINGS]
    return "\n".join(rows)
