"""Step 4: the job's own secrets (``spark.secrets.file.*``, ``spark.secrets.env.*``): resolved here as the
submitter, put in a per-job Secret, and wired to driver and executors by reference only.

Files come from Secret volumes (in memory, never on the node's disk): mounted 0440 with the pod's
fsGroup from a pod template where the entry point can write one (:mod:`submit_steps.podtemplate`), else
from Spark's own secret mounts (``spark.kubernetes.{driver,executor}.secrets.*``, 0644); env vars from ``secretKeyRef``
(``spark.kubernetes.{driver,executor}.secretKeyRef.*``), so no value is ever in Spark's conf, its UI, an
event log or a pod spec. ``k8s:`` references point the pods at the user's Secret itself. A driver
running here (client mode) gets the values in a private directory and its environment instead
(:class:`LocalSecrets`).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spark_secrets.errors import ConfigError, KubernetesForbidden, KubernetesNotFound
from spark_secrets.secrets.jobsecret import (ANNOTATION_LEASES, ANNOTATION_REFERENCES, ANNOTATION_SERVICE_ACCOUNT,
                                     ANNOTATION_VERSIONS, ENV_DIR, ENV_FILES, KIND_JOB_SECRETS, LABEL_JOB_SECRETS,
                                     data_key, encode_files, env_key, k8s_dir, lease_record,
                                     references_annotation)
from spark_secrets.kube.client import KubeClient
from spark_secrets.jobsecrets.reference import JobSecret
from spark_secrets.jobsecrets.resolver import Resolved, Resolver
from spark_secrets.secrets.tokensecret import LABEL_APP, LABEL_KIND, LABEL_MANAGED_BY, MANAGED_BY
from spark_secrets.jobsecrets.vault import VaultClient, VaultConfig
from submit_steps.secret import label_value
from submit_steps.settings import Settings
from submit_steps.spec import SECRET_MAX_BYTES, FsGroup, SecretPlan, SecretVolume, SubmissionSpec
from submit_steps.step import SubmitStep

#: Room left in a Secret for its metadata (names, labels, annotations) under Kubernetes' 1 MiB.
METADATA_ALLOWANCE = 16 * 1024


@dataclass(frozen=True)
class LocalSecrets:
    """What a driver on this machine gets instead of mounts: files and env values (``repr`` hides them)."""

    files: Mapping[str, bytes] = field(repr=False)
    env: Mapping[str, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return f"LocalSecrets(files={sorted(self.files)}, env={sorted(self.env)})"

    def materialize(self) -> dict[str, str]:
        """Writes the files into a new 0700 directory (0600 each, removed at exit); returns the env a local
        driver needs: ``SPARK_SECRETS_DIR`` and each env secret."""
        directory = Path(tempfile.mkdtemp(prefix="spark-secrets-job-"))
        atexit.register(shutil.rmtree, directory, True)
        for name, value in self.files.items():
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(value)
        env = {ENV_DIR: str(directory)}
        env.update({var: value.decode("utf-8", errors="replace") for var, value in self.env.items()})
        return env


def _size(n: int) -> str:
    return f"{n / (1 << 20):.2f} MiB" if n >= 1 << 20 else f"{n} bytes"


class JobSecretsStep(SubmitStep):
    """Resolves the references and plans the job-secrets Secret. ``kube`` (set by the submission) checks
    ``k8s:`` references before anything is created; ``vault`` may be injected."""

    def __init__(self, settings: Settings, *, kube: KubeClient | None = None,
                 resolver: Resolver | None = None) -> None:
        super().__init__(settings)
        self.kube = kube
        self.resolver = resolver
        self.name = settings.job_secrets_name  # shares its stem with the token Secret's

    @property
    def enabled(self) -> bool:
        return bool(self.settings.job_secrets)

    def _resolver(self) -> Resolver:
        if self.resolver is None:
            wants_vault = any(s.ref.scheme == "vault" for s in self.settings.job_secrets)
            config = VaultConfig.from_settings(self.settings.vault_setting) if wants_vault else None
            self.resolver = Resolver((lambda: VaultClient(config)) if config is not None else None)
        return self.resolver

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec
        secrets = self.settings.job_secrets
        namespace = spec.target.namespace if spec.target else self.settings.namespace
        name = (spec.target.secret_prefix if spec.target else "") + self.name
        resolved = self._resolver().resolve(secrets)
        from_k8s = self._read_k8s(namespace, [s for s in secrets if s.ref.scheme == "k8s"], not self.settings.cluster_mode)
        data = {data_key(s.kind, s.name): v for s, v in resolved.values.items()}
        self._check_size(resolved)
        directory = self.settings.secrets_dir
        conf: dict[str, str] = {}
        roles = ("driver", "executor")
        volumes: dict[str, SecretVolume] = {}

        def mount(secret_name: str, path: str) -> None:
            keys = tuple(f"spark.kubernetes.{role}.secrets.{secret_name}" for role in roles)
            conf.update(dict.fromkeys(keys, path))
            volumes[secret_name] = SecretVolume(secret_name, path, keys)

        if data:
            mount(name, directory)
        k8s_files: dict[str, str] = {}
        for secret in secrets:
            ref = secret.ref
            if secret.kind == "env":
                source = f"{ref.location}:{ref.field}" if ref.scheme == "k8s" else f"{name}:{env_key(secret.name)}"
                for role in roles:
                    conf[f"spark.kubernetes.{role}.secretKeyRef.{secret.name}"] = source
            elif ref.scheme == "k8s":
                path = k8s_dir(directory, ref.location)
                k8s_files[secret.name] = f"{path}/{ref.field}"
                mount(ref.location, path)
        env = {ENV_DIR: directory, **({ENV_FILES: encode_files(k8s_files)} if k8s_files else {})}
        for var, value in env.items():
            conf[f"spark.kubernetes.driverEnv.{var}"] = value
            conf[f"spark.executorEnv.{var}"] = value
        refs = {f"{s.kind}.{s.name}": s.ref.text for s in secrets}
        account = ((spec.target.service_account if spec.target else None)
                   or spec.effective_conf().get("spark.kubernetes.authenticate.driver.serviceAccountName") or "default")
        annotations = {ANNOTATION_REFERENCES: references_annotation(refs), ANNOTATION_SERVICE_ACCOUNT: account}
        if resolved.versions:
            annotations[ANNOTATION_VERSIONS] = references_annotation({k: str(v) for k, v in resolved.versions.items()})
        if resolved.leases:
            annotations[ANNOTATION_LEASES] = references_annotation(
                {loc: lease_record(lease.lease_id, lease.duration, lease.issued + lease.duration, lease.issued)
                 for loc, lease in resolved.leases.items()})
        everything = {**resolved.values, **from_k8s}
        local = LocalSecrets({s.name: v for s, v in everything.items() if s.kind == "file"},
                             {s.name: v for s, v in everything.items() if s.kind == "env"})
        spec = spec.add_conf(conf).with_local_secrets(local)
        gid = self.settings.secrets_fs_group
        if gid is not None:  # else Spark's own mounts stay (0644)
            for volume in volumes.values():
                spec = spec.add_volume(volume, FsGroup(gid, self.settings.secrets_fs_group_given))
        if data:
            conf_label = {f"spark.kubernetes.driver.label.{LABEL_JOB_SECRETS}": name}
            plan = SecretPlan(name=name, namespace=namespace, data=data,
                              labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_JOB_SECRETS,
                                      LABEL_APP: label_value(self.settings.app_name)},
                              annotations=annotations, driver_selector=f"{LABEL_JOB_SECRETS}={name}")
            spec = spec.add_secret(plan).add_conf(conf_label)
        names = ", ".join(f"{s.kind} {s.name} <- {s.ref.text}" for s in secrets)
        where = f"Secret {namespace}/{name}" if data else "referenced Secrets only"
        return spec.add_note(f"job secrets ({where}): {names}")

    def _check_size(self, resolved: Resolved) -> None:
        total = sum(len(v) for v in resolved.values.values())
        if total > SECRET_MAX_BYTES - METADATA_ALLOWANCE:
            parts = sorted(resolved.values.items(), key=lambda kv: -len(kv[1]))
            listed = ", ".join(f"{s.setting} {_size(len(v))}" for s, v in parts)
            raise ConfigError(f"the job's secrets are {_size(total)}, over Kubernetes' 1 MiB limit for a Secret "
                              f"({listed})", "make the largest ones smaller, or mount them from a k8s: Secret of "
                                             "their own")

    def _read_k8s(self, namespace: str, refs: list[JobSecret], for_local_driver: bool) -> dict[JobSecret, bytes]:
        """Checks that each ``k8s:`` Secret and key exist (when the submitter may read them: else the pod
        will tell); a driver running here gets their values, which it cannot mount."""
        values: dict[JobSecret, bytes] = {}
        if not refs or self.kube is None:
            return values
        for secret in refs:
            ref = secret.ref
            try:
                found = self.kube.read_secret(namespace, ref.location)
            except KubernetesNotFound:
                raise ConfigError(f"{secret.setting}: no Secret {namespace}/{ref.location}",
                                  "create it first, or name one in the job's namespace") from None
            except KubernetesForbidden:
                if for_local_driver:
                    raise KubernetesForbidden(f"{secret.setting}: you may not read Secret {namespace}/{ref.location}, "
                                              "and the driver runs here", "use cluster mode, or ask for get on "
                                                                          "that Secret") from None
                continue
            data = found.get("data") or {}
            if ref.field not in data:
                raise ConfigError(f"{secret.setting}: Secret {namespace}/{ref.location} has no key {ref.field!r}",
                                  f"its keys are {', '.join(sorted(data)) or 'none'}")
            if for_local_driver:
                values[secret] = base64.b64decode(data[ref.field])
        return values
