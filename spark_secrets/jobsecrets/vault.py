"""OpenBao/Vault KV v2, as the submitter (or a service) sees it: log in, read a field, write, list, delete.

Built on hvac, Vault's own Python client (OpenBao keeps Vault's API). Logging in follows the CLI's
conventions so that a user who ran ``bao login`` or ``vault login`` needs nothing else: a token from
``VAULT_TOKEN``/``BAO_TOKEN`` or ``~/.vault-token``; else Kubernetes auth with the pod's service-account
token (a submitter running in a pod, e.g. an Airflow worker); else AppRole from ``VAULT_ROLE_ID`` and
``VAULT_SECRET_ID``. Every failure becomes a one-line :class:`~spark_secrets.errors.VaultError` that names
the path and the fix, never a value.

hvac (with requests, a fifth of a second) is imported by :class:`VaultClient` only: the settings and the
values' types are read by every submission and the renew service, which talk to OpenBao/Vault only when a
job names a ``vault:`` secret or rotation is on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from spark_secrets.errors import ConfigError, VaultError, VaultForbidden, VaultNotFound, VaultUnavailable

if TYPE_CHECKING:
    import hvac.exceptions
    import requests

AUTH_METHODS = ("auto", "token", "kubernetes", "approle")
#: Where Kubernetes puts a pod's service-account token.
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
T = TypeVar("T")


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    return next((environ[n] for n in names if environ.get(n)), None)


@dataclass(frozen=True)
class VaultConfig:
    """Where OpenBao/Vault is and how to log in; built from settings, else the CLI's environment."""

    address: str
    namespace: str | None = None
    ca: str | bool = True
    auth: str = "auto"
    role: str | None = None
    auth_mount: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def from_settings(cls, get: Callable[[str], str | None], environ: Mapping[str, str] | None = None) -> VaultConfig:
        """``get`` reads a ``spark.secrets.vault.*`` setting (or a CLI option) by its last part."""
        return cls.create(address=get("address"), namespace=get("namespace"), ca_cert=get("caCert"),
                          auth=get("auth"), role=get("role"), auth_mount=get("authMount"), environ=environ)

    @classmethod
    def create(cls, *, address: str | None = None, namespace: str | None = None, ca_cert: str | None = None,
               auth: str | None = None, role: str | None = None, auth_mount: str | None = None,
               environ: Mapping[str, str] | None = None) -> VaultConfig:
        """Checked, with what is not given taken from the environment as the ``vault`` CLI does
        (``VAULT_ADDR``, ``VAULT_NAMESPACE``, ``VAULT_CACERT``, or their ``BAO_`` forms)."""
        env = dict(os.environ) if environ is None else dict(environ)
        address = address or _env(env, "VAULT_ADDR", "BAO_ADDR")
        if not address:
            raise ConfigError("no OpenBao/Vault address given",
                              "export VAULT_ADDR (or BAO_ADDR), or set spark.secrets.vault.address (CLI: --address)")
        if not address.startswith(("http://", "https://")):
            raise ConfigError(f"OpenBao/Vault address {address!r} is not a URL", "give http(s)://host:port")
        auth = (auth or "auto").strip().lower()
        if auth not in AUTH_METHODS:
            raise ConfigError(f"spark.secrets.vault.auth={auth!r} is not a login method",
                              f"use one of {', '.join(AUTH_METHODS)}")
        ca_path = ca_cert or _env(env, "VAULT_CACERT", "BAO_CACERT")
        if ca_path and not os.path.isfile(ca_path):
            raise ConfigError(f"OpenBao/Vault CA certificate {ca_path!r} is not a file", "give a PEM file")
        return cls(address.rstrip("/"), namespace or _env(env, "VAULT_NAMESPACE", "BAO_NAMESPACE"),
                   ca_path or True, auth, role, auth_mount, env)

    def token(self) -> str | None:
        """The CLI's token: the environment, else the token helper's file."""
        found = _env(self.environ, "VAULT_TOKEN", "BAO_TOKEN")
        if found:
            return found.strip()
        home = Path(self.environ.get("HOME") or Path.home())
        for name in (".vault-token", ".bao-token"):
            path = home / name
            if path.is_file():
                return path.read_text().strip() or None
        return None


def _json(response: object) -> dict[str, Any]:
    """hvac answers with a parsed dict, a ``requests.Response`` (204, or raw calls), or None."""
    import requests

    if isinstance(response, requests.Response):
        return dict(response.json()) if response.content else {}
    return dict(response) if isinstance(response, dict) else {}


