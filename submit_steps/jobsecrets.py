"""Steps 5 and 6: the job's own secrets (``spark.secrets.file.*``, ``spark.secrets.env.*``): resolved here as the
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

import base64
from dataclasses import replace

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
from submit_steps.context import JobContext
from submit_steps.local import LocalSecrets
from submit_steps.settings import Settings
from submit_steps.spec import SECRET_MAX_BYTES, FsGroup, SecretPlan, SecretVolume, SubmissionSpec
from submit_steps.step import SubmitStep

#: Room left in a Secret for its metadata (names, labels, annotations) under Kubernetes' 1 MiB.
METADATA_ALLOWANCE = 16 * 1024
ROLES = ("driver", "executor")


def _size(n: int) -> str:
    return f"{n / (1 << 20):.2f} MiB" if n >= 1 << 20 else f"{n} bytes"


class _JobSecretsStep(SubmitStep):
    """What the file and env steps share: the job-secrets Secret, planned by whichever of them runs first
    (it holds the values of both kinds, resolved together so that a leased Vault secret is read once).
    ``resolver`` may be injected; the context's ``kube`` checks ``k8s:`` references before anything is
    created."""

    def __init__(self, context: JobContext | Settings, *, resolver: Resolver | None = None) -> None:
        super().__init__(context)
        wants_vault = any(s.ref.scheme == "vault" for s in self.settings.job_secrets)
        self.resolver = resolver or Resolver(self._vault if wants_vault else None)

    def _vault(self) -> VaultClient:
        return VaultClient(VaultConfig.from_settings(self.settings.vault_setting))

    def _where(self, spec: SubmissionSpec) -> tuple[str, str]:
        """The job-secrets Secret's namespace and name (a layout's owner prefix before the shared stem)."""
        target = spec.target
        namespace = target.namespace if target else self.context.namespace
        return namespace, (target.secret_prefix if target else "") + self.context.job_secrets_name

    def _mount(self, spec: SubmissionSpec, secret_name: str, path: str) -> SubmissionSpec:
        """Mounts ``secret_name`` at ``path`` in driver and executors (Spark's mounts, and a pod template's
        with the fsGroup where one is written)."""
        keys = tuple(f"spark.kubernetes.{role}.secrets.{secret_name}" for role in ROLES)
        spec = spec.add_conf(dict.fromkeys(keys, path))
        gid = self.settings.secrets_fs_group
        if gid is not None:  # else Spark's own mounts stay (0644)
            spec = spec.add_volume(SecretVolume(secret_name, path, keys), FsGroup(gid, self.settings.secrets_fs_group_given))
        return spec

    def _planned(self, spec: SubmissionSpec) -> SubmissionSpec:
        """The spec with the job's secrets resolved and their Secret planned and mounted, once."""
        if spec.local_secrets is not None:
            return spec
        secrets = self.settings.job_secrets
        namespace, name = self._where(spec)
        resolved = self.resolver.resolve(secrets)
        from_k8s = self._read_k8s(namespace, [s for s in secrets if s.ref.scheme == "k8s"], not self.context.cluster_mode)
        data = {data_key(s.kind, s.name): v for s, v in resolved.values.items()}
        self._check_size(resolved)
        directory = self.settings.secrets_dir
        if data:
            spec = self._mount(spec, name, directory)
        spec = spec.add_conf({f"spark.kubernetes.driverEnv.{ENV_DIR}": directory, f"spark.executorEnv.{ENV_DIR}": directory})
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
        spec = spec.with_local_secrets(local)
        if data:
            plan = SecretPlan(name=name, namespace=namespace, data=data,
                              labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_JOB_SECRETS,
                                      LABEL_APP: label_value(self.settings.app_name)},
                              annotations=annotations, driver_selector=f"{LABEL_JOB_SECRETS}={name}")
            spec = spec.add_secret(plan).add_conf({f"spark.kubernetes.driver.label.{LABEL_JOB_SECRETS}": name})
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
        kube = self.context.kube
        if not refs or kube is None:
            return values
        for secret in refs:
            ref = secret.ref
            try:
                found = kube.read_secret(namespace, ref.location)
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


class FileSecretsStep(_JobSecretsStep):
    """The job's files (``spark.secrets.file.*``), as Spark's ``MountSecretsFeatureStep``: the job-secrets
    Secret mounted at ``spark.secrets.dir``, a ``k8s:`` Secret mounted beside it and named in
    ``SPARK_SECRETS_FILES``."""

    @property
    def enabled(self) -> bool:
        return any(s.kind == "file" for s in self.settings.job_secrets)

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        spec = self._planned(spec)
        k8s_files: dict[str, str] = {}
        for secret in self.settings.job_secrets:
            ref = secret.ref
            if secret.kind == "file" and ref.scheme == "k8s":
                path = k8s_dir(self.settings.secrets_dir, ref.location)
                k8s_files[secret.name] = f"{path}/{ref.field}"
                if f"spark.kubernetes.driver.secrets.{ref.location}" not in spec.added_conf:
                    spec = self._mount(spec, ref.location, path)
        if not k8s_files:
            return spec
        return spec.add_conf({f"{prefix}{ENV_FILES}": encode_files(k8s_files)
                              for prefix in ("spark.kubernetes.driverEnv.", "spark.executorEnv.")})


class EnvSecretsStep(_JobSecretsStep):
    """The job's environment variables (``spark.secrets.env.*``), as Spark's ``EnvSecretsFeatureStep``:
    ``secretKeyRef`` to the job-secrets Secret, or to a ``k8s:`` reference's own Secret."""

    @property
    def enabled(self) -> bool:
        return any(s.kind == "env" for s in self.settings.job_secrets)

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        spec = self._planned(spec)
        _, name = self._where(spec)
        conf: dict[str, str] = {}
        for secret in self.settings.job_secrets:
            ref = secret.ref
            if secret.kind == "env":
                source = f"{ref.location}:{ref.field}" if ref.scheme == "k8s" else f"{name}:{env_key(secret.name)}"
                conf.update({f"spark.kubernetes.{role}.secretKeyRef.{secret.name}": source for role in ROLES})
        return spec.add_conf(conf)


class JobSecretsStep(_JobSecretsStep):
    """Both kinds in one step, for callers that run the job's secrets alone (the builder runs the two
    steps above)."""

    def __init__(self, context: JobContext | Settings, *, kube: KubeClient | None = None,
                 resolver: Resolver | None = None) -> None:
        if kube is not None:
            context = replace(context if isinstance(context, JobContext) else JobContext.of(context), kube=kube)
        super().__init__(context, resolver=resolver)

    @property
    def enabled(self) -> bool:
        return bool(self.settings.job_secrets)

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled:
            return spec
        for cls in (FileSecretsStep, EnvSecretsStep):
            step = cls(self.context, resolver=self.resolver)
            spec = step.apply(spec) if step.enabled else spec
        return spec
