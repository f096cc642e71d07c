"""The ``spark.secrets.*`` settings the submission steps read, validated up front.

Settings are read from the Spark conf at call time (``--conf`` flags, ``spark-defaults.conf``,
properties files), never from the environment at import time. Each one is a typed
:class:`~submit_steps.settings.registry.Setting` in :mod:`submit_steps.settings.catalog`, grouped by
feature; :class:`Settings` parses every one when it is made, by walking that registry.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets as random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.jobsecrets.reference import JobSecret, parse_job_secret
from spark_secrets.secrets.jobsecret import SUFFIX as JOB_SECRETS_SUFFIX
from spark_secrets.tokens.metastore import Metastore
from submit_steps.settings import catalog as c
from submit_steps.settings.catalog import LAYOUTS, SETTINGS, SPARK_CREDENTIALS_DIR, SPARK_FILESYSTEMS
from submit_steps.settings.registry import Setting

__all__ = ["DEPLOY_MODE", "JOB_SECRET_PREFIXES", "LAYOUTS", "NAME_MAX", "PREFIX", "SETTINGS", "SPARK_CREDENTIALS_DIR",
           "SPARK_FILESYSTEMS", "TOKEN_SECRET_SUFFIX", "Setting", "Settings", "name_base", "settings_table"]

T = TypeVar("T")
PREFIX = "spark.secrets."
#: Where the driver runs; ``spark-submit --deploy-mode`` sets it (see :func:`submit_steps.sparkconf.conf_from_submit_args`).
DEPLOY_MODE = "spark.submit.deployMode"
#: Spark's own default when neither ``--deploy-mode`` nor ``spark.submit.deployMode`` is given.
DEFAULT_DEPLOY_MODE = "client"


def deploy_mode_of(conf: Mapping[str, str]) -> str:
    """Where ``conf`` says the driver runs, Spark's default (client) when it does not say."""
    return "cluster" if conf.get(DEPLOY_MODE) == "cluster" else DEFAULT_DEPLOY_MODE
#: The ending of the token Secret's generated name.
TOKEN_SECRET_SUFFIX = "-hadoop-tokens"
#: Kubernetes' longest object name (a DNS subdomain).
NAME_MAX = 253
#: Settings named by a job secret's name (their rows in SETTINGS show the pattern).
JOB_SECRET_PREFIXES = ("spark.secrets.file.", "spark.secrets.env.")
_KNOWN = {s.key for s in SETTINGS if not s.pattern}


