"""Job secrets kept current while jobs run: a ``vault:`` reference without a pinned version follows its
KV secret. Every ``interval`` the rotator lists job-secrets Secrets (metadata only), asks OpenBao/Vault
for each referenced secret's current version (metadata only), and only when one moved reads it and
patches the job's Secret; kubelet then projects the new files and ``spark_secrets.runtime`` sees them.

Leased credentials (a database engine's logins) are renewed once two thirds of their lease has passed;
when a renewal no longer gives a full lease (the engine's max TTL is near) or the lease is gone, new
credentials are read and put in the Secret while the old ones still work; when the Secret is gone (the
job ended) its leases are revoked. A lease ends with the login token that made it, so the service keeps
one login per job account alive (``renew-self``) rather than logging in again.

It reads as the job, not as itself: for each Secret it requests a short-lived token of the service
account the job's pods really run as (TokenRequest) and logs in with it by Kubernetes auth, so OpenBao's
policies for that account decide what a job may follow, and a hand-made Secret naming another team's
path gets nothing. That account is read from the pods, never from the Secret (whose writer chose its
annotations): the driver pod that owns the Secret and mounts it, or else the pods that mount it (a
notebook's executors), which must all run as one account. Until such a pod exists, nothing is read.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from spark_secrets.errors import (ConfigError, KubernetesError, KubernetesNotFound, SparkSecretsError, VaultError,
                                  VaultNotFound)
from spark_secrets.secrets.jobsecret import (ANNOTATION_LEASES, ANNOTATION_REFERENCES, ANNOTATION_VERSIONS,
                                     JOB_SECRETS_SELECTOR, data_key, lease_record, references_annotation)
from spark_secrets.kube.client import KubeClient
from spark_secrets.jobsecrets.reference import JobSecret, parse_job_secret
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.watch import ADDED, DELETED, MODIFIED, PAGE, SecretEvent, SecretWatch
from spark_secrets.jobsecrets.resolver import Resolver
from spark_secrets.jobsecrets.vault import VaultClient, VaultConfig

log = logging.getLogger("spark_secrets.renew.rotation")
#: (namespace, Secret name), reason, message, Event type.
Report = Callable[[tuple[str, str], str, str, str], None]
#: How often a kept login as a job's account renews its own token (well inside the role's token TTL).
LOGIN_RENEW_S = 60.0
#: Renew a lease once this fraction of it has passed.
LEASE_RATIO = 2 / 3
Key = tuple[str, str]


def role_for(template: str, namespace: str, account: str) -> str:
    """The Kubernetes auth role to log in with as ``namespace/account``: ``template`` may name them as
    ``{namespace}`` and ``{account}`` (a role per job account, each bound to that account's policies: the
    usual way to keep one user's paths from another's jobs in a shared namespace)."""
    try:
        return template.format(namespace=namespace, account=account)
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"--vault-role {template!r} is not a role name or template",
                          "use a role name, or {namespace} and {account} in it (e.g. jobs-{account})") from None


class SecretRotator:
    def __init__(self, kube: KubeClient, vault: VaultConfig, *, namespaces: Sequence[str] | None, metrics: Metrics,
                 report: Report, interval: float = 30.0, leader: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 login: Callable[[VaultConfig, str], VaultClient] | None = None) -> None:
        if not vault.role:
            raise ConfigError("rotating job secrets needs an OpenBao/Vault Kubernetes auth role",
                              "give --vault-role (a role that admits the jobs' service accounts)")
        role_for(vault.role, "namespace", "account")  # a bad placeholder fails at start, not per job
        self.kube = kube
        self.vault = vault
        self.namespaces = list(namespaces) if namespaces else None
        self.metrics = metrics
        self.report = report
        self.interval = interval
        self.leader = leader
        self.clock = clock
        self.wall = wall
        self._login = login or (lambda config, jwt: VaultClient(config, jwt=jwt))
        self._next = 0.0
        self._clients: dict[Key, tuple[float, VaultClient]] = {}
        #: Leases of the Secrets seen in the last full round (account, lease IDs), to revoke when they go.
        self._leases: dict[Key, tuple[str, set[str]]] = {}
        self._round: dict[Key, tuple[str, set[str]]] = {}
        self._lease_due: float | None = None
        self._listed: set[Key] = set()
        #: Leases this service renewed or made: the others (the submitter's) are taken over at first sight.
        self._known: set[str] = set()
        #: Secrets checked since they appeared; a watch hands over new ones at once (a submission's lease
        #: may be short), and deletions (the job's end) with their last annotations.
        self._seen: set[Key] = set()
        #: Replaced leases that may still run (until their max TTL): revoked too when the job ends.
        self._retired: dict[Key, set[str]] = {}
        self._events: queue.Queue[SecretEvent] = queue.Queue()
        self._watches: list[SecretWatch] = []
        #: Secrets no pod of the job uses yet: looked at again on their next change (the pod owning them).
        self._waiting: set[Key] = set()
        #: The account each Secret's pods run as, once found (pods' accounts and volumes never change).
        self._accounts: dict[Key, str] = {}

    def start(self) -> None:
        where: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for namespace in where:  # its own counters: the token Secrets' relists stay theirs
            watch = SecretWatch(self.kube, namespace, self._events, Metrics(), selector=JOB_SECRETS_SELECTOR)
            watch.start()
            self._watches.append(watch)

    def stop(self) -> None:
        for watch in self._watches:
            watch.stop()

    def _take_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            event.taken()  # a list's next page may come (its Secrets are read below, whatever this one holds)
            if event.kind not in (PAGE, ADDED, MODIFIED, DELETED) or not self.leader():
                continue
            for obj in event.objects:
                meta = obj.get("metadata") or {}
                key = (str(meta.get("namespace")), str(meta.get("name")))
                if event.kind == DELETED:
                    self._seen.discard(key)
                    self._waiting.discard(key)
                    gone = self._leases.pop(key, None)
                    account = gone[0] if gone else self._accounts.get(key)
                    self._accounts.pop(key, None)
                    ids = {str(r.get("id")) for r in self._lease_records(meta).values()}
                    if account is not None:
                        self._revoke(key, account, ids | (gone[1] if gone else set()))
                elif event.kind == MODIFIED:
                    if key in self._waiting:  # e.g. its driver pod now owns it
                        self._page([obj])
                elif key not in self._seen:
                    self._seen.add(key)
                    self._page([obj])

    def __repr__(self) -> str:
        return f"SecretRotator({self.vault.address}, role={self.vault.role}, every {self.interval:.0f} s)"

    def run(self) -> None:
        """New and deleted Secrets at once; a full round if it is due (called from the renew service's loop)."""
        self._take_events()
        now = self.clock()
        if now < self._next or not self.leader():
            return
        self._round, self._lease_due, self._listed, complete = {}, None, set(), True
        self._next = now + self.interval  # a lease that falls due sooner brings it forward (_note_due)
        where: list[str | None] = list(self.namespaces) if self.namespaces else [None]
        for namespace in where:
            try:
                self.kube.list_secret_metadata(namespace, JOB_SECRETS_SELECTOR, self._page)
            except SparkSecretsError as exc:
                complete = False
                self.metrics.failures += 1
                log.warning("cannot list job secrets in %s: %s", namespace or "all namespaces", exc)
        if complete:  # a Secret missing from a partial list may still exist
            for key in self._leases.keys() - self._round.keys():
                self._revoke(key, *self._leases[key])
            self._leases = self._round
            self._seen &= self._listed
        else:
            self._leases.update(self._round)

    def _page(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            meta = item.get("metadata") or {}
            key = (str(meta.get("namespace")), str(meta.get("name")))
            self._listed.add(key)
            self._seen.add(key)
            try:
                self.check(meta)
            except SparkSecretsError as exc:
                self.metrics.failures += 1
                self.report(key, "RotationFailed", f"job secrets of {key[0]}/{key[1]} not checked: {exc}", "Warning")

    def _client(self, namespace: str, account: str) -> VaultClient:
        cached = self._clients.get((namespace, account))
        if cached is not None:
            if self.clock() - cached[0] < LOGIN_RENEW_S:
                return cached[1]
            try:
                cached[1].renew_self()
                self._clients[(namespace, account)] = (self.clock(), cached[1])
                return cached[1]
            except SparkSecretsError as exc:
                log.info("logging in again as %s/%s: %s", namespace, account, exc)
        jwt = self.kube.service_account_token(namespace, account, seconds=600)
        role = role_for(self.vault.role or "", namespace, account)
        try:
            client = self._login(replace(self.vault, role=role), jwt)
        except VaultError as exc:  # say whose login it was: the account the job's pods run as
            raise type(exc)(f"{exc.problem} as service account {namespace}/{account}", exc.fix) from None
        client.identity = f"service account {namespace}/{account} (Kubernetes auth role {role})"
        self._clients[(namespace, account)] = (self.clock(), client)
        return client

    def check(self, meta: dict[str, Any]) -> bool:
        """Brings one Secret's floating ``vault:`` values to their current versions and its leases forward;
        True if it changed."""
        notes = meta.get("annotations") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        try:
            refs = json.loads(notes.get(ANNOTATION_REFERENCES) or "{}")
            versions = {k: str(v) for k, v in json.loads(notes.get(ANNOTATION_VERSIONS) or "{}").items()}
            leases: dict[str, dict[str, Any]] = {
                str(k): dict(v) for k, v in json.loads(notes.get(ANNOTATION_LEASES) or "{}").items()}
        except (ValueError, AttributeError, TypeError):
            raise ConfigError(f"Secret {namespace}/{name} has unreadable reference annotations",
                              "recreate it with spark-secrets submit") from None
        secrets: list[JobSecret] = [parse_job_secret(f"spark.secrets.{k}", v) for k, v in sorted(refs.items())]
        account = self._job_account(meta)
        if account is None:
            self._waiting.add((namespace, name))
            return False
        self._waiting.discard((namespace, name))
        changed = False
        if leases:
            self._round[(namespace, name)] = (account, {str(r["id"]) for r in leases.values()})
            patched = self._renew_leases(meta, secrets, leases, account)
            if patched is not None:  # go on from the Secret as it now is
                meta, changed = patched.get("metadata") or meta, True
        floating = [s for s in secrets if s.ref.scheme == "vault" and s.ref.version is None
                    and s.ref.location not in leases]
        if not floating:
            return changed
        client = self._client(namespace, account)
        moved = {}
        for location in sorted({s.ref.location for s in floating}):
            mount, _, path = location.partition("/")
            current = client.current_version(mount, path)
            if str(current) != versions.get(location):
                moved[location] = current
        if not moved:
            return changed
        # Read as the versions they are now (a read races no later rotation: the next round sees it).
        stale = [replace(s, ref=replace(s.ref, version=moved[s.ref.location])) for s in floating
                 if s.ref.location in moved]
        resolved = Resolver(lambda: client).resolve(stale)
        data = {data_key(s.kind, s.name): base64.b64encode(v).decode("ascii") for s, v in resolved.values.items()}
        new_versions = {**versions, **{k: str(v) for k, v in resolved.versions.items()}}
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                              "annotations": {ANNOTATION_VERSIONS: references_annotation(new_versions)}},
                 "data": data}
        self.kube.patch_secret(namespace, name, patch)
        self.metrics.secret_rotations += 1
        changes = ", ".join(f"{loc} version {versions.get(loc, '?')} -> {v}" for loc, v in sorted(resolved.versions.items()))
        self.report((namespace, name), "SecretsRotated", f"job secrets of {namespace}/{name} updated: {changes}", "Normal")
        return True

    # -- leases ------------------------------------------------------------------------------------
    def _renew_leases(self, meta: dict[str, Any], secrets: list[JobSecret], leases: dict[str, dict[str, Any]],
                      account: str) -> dict[str, Any] | None:
        """Renews the leases that are due, replaces those that cannot be renewed for a full lease; the Secret
        as patched, or None if it was left alone."""
        namespace, name = str(meta["namespace"]), str(meta["name"])
        now = self.wall()
        updated: dict[str, dict[str, Any]] = {}
        replace_at: list[str] = []
        for location, record in sorted(leases.items()):
            ttl, until, lease_id = int(record["ttl"]), float(record["until"]), str(record["id"])
            due = until - ttl * (1 - LEASE_RATIO)
            if now < due and lease_id in self._known:
                self._note_due(due)
                continue
            # Due, or first seen: a lease made by the submitter (or before a restart) can only be renewed by
            # the login that made it; one this service cannot renew is replaced now, while it still works.
            client = self._client(namespace, account)
            try:
                left = client.renew_lease(lease_id, increment=ttl)
                self._known.add(lease_id)
                self.metrics.count("vault-lease", "renew")
                log.info("renewed lease %s of %s/%s: %d s left", lease_id, namespace, name, left)
            except VaultNotFound:
                left = 0
            if left >= ttl:
                updated[location] = {**record, "until": int(now + left)}
                self._note_due(now + left - ttl * (1 - LEASE_RATIO))
            else:  # the max TTL is near (or the lease is gone): new credentials while the old still work
                replace_at.append(location)
                self._retired.setdefault((namespace, name), set()).add(lease_id)  # revoked at the job's end
        if replace_at:
            client = self._client(namespace, account)
            stale = [s for s in secrets if s.ref.scheme == "vault" and s.ref.location in replace_at]
            resolved = Resolver(lambda: client).resolve(stale)
            data = {data_key(s.kind, s.name): base64.b64encode(v).decode("ascii") for s, v in resolved.values.items()}
            for location, lease in resolved.leases.items():
                updated[location] = lease_record(lease.lease_id, lease.duration, lease.issued + lease.duration,
                                                 lease.issued)
                self._note_due(lease.issued + lease.duration * LEASE_RATIO)
                self.metrics.count("vault-lease", "replace")
                self._known.add(lease.lease_id)
                self._round[(namespace, name)][1].add(lease.lease_id)
        if not updated:
            return None
        patch: dict[str, Any] = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "annotations": {
            ANNOTATION_LEASES: references_annotation({**leases, **updated})}}}
        if replace_at:
            patch["data"] = data
        patched = self.kube.patch_secret(namespace, name, patch)
        if replace_at:
            self.metrics.secret_rotations += 1
            self.report((namespace, name), "SecretsRotated",
                        f"job secrets of {namespace}/{name}: new leased credentials from {', '.join(replace_at)} "
                        "(the old ones end at their max TTL)", "Normal")
        return patched

    def _job_account(self, meta: dict[str, Any]) -> str | None:
        """The service account the job's pods run as: the owning driver pod's if it mounts the Secret, else
        the one account of every pod that mounts it; None while there is none (or they disagree)."""
        namespace, name = str(meta["namespace"]), str(meta["name"])
        key = (namespace, name)
        if key in self._accounts:
            return self._accounts[key]
        try:
            owners = [r for r in meta.get("ownerReferences") or [] if r.get("kind") == "Pod"]
            pods: list[dict[str, Any]] = []
            for ref in owners:
                try:
                    pod = self.kube.read_pod(namespace, str(ref.get("name")))
                except KubernetesNotFound:
                    continue
                if (pod.get("metadata") or {}).get("uid") == ref.get("uid"):
                    pods.append(pod)
            users = [p for p in pods if name in secrets_used(p)]
            if not users:
                users = [p for p in self.kube.list_pods(namespace) if name in secrets_used(p)]
        except KubernetesError as exc:
            log.info("cannot tell which account %s/%s's pods run as: %s", namespace, name, exc.problem)
            return None
        accounts = {str((p.get("spec") or {}).get("serviceAccountName") or "default") for p in users}
        if len(accounts) != 1:
            if len(accounts) > 1:
                self.report(key, "RotationFailed", f"job secrets of {namespace}/{name} not read: pods of several "
                                                   f"service accounts mount it ({', '.join(sorted(accounts))})",
                            "Warning")
            return None
        (account,) = accounts
        self._accounts[key] = account
        return account

    @staticmethod
    def _lease_records(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
        try:
            found = json.loads((meta.get("annotations") or {}).get(ANNOTATION_LEASES) or "{}")
            return {str(k): dict(v) for k, v in found.items()}
        except (ValueError, AttributeError, TypeError):
            return {}

    def _note_due(self, when: float) -> None:
        """A lease falls due at ``when`` (epoch s): the next round comes no later (also when a watch event,
        not a round, brought the lease)."""
        self._lease_due = when if self._lease_due is None else min(self._lease_due, when)
        self._next = min(self._next, self.clock() + max(when - self.wall(), 1.0))

    def _revoke(self, key: Key, account: str, lease_ids: set[str]) -> None:
        """The job's Secret is gone: its credentials end now, not at their TTL."""
        namespace, name = key
        lease_ids = (lease_ids | self._retired.pop(key, set())) & self._known  # the submitter's ends at its TTL
        if not lease_ids:
            return
        try:
            client = self._client(namespace, account)
            for lease_id in sorted(lease_ids):
                try:
                    client.revoke_lease(lease_id)
                except VaultNotFound:
                    continue
                self.metrics.count("vault-lease", "revoke")
            log.info("revoked the leases of %s/%s: %s", namespace, name, ", ".join(sorted(lease_ids)))
        except SparkSecretsError as exc:
            self.metrics.failures += 1
            log.warning("could not revoke the leases of %s/%s (they end at their TTL): %s", namespace, name, exc)


def secrets_used(pod: dict[str, Any]) -> set[str]:
    """The names of the Secrets a pod uses: volumes, projected sources, env and envFrom of every container."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for volume in spec.get("volumes") or []:
        if volume.get("secret"):
            names.add(str(volume["secret"].get("secretName")))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("secret"):
                names.add(str(source["secret"].get("name")))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    names.add(str(ref.get("name")))
            for source in container.get("envFrom") or []:
                if source.get("secretRef"):
                    names.add(str(source["secretRef"].get("name")))
    return names
