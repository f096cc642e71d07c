"""Reads the values behind job-secret references, as the submitter: OpenBao/Vault, local files, env.

Each Vault secret is read once however many fields a job takes from it; every failure names the
setting that asked for it. ``k8s:`` references are not read here: pods mount them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spark_secrets.errors import ConfigError, SparkSecretsError
from spark_secrets.jobsecrets.reference import JobSecret
from spark_secrets.jobsecrets.vault import KvSecret, Lease, VaultClient

VaultFactory = Callable[[], VaultClient]


@dataclass(frozen=True)
class Resolved:
    """The values of the by-value secrets (``repr`` shows names and sizes only) and the KV versions read."""

    values: Mapping[JobSecret, bytes] = field(repr=False)
    versions: Mapping[str, int] = field(default_factory=dict)
    #: Leased credentials by location (a database login): renewed, replaced and revoked by the renew service.
    leases: Mapping[str, Lease] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Resolved({ {s.setting: len(v) for s, v in self.values.items()} }, versions={dict(self.versions)}, "
                f"leases={sorted(self.leases)})")


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Resolver:
    def __init__(self, vault: VaultFactory | None = None, environ: Mapping[str, str] | None = None) -> None:
        self._vault_factory = vault
        self._vault: VaultClient | None = None
        self._mounts: dict[str, str] = {}
        self.environ = os.environ if environ is None else environ

    def vault(self) -> VaultClient:
        if self._vault is None:
            if self._vault_factory is None:
                raise ConfigError("vault: references need an OpenBao/Vault connection",
                                  "set spark.secrets.vault.address or VAULT_ADDR")
            self._vault = self._vault_factory()
        return self._vault

    def resolve(self, secrets: Iterable[JobSecret]) -> Resolved:
        values: dict[JobSecret, bytes] = {}
        read: dict[tuple[str, int | None], KvSecret] = {}
        leases: dict[str, Lease] = {}
        for secret in secrets:
            ref = secret.ref
            if ref.scheme == "k8s":
                continue
            if ref.scheme == "env":
                if ref.location not in self.environ:
                    raise ConfigError(f"{secret.setting}=env:{ref.location}: {ref.location} is not set here",
                                      f"export {ref.location} before submitting")
                values[secret] = self.environ[ref.location].encode("utf-8")
            elif ref.scheme == "file":
                path = Path(ref.location).expanduser()
                try:
                    values[secret] = path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"{secret.setting}=file:{ref.location} cannot be read ({exc.strerror})",
                                      "give a readable file on this machine") from None
            else:
                try:
                    values[secret] = self._vault_value(secret, read, leases)
                except SparkSecretsError as exc:
                    if exc.problem.startswith(secret.setting):
                        raise
                    raise type(exc)(f"{secret.setting}: {exc.problem}", exc.fix) from None
        versions = {location: kv.version for (location, _), kv in read.items()}
        return Resolved(values, versions, leases)

    def _vault_value(self, secret: JobSecret, read: dict[tuple[str, int | None], KvSecret],
                     leases: dict[str, Lease]) -> bytes:
        ref = secret.ref
        if self._mount_type(ref.mount, ref.location) == "kv":
            key = (ref.location, ref.version)
            if key not in read:
                read[key] = self.vault().read(ref.mount, ref.path, ref.version)
            return self._field(secret, read[key].location, read[key].data, f" (version {read[key].version})")
        if ref.version is not None:
            raise ConfigError(f"{secret.setting}: {ref.location} is a leased secret, it has no versions",
                              f"leave out @{ref.version}")
        if ref.location not in leases:  # one lease per location: its username and password belong together
            leases[ref.location] = self.vault().lease(ref.location)
        return self._field(secret, ref.location, leases[ref.location].data, " (leased)")

    def _mount_type(self, mount: str, location: str) -> str:
        if mount not in self._mounts:
            self._mounts[mount] = self.vault().mount_type(location)
        return self._mounts[mount]

    @staticmethod
    def _field(secret: JobSecret, location: str, data: Mapping[str, object], what: str) -> bytes:
        fields = sorted(data)
        name = secret.ref.field
        if name is None:
            if len(fields) != 1:
                raise ConfigError(f"{secret.setting}: {location} has {len(fields)} fields",
                                  f"name one: vault:{location}#<field>, of {', '.join(fields) or 'none'}")
            name = fields[0]
        if name not in data:
            raise ConfigError(f"{secret.setting}: {location}{what} has no field {name!r}",
                              f"its fields are {', '.join(fields) or 'none'}")
        return _bytes(data[name])