def name_base(app_name: str) -> str:
    """``app_name`` made the start of a Kubernetes name: lowercase letters, digits and '-', at most 200."""
    return re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")[:200] or "spark"


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
        for setting in SETTINGS:  # so that bad values fail before anything happens
            if setting.eager or any(k in self.conf for k in (setting.key, setting.fallback) if k):
                self.value(setting)
        _ = self.job_secrets
        if any(k.startswith(("spark.secrets.hive.", "spark.hadoop.hive.metastore.")) for k in self.conf):
            _ = self.hive_metastore  # given here: checked now (else hive-site.xml is read when first needed)

    @cached_property
    def _values(self) -> dict[str, Any]:
        return {}

    def value(self, setting: Setting[T]) -> T:
        """``setting``'s parsed value, parsed once."""
        if setting.key not in self._values:
            self._values[setting.key] = setting.read(self.conf)
        parsed: T = self._values[setting.key]
        return parsed

    def get(self, key: str) -> str | None:
        """A setting's text (its default when unset)."""
        setting = next((s for s in SETTINGS if s.key == key), None)
        return setting.raw(self.conf) if setting is not None else self.conf.get(key) or None

    # -- the submission ----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.value(c.ENABLED)

    @property
    def user_steps(self) -> tuple[str, ...]:
        return self.value(c.STEPS)

    # -- tokens ------------------------------------------------------------------------------------
    @property
    def filesystems(self) -> tuple[str, ...]:
        return self.value(c.HADOOP_FILESYSTEMS) or ()

    @property
    def wants_tokens(self) -> bool:
        """Whether the job gets a token Secret: some kind of token (filesystems, a metastore, ...) is wanted."""
        from spark_secrets.tokens.registry import providers

        return any(provider.required(self) for provider in providers())

    @property
    def ca_bundle(self) -> str | bool:
        """``verify=`` for HTTPS NameNodes: a PEM path, or True for the system's CAs."""
        return self.value(c.HADOOP_CA_BUNDLE)

    @property
    def renewer(self) -> str | None:
        return self.value(c.RENEWER)

    @property
    def min_ticket_lifetime(self) -> dt.timedelta:
        return self.value(c.TICKET_MIN_LIFETIME)

    def _hive_conf(self, key: str) -> str | None:
        """A Hive client setting as Spark gives it to Hive: ``spark.hadoop.<key>``, else ``hive-site.xml``."""
        return self.conf.get(f"spark.hadoop.{key}") or self.hadoop_conf.get(key) or None

    @cached_property
    def hive_metastore(self) -> Metastore | None:
        """The Kerberized metastore to obtain a token from, or None (no URIs, or ``none``)."""
        return Metastore.configured(self._hive_conf, self.value(c.HIVE_METASTORE_URIS), self.value(c.HIVE_PRINCIPAL))

    @cached_property
    def hadoop_conf(self) -> HadoopConf:
        """The Hadoop client configuration (``HADOOP_CONF_DIR``), read once for every step that needs it."""
        return HadoopConf.load()

    # -- the token Secret --------------------------------------------------------------------------
    @property
    def secret_name(self) -> str | None:
        return self.value(c.SECRET_NAME)

    @property
    def secret_key(self) -> str:
        return self.value(c.SECRET_KEY)

    @property
    def token_file_format(self) -> int:
        return self.value(c.TOKEN_FILE_FORMAT)

    # -- the RBAC layout ---------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        return self.value(c.LAYOUT)

    @property
    def layout_user(self) -> str | None:
        return self.value(c.LAYOUT_USER)

    # -- the renew service -------------------------------------------------------------------------
    @property
    def renew_service_lease(self) -> tuple[str, str]:
        return self.value(c.RENEW_SERVICE_LEASE)

    @property
    def renew_interval(self) -> dt.timedelta | None:
        """The configured renew interval, or None when unset."""
        return self.value(c.RENEW_INTERVAL)

    # -- the refresher plugin ----------------------------------------------------------------------
    @property
    def plugin_jar(self) -> str | None:
        """The plugin jar's path inside the images, ``"none"``, or None when not given."""
        return self.value(c.PLUGIN_JAR)

    @property
    def refresh_enabled(self) -> bool:
        """Whether the plugin re-reads the token file (``spark.secrets.refresh.enabled``)."""
        return self.value(c.REFRESH_ENABLED)

    # -- the job's secrets -------------------------------------------------------------------------
    @cached_property
    def job_secrets(self) -> tuple[JobSecret, ...]:
        """The job's ``spark.secrets.file.*`` and ``spark.secrets.env.*``, parsed (no value read yet)."""
        return tuple(parse_job_secret(k, v) for k, v in sorted(self.conf.items()) if k.startswith(JOB_SECRET_PREFIXES))

    @property
    def secrets_dir(self) -> str:
        return self.value(c.DIR)

    @property
    def secrets_fs_group(self) -> int | None:
        """The fsGroup for job-secret files, or None (``none``: Spark's own mounts)."""
        return self.value(c.DIR_FS_GROUP)

    @property
    def secrets_fs_group_given(self) -> bool:
        """Whether the user set the fsGroup (then it must agree with a pod template's own)."""
        return bool(self.conf.get(c.DIR_FS_GROUP.key))

    def vault_setting(self, name: str) -> str | None:
        """``spark.secrets.vault.<name>``, for :meth:`spark_secrets.jobsecrets.vault.VaultConfig.from_settings`."""
        return self.get(f"spark.secrets.vault.{name}")

    # -- Spark's own settings the steps depend on --------------------------------------------------
    @cached_property
    def app_name(self) -> str:
        return self.conf.get("spark.app.name") or "spark"

    @cached_property
    def namespace(self) -> str:
        return self.conf.get("spark.kubernetes.namespace") or "default"

    @cached_property
    def deploy_mode(self) -> str:
        """Where the conf says the driver runs: ``cluster`` (a driver pod) when ``spark.submit.deployMode``
        (where ``--deploy-mode`` goes) says so, else ``client`` (this machine), Spark's own default when
        neither is given. Steps read :attr:`submit_steps.context.JobContext.deploy_mode`, which an entry
        point that is always cluster mode (a SparkApplication, a pod template) sets itself."""
        return deploy_mode_of(self.conf)

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
