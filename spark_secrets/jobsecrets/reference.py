"""Job-secret references: where a job's secret comes from, never the secret itself.

A job names each secret with ``spark.secrets.file.<name>=<ref>`` or ``spark.secrets.env.<VAR>=<ref>``;
the reference is what may appear in Spark's conf, logs and the Secret's annotations:

* ``vault:<mount>/<path>#<field>`` -- a field of an OpenBao/Vault KV v2 secret (``@<version>`` at the
  end pins a version; without ``#<field>`` the secret's only field);
* ``k8s:<secret>#<key>`` -- a key of an existing Secret in the job's namespace, mounted or referenced
  by the pods, never copied;
* ``file:<local path>`` and ``env:<LOCAL_VAR>`` -- a value from the submitter's machine.

A value that is none of these is refused without being repeated: a literal secret put there by
mistake must not reach an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spark_secrets.errors import ConfigError

#: Env var names a container accepts and a shell can use.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: File names that are also valid Secret keys; no leading dot (kubelet's own ``..data`` entries).
FILE_NAME = re.compile(r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,252}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._A-Za-z0-9]{1,253}$")
_VERSION = re.compile(r"@(\d+)$")
FORMS = "vault:<mount>/<path>#<field>, k8s:<secret>#<key>, file:<local path> or env:<LOCAL_VAR>"


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``text`` is its canonical spelling (what annotations and messages show)."""

    scheme: str  # "vault", "k8s", "file" or "env"
    location: str  # vault: "<mount>/<path>"; k8s: the Secret's name; file: the path; env: the variable
    field: str | None = None  # vault: the field (None = the only one); k8s: the key
    version: int | None = None  # vault: a pinned KV version

    @property
    def mount(self) -> str:
        return self.location.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.location.split("/", 1)[1]

    @property
    def by_value(self) -> bool:
        """Whether the submission copies the value into the job's Secret (all but ``k8s:``)."""
        return self.scheme != "k8s"

    @property
    def text(self) -> str:
        out = f"{self.scheme}:{self.location}"
        if self.field is not None:
            out += f"#{self.field}"
        if self.version is not None:
            out += f"@{self.version}"
        return out

    def __str__(self) -> str:
        return self.text


def parse_reference(setting: str, text: str) -> Reference:
    """The reference ``text`` given for ``setting``; a ConfigError that does not repeat ``text`` when it
    is not one (it may be a literal secret)."""
    scheme, sep, rest = text.strip().partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("vault", "k8s", "file", "env"):
        raise ConfigError(f"{setting} is not a reference (its value is not shown)",
                          f"give {FORMS}; never the secret itself")
    if scheme == "vault":
        return _vault(setting, rest)
    if scheme == "k8s":
        name, _, key = rest.partition("#")
        if not _K8S_NAME.match(name) or not _SECRET_KEY.match(key):
            raise ConfigError(f"{setting}={text.strip()!r} is not k8s:<secret>#<key>",
                              "name a Secret in the job's namespace and one of its keys")
        return Reference("k8s", name, key)
    if scheme == "env":
        if not ENV_NAME.match(rest):
            raise ConfigError(f"{setting}={text.strip()!r} does not name an environment variable",
                              "give env:<VAR> with letters, digits and '_'")
        return Reference("env", rest)
    if not rest:
        raise ConfigError(f"{setting}=file: names no file", "give file:<path of a file on this machine>")
    return Reference("file", rest)


def _vault(setting: str, rest: str) -> Reference:
    version: int | None = None
    found = _VERSION.search(rest)
    if found:
        version = int(found.group(1))
        rest = rest[:found.start()]
    location, _, field = rest.partition("#")
    if version is None and (inner := _VERSION.search(location)):  # vault:secret/x@3#f as well as ...#f@3
        version = int(inner.group(1))
        location = location[:inner.start()]
    location = location.strip("/")
    if "/" not in location or any(not part for part in location.split("/")):
        raise ConfigError(f"{setting}='vault:{rest}' does not name a KV secret",
                          "give vault:<mount>/<path>#<field>, e.g. vault:secret/team/db#password")
    if version == 0:
        raise ConfigError(f"{setting}: KV versions start at 1", "pin @1 or later, or leave @<version> out")
    return Reference("vault", location, field or None, version)


@dataclass(frozen=True)
class JobSecret:
    """One secret a job asked for: a file under the job-secrets directory, or an env var."""

    kind: str  # "file" or "env"
    name: str
    ref: Reference

    @property
    def setting(self) -> str:
        return f"spark.secrets.{self.kind}.{self.name}"


def parse_job_secret(setting: str, text: str) -> JobSecret:
    """``spark.secrets.file.<name>`` or ``spark.secrets.env.<VAR>`` with its reference, names checked."""
    kind, _, name = setting.removeprefix("spark.secrets.").partition(".")
    if kind == "env" and not ENV_NAME.match(name):
        raise ConfigError(f"{setting}: {name!r} is not a valid environment variable name",
                          "use letters, digits and '_', not starting with a digit")
    if kind == "file" and not FILE_NAME.match(name):
        raise ConfigError(f"{setting}: {name!r} is not a valid file name for a job secret",
                          "use letters, digits, '-', '_' and '.', not starting with '.' (at most 253)")
    return JobSecret(kind, name, parse_reference(setting, text))