@dataclass(frozen=True)
class Lease:
    """Credentials a secrets engine made for this read (a database login), valid ``duration`` seconds from
    ``issued`` (epoch s) and renewable up to the engine's max TTL. ``data`` is secret; the lease ID names
    the lease, it grants nothing by itself."""

    location: str
    lease_id: str
    duration: int
    renewable: bool
    issued: float
    data: Mapping[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"Lease({self.location}, {self.lease_id}, {self.duration} s, fields={sorted(self.data)})"


@dataclass(frozen=True)
class KvSecret:
    """One version of a KV v2 secret. ``data`` is secret: ``repr`` shows field names only."""

    location: str
    version: int
    data: Mapping[str, Any] = field(repr=False)

    def __repr__(self) -> str:
        return f"KvSecret({self.location}@{self.version}, fields={sorted(self.data)})"


class VaultClient:
    """A logged-in KV v2 client. ``session`` lets unit tests inject a transport."""

    def __init__(self, config: VaultConfig, *, session: requests.Session | None = None, jwt: str | None = None) -> None:
        """Logs in as :class:`VaultConfig` says; with ``jwt``, by Kubernetes auth with that service-account
        token (a service acting as a job's account) and ``config.role``."""
        import hvac

        self.config = config
        self._hvac = hvac.Client(url=config.address, namespace=config.namespace, verify=config.ca,
                                 session=session, timeout=30)
        self.identity = "your token"
        if jwt is not None:
            self._kubernetes_login(jwt)
        else:
            self._login()

    def __repr__(self) -> str:
        return f"VaultClient({self.config.address}, {self.identity})"

    # -- login -----------------------------------------------------------------------------------
    def _login(self) -> None:
        cfg = self.config
        auth = cfg.auth
        token = cfg.token() if auth in ("auto", "token") else None
        jwt_path = Path(_env(cfg.environ, "VAULT_K8S_TOKEN_PATH") or SERVICE_ACCOUNT_TOKEN)
        if auth == "auto" and token is None:
            if cfg.role and jwt_path.is_file():
                auth = "kubernetes"
            elif _env(cfg.environ, "VAULT_ROLE_ID", "BAO_ROLE_ID"):
                auth = "approle"
        if token is not None:
            self._hvac.token = token
        elif auth == "kubernetes":
            if not cfg.role:
                raise ConfigError("Kubernetes auth needs a role", "set spark.secrets.vault.role")
            if not jwt_path.is_file():
                raise ConfigError(f"Kubernetes auth: no service-account token at {jwt_path}",
                                  "submit from a pod, or log in with bao login / VAULT_TOKEN")
            self._kubernetes_login(jwt_path.read_text().strip())
        elif auth == "approle":
            role_id = _env(cfg.environ, "VAULT_ROLE_ID", "BAO_ROLE_ID")
            secret_id = _env(cfg.environ, "VAULT_SECRET_ID", "BAO_SECRET_ID")
            if not (role_id and secret_id):
                raise ConfigError("AppRole login needs VAULT_ROLE_ID and VAULT_SECRET_ID",
                                  "export both (never put them in Spark's conf)")
            mount = cfg.auth_mount or "approle"
            with self._errors(f"AppRole login (mount auth/{mount})", login=True):
                self._hvac.auth.approle.login(role_id, secret_id, mount_point=mount)
            self.identity = "approle"
        else:
            raise ConfigError(f"no OpenBao/Vault token for {cfg.address}",
                              "run bao login (or vault login), or export VAULT_TOKEN")

    def _kubernetes_login(self, jwt: str) -> None:
        cfg = self.config
        if not cfg.role:
            raise ConfigError("Kubernetes auth needs a role", "set spark.secrets.vault.role (renew service: --vault-role)")
        mount = cfg.auth_mount or "kubernetes"
        with self._errors(f"Kubernetes auth (role {cfg.role}, mount auth/{mount})", login=True):
            self._hvac.auth.kubernetes.login(cfg.role, jwt, mount_point=mount)
        self.identity = f"Kubernetes auth role {cfg.role}"

    # -- KV v2 -----------------------------------------------------------------------------------
    def read(self, mount: str, path: str, version: int | None = None) -> KvSecret:
        where = f"{mount}/{path}" + (f"@{version}" if version else "")
        with self._errors(f"reading {where}", missing=f"no secret at {where}"):
            response = self._hvac.secrets.kv.v2.read_secret_version(
                path=path, version=version, mount_point=mount, raise_on_deleted_version=True)
        data = response["data"]
        return KvSecret(f"{mount}/{path}", int(data["metadata"]["version"]), dict(data["data"] or {}))

    def mount_type(self, location: str) -> str:
        """The secrets engine at ``location``'s mount: ``kv`` (version 2 required), ``database``, ..."""
        with self._errors(f"looking up the mount of {location}", missing=f"no secrets engine mounted at {location}"):
            response = _json(self._hvac.read(f"sys/internal/ui/mounts/{location}"))
        data = response.get("data") or {}
        kind = str(data.get("type") or "")
        if kind == "kv" and str((data.get("options") or {}).get("version")) != "2":
            raise ConfigError(f"{location} is on a KV version 1 mount", "move it to a KV v2 mount (versions, rotation)")
        return kind

    def lease(self, location: str) -> Lease:
        """New leased credentials from a dynamic secrets engine (each read makes new ones)."""
        with self._errors(f"reading {location}", missing=f"nothing at {location}"):
            response = _json(self._hvac.read(location))
        if not response.get("lease_id"):
            raise ConfigError(f"{location} gave no lease", "name a dynamic secret (e.g. database/creds/<role>) or a KV one")
        return Lease(location, str(response["lease_id"]), int(response.get("lease_duration") or 0),
                     bool(response.get("renewable")), time.time(), dict(response.get("data") or {}))

    def renew_lease(self, lease_id: str, increment: int) -> int:
        """Renews the lease; returns the seconds it now has (less than asked near the max TTL)."""
        gone = f"lease {lease_id} is gone (expired or revoked) or not this login's"
        try:
            with self._errors(f"renewing lease {lease_id}", missing=gone):
                response = _json(self._hvac.sys.renew_lease(lease_id, increment=increment))
        except VaultError as exc:
            if "lease not found" in exc.problem:  # OpenBao renews a lease only for the token that made it
                raise VaultNotFound(gone, "obtain new credentials") from None
            raise
        return int(response.get("lease_duration") or 0)

    def revoke_lease(self, lease_id: str) -> None:
        with self._errors(f"revoking lease {lease_id}"):
            self._hvac.sys.revoke_lease(lease_id)

    def renew_self(self) -> None:
        """Keeps this login's token alive: the leases it made end with it."""
        with self._errors("renewing its own token", login=True):
            self._hvac.auth.token.renew_self()

    def current_version(self, mount: str, path: str) -> int:
        """The secret's current version, from its metadata (no value is read)."""
        with self._errors(f"reading the metadata of {mount}/{path}", missing=f"no secret at {mount}/{path}"):
            response = self._hvac.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
        return int(response["data"]["current_version"])

    def write(self, mount: str, path: str, data: Mapping[str, str]) -> int:
        """Writes a new version (the fields given replace the secret's); returns its number."""
        with self._errors(f"writing {mount}/{path}"):
            response = self._hvac.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data),
                                                                        mount_point=mount)
        return int(response["data"]["version"])

    def list(self, mount: str, path: str) -> list[str]:
        """Names under ``path`` (a trailing ``/`` marks a folder); empty when there are none."""
        try:
            with self._errors(f"listing {mount}/{path}", missing=""):
                response = self._hvac.secrets.kv.v2.list_secrets(path=path, mount_point=mount)
        except VaultNotFound:
            return []
        return sorted(response["data"]["keys"])

    def delete(self, mount: str, path: str) -> None:
        """Deletes every version and the metadata."""
        self.current_version(mount, path)  # a clear error when there is nothing to delete
        with self._errors(f"deleting {mount}/{path}"):
            self._hvac.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point=mount)

    # -- errors ----------------------------------------------------------------------------------
    @contextmanager
    def _errors(self, doing: str, missing: str | None = None, login: bool = False) -> Iterator[None]:
        """Turns hvac's and requests' failures into one-line errors; server texts name paths, not values."""
        import hvac.exceptions
        import requests

        where = self.config.address
        try:
            yield
        except hvac.exceptions.InvalidPath:
            raise VaultNotFound(missing or f"{doing}: not found at {where}",
                                "check the mount and path (spark-secrets secrets list), or write it with "
                                "spark-secrets secrets set") from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized, hvac.exceptions.InvalidRequest) as exc:
            if login:
                raise VaultForbidden(f"{where} refused {doing}",
                                     "check that the role admits this identity (its service account and namespace, "
                                     "or role and secret IDs)") from None
            if isinstance(exc, hvac.exceptions.InvalidRequest):
                raise VaultError(f"{where} refused {doing}: {self._reasons(exc)}", None) from None
            if self._token_valid():
                raise VaultForbidden(f"{where} denied {doing} to {self.identity}",
                                     "ask for a policy that grants it") from None
            raise VaultForbidden(f"{where} refused {doing}: the token is expired, revoked or unknown",
                                 "log in again (bao login, or a fresh VAULT_TOKEN)") from None
        except (hvac.exceptions.VaultDown, requests.exceptions.ConnectionError, requests.exceptions.Timeout):
            raise VaultUnavailable(f"OpenBao/Vault at {where} did not answer while {doing}",
                                   "check spark.secrets.vault.address / VAULT_ADDR and that the server is "
                                   "unsealed") from None
        except requests.exceptions.SSLError:
            raise VaultUnavailable(f"TLS to {where} failed while {doing}",
                                   "give the server's CA with spark.secrets.vault.caCert / VAULT_CACERT") from None
        except hvac.exceptions.VaultError as exc:
            raise VaultError(f"{where} failed {doing}: {self._reasons(exc)}", None) from None

    @staticmethod
    def _reasons(exc: hvac.exceptions.VaultError) -> str:
        """The server's reasons, on one line (they name paths and rules, not values)."""
        text = "; ".join(" ".join(str(e).split()) for e in (exc.errors or []))
        return text[:200] or type(exc).__name__

    def _token_valid(self) -> bool:
        import hvac.exceptions
        import requests

        try:
            self._hvac.auth.token.lookup_self()
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException):
            return False
        return True
