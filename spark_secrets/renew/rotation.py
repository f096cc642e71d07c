"""Job secrets kept current while jobs run: a ``vault:`` reference without a pinned version follows its
KV secret. Every ``interval`` the rotator lists job-secrets Secrets (metadata only), asks OpenBao/Vault
for each referenced secret's current version (metadata only), and only when one moved reads it and
patches the job's Secret; kubelet then projects the new files and ``spark_secrets.runtime`` sees them.

It reads as the job, not as itself: for each Secret it requests a short-lived token of the job's driver
service account (TokenRequest) and logs in with it by Kubernetes auth, so OpenBao's policies for that
account decide what a job may follow, and a hand-made Secret naming another team's path gets nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from spark_secrets.errors import ConfigError, SparkSecretsError
from spark_secrets.jobsecret import (ANNOTATION_REFERENCES, ANNOTATION_SERVICE_ACCOUNT, ANNOTATION_VERSIONS,
                                     JOB_SECRETS_SELECTOR, data_key, references_annotation)
from spark_secrets.kube import KubeClient
from spark_secrets.reference import JobSecret, parse_job_secret
from spark_secrets.renew.metrics import Metrics
from spark_secrets.resolver import Resolver
from spark_secrets.vault import VaultClient, VaultConfig

log = logging.getLogger("spark_secrets.renew.rotation")
#: (namespace, Secret name), reason, message, Event type.
Report = Callable[[tuple[str, str], str, str, str], None]
#: How long a login as a job's account is reused (well inside the role's token TTL).
LOGIN_REUSE_S = 120.0


class SecretRotator:
    def __init__(self, kube: KubeClient, vault: VaultConfig, *, namespaces: Sequence[str] | None, metrics: Metrics,
                 report: Report, interval: float = 30.0, leader: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic,
                 login: Callable[[VaultConfig, str], VaultClient] | None = None) -> None:
        if not vault.role:
            raise ConfigError("rotating job secrets needs an OpenBao/Vault Kubernetes auth role",
                              "give --vault-role (a role that admits the jobs' service accounts)")
        self.kube = kube
        self.vault = vault
        self.namespaces = list(namespaces) if namespaces else None
        self.metrics = metrics
        self.report = report
        self.interval = interval
        self.leader = leader
        self.clock = clock
        self._login = login or (lambda config, jwt: VaultClient(config, jwt=jwt))
        self._next = 0.0
        self._clients: dict[tuple[str, str], tuple[float, VaultClient]] = {}

    def __repr__(self) -> str:
        return f"SecretRotator({self.vault.address}, role={self.vault.role}, every {self.interval:.0f} s)"

    def run(self) -> None:
        """One round if it is due (called from the renew service's loop)."""
        now = self.clock()
        if now < self._next or not self.leader():
            return
        self._next = now + self.interval
        where: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for namespace in where:
            try:
                self.kube.list_secret_metadata(namespace, JOB_SECRETS_SELECTOR, self._page)
            except SparkSecretsError as exc:
                self.metrics.failures += 1
                log.warning("cannot list job secrets in %s: %s", namespace or "all namespaces", exc)

    def _page(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            meta = item.get("metadata") or {}
            key = (str(meta.get("namespace")), str(meta.get("name")))
            try:
                self.check(meta)
            except SparkSecretsError as exc:
                self.metrics.failures += 1
                self.report(key, "RotationFailed", f"job secrets of {key[0]}/{key[1]} not checked: {exc}", "Warning")

    def _client(self, namespace: str, account: str) -> VaultClient:
        cached = self._clients.get((namespace, account))
        if cached is not None and self.clock() - cached[0] < LOGIN_REUSE_S:
            return cached[1]
        self.metrics.api_requests += 1
        jwt = self.kube.service_account_token(namespace, account, seconds=600)
        client = self._login(self.vault, jwt)
        client.identity = f"service account {namespace}/{account} (Kubernetes auth role {self.vault.role})"
        self._clients[(namespace, account)] = (self.clock(), client)
        return client

    def check(self, meta: dict[str, Any]) -> bool:
        """Brings one Secret's floating ``vault:`` values to their current versions; True if it changed."""
        notes = meta.get("annotations") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        try:
            refs = json.loads(notes.get(ANNOTATION_REFERENCES) or "{}")
            versions = {k: str(v) for k, v in json.loads(notes.get(ANNOTATION_VERSIONS) or "{}").items()}
        except (ValueError, AttributeError):
            raise ConfigError(f"Secret {namespace}/{name} has unreadable reference annotations",
                              "recreate it with spark-secrets submit") from None
        secrets: list[JobSecret] = [parse_job_secret(f"spark.secrets.{k}", v) for k, v in sorted(refs.items())]
        floating = [s for s in secrets if s.ref.scheme == "vault" and s.ref.version is None]
        if not floating:
            return False
        account = notes.get(ANNOTATION_SERVICE_ACCOUNT) or "default"
        client = self._client(namespace, account)
        moved = {}
        for location in sorted({s.ref.location for s in floating}):
            mount, _, path = location.partition("/")
            current = client.current_version(mount, path)
            if str(current) != versions.get(location):
                moved[location] = current
        if not moved:
            return False
        # Read as the versions they are now (a read races no later rotation: the next round sees it).
        stale = [replace(s, ref=replace(s.ref, version=moved[s.ref.location])) for s in floating
                 if s.ref.location in moved]
        resolved = Resolver(lambda: client).resolve(stale)
        data = {data_key(s.kind, s.name): base64.b64encode(v).decode("ascii") for s, v in resolved.values.items()}
        new_versions = {**versions, **{k: str(v) for k, v in resolved.versions.items()}}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                              "annotations": {ANNOTATION_VERSIONS: references_annotation(new_versions)}},
                 "data": data}
        self.metrics.api_requests += 1
        self.metrics.api_writes += 1
        self.kube.patch_secret(namespace, name, patch)
        self.metrics.secret_rotations += 1
        changes = ", ".join(f"{loc} version {versions.get(loc, '?')} -> {v}" for loc, v in sorted(resolved.versions.items()))
        self.report((namespace, name), "SecretsRotated", f"job secrets of {namespace}/{name} updated: {changes}", "Normal")
        return True
