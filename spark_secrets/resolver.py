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
from spark_secrets.reference import JobSecret
from spark_secrets.vault import KvSecret, VaultClient

VaultFactory = Callable[[], VaultClient]


@dataclass(frozen=True)
class Resolved:
    """The values of the by-value secrets (``repr`` shows names and sizes only) and the KV versions read."""

    values: Mapping[JobSecret, bytes] = field(repr=False)
    versions: Mapping[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Resolved({ {s.setting: len(v) for s, v in self.values.items()} }, versions={dict(self.versions)})"


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
                key = (ref.location, ref.version)
                if key not in read:
                    try:
                        read[key] = self.vault().read(ref.mount, ref.path, ref.version)
                    except SparkSecretsError as exc:
                        raise type(exc)(f"{secret.setting}: {exc.problem}", exc.fix) from None
                values[secret] = self._field(secret, read[key])
        versions = {location: kv.version for (location, _), kv in read.items()}
        return Resolved(values, versions)

    @staticmethod
    def _field(secret: JobSecret, kv: KvSecret) -> bytes:
        fields = sorted(kv.data)
        name = secret.ref.field
        if name is None:
            if len(fields) != 1:
                raise ConfigError(f"{secret.setting}: {kv.location} has {len(fields)} fields",
                                  f"name one: vault:{kv.location}#<field>, of {', '.join(fields) or 'none'}")
            name = fields[0]
        if name not in kv.data:
            raise ConfigError(f"{secret.setting}: {kv.location} (version {kv.version}) has no field {name!r}",
                              f"its fields are {', '.join(fields) or 'none'}")
        return _bytes(kv.data[name])
