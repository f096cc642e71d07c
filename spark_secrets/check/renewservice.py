"""Checks of the renew service as a job will meet it: running (its Lease fresh), the principal the
job's tokens must name as renewer, and its right to work on Secrets in the job's namespace. The
service writes who it is into its Lease (``spark-secrets renewer --lease``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spark_secrets.check.report import FAIL, OK, WARN, Check
from spark_secrets.duration import duration_text
from spark_secrets.errors import KubernetesForbidden, KubernetesNotFound, SparkSecretsError
from spark_secrets.login.kerberos import short_name
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.lease import (LEASE_GROUPS, LEASE_HEALTH, LEASE_NAMESPACES, LEASE_PRINCIPAL, LEASE_USER,
                                       parse_micro_time)

#: What the service must be allowed on Secrets in a job's namespace (conf/rbac: spark-secrets-renewer).
SERVICE_VERBS = ("list", "watch", "get", "patch")


@dataclass(frozen=True)
class RenewServiceView:
    """What the Lease says of the service."""

    lease: str
    holder: str
    renewed_ago_s: float
    term_s: float
    principal: str | None
    user: str | None
    groups: tuple[str, ...]
    namespaces: tuple[str, ...] | None  # None: every namespace
    health: str | None = None  # its health server's base URL, as it sees itself

    @property
    def running(self) -> bool:
        return self.renewed_ago_s <= self.term_s


def read_service(kube: KubeClient, namespace: str, name: str) -> tuple[Check, RenewServiceView | None]:
    where = f"{namespace}/{name}"
    try:
        lease = kube.read_lease(namespace, name)
    except KubernetesNotFound:
        return Check("renew service", WARN, f"no Lease {where}: no renew service found, so nothing renews or "
                                            "re-issues the job's tokens; a job ends at their first expiry",
                     "deploy it (conf/renewer/renewer.yaml), or name its Lease in spark.secrets.renewService.lease"), None
    except KubernetesForbidden:
        return Check("renew service", WARN, f"you may not read its Lease {where}, so whether it runs is unknown",
                     "apply conf/rbac/common.yaml (lets anyone signed in read that one Lease)"), None
    except SparkSecretsError as exc:
        return Check("renew service", WARN, f"cannot read its Lease {where}: {exc.problem}"), None
    spec, notes = lease.get("spec") or {}, (lease.get("metadata") or {}).get("annotations") or {}
    stamp = spec.get("renewTime") or spec.get("acquireTime")
    ago = float("inf")
    if stamp:
        renewed = parse_micro_time(str(stamp))
        if renewed is not None:
            ago = max(0.0, (dt.datetime.now(dt.timezone.utc) - renewed).total_seconds())
    listed = notes.get(LEASE_NAMESPACES, "*")
    view = RenewServiceView(
        lease=where, holder=str(spec.get("holderIdentity") or "nobody"), renewed_ago_s=ago,
        term_s=float(spec.get("leaseDurationSeconds") or 15), principal=notes.get(LEASE_PRINCIPAL),
        user=notes.get(LEASE_USER), groups=tuple(g for g in notes.get(LEASE_GROUPS, "").split(",") if g),
        namespaces=None if listed == "*" else tuple(n for n in listed.split(",") if n),
        health=notes.get(LEASE_HEALTH))
    when = "never" if ago == float("inf") else f"{duration_text(int(ago * 1000))} ago"
    if not view.running:
        return Check("renew service", FAIL, f"not running: its Lease {where} was last renewed {when} by {view.holder} "
                                            f"(a holder renews every {duration_text(int(view.term_s * 1000 / 3))})",
                     f"start it: kubectl -n {namespace} get pods,deployments (conf/renewer/renewer.yaml), and read "
                     "its log"), view
    detail = f"running: {view.holder} holds its Lease {where}, renewed {when}" + (
        f"; principal {view.principal}" if view.principal else "")
    ready = _readiness(view.health)
    if ready is False:
        return Check("renew service", WARN, f"{detail}; but its {view.health}/readyz says it is not ready (it has "
                                            "not listed every namespace it watches)",
                     f"read its log: kubectl -n {namespace} logs deploy/spark-secrets-renewer"), view
    return Check("renew service", OK, detail + ("; ready" if ready else "; its /readyz is not reachable from here"
                                                if view.health else "")), view


def _readiness(base: str | None) -> bool | None:
    """``/readyz`` of the service when this machine reaches it (None when not)."""
    if not base:
        return None
    import requests

    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return None


def check_renewer(would_name: str, configured: str | None, service: RenewServiceView | None) -> Check:
    """The renewer the tokens would name against the service's principal."""
    if service is None or not service.principal:
        if configured:
            return Check("renewer", OK, f"tokens would name {configured} as renewer (spark.secrets.renewer); the "
                                        "renew service's principal is unknown here")
        return Check("renewer", WARN, f"tokens would name you ({would_name}) as renewer: only you can renew them",
                     "set spark.secrets.renewer to the renew service's principal")
    theirs = short_name(service.principal)
    if short_name(would_name) == theirs:
        return Check("renewer", OK, f"tokens would name {would_name}, the renew service's principal "
                                    f"{service.principal}")
    origin = "spark.secrets.renewer" if configured else "spark.secrets.renewer unset: yourself"
    return Check("renewer", FAIL, f"tokens would name {would_name} as renewer ({origin}), but the renew service is "
                                  f"{service.principal}: it could not renew them",
                 f"--conf spark.secrets.renewer={theirs}")


def check_service_access(kube: KubeClient, service: RenewServiceView, namespace: str) -> Check:
    name = "renew service access"
    if service.namespaces is not None and namespace not in service.namespaces:
        return Check(name, FAIL, f"the renew service watches only {', '.join(service.namespaces)}, not {namespace}",
                     f"add --namespace {namespace} to its arguments, or run it with --all-namespaces")
    if not service.user:
        return Check(name, WARN, "its Kubernetes identity is not in its Lease, so its rights cannot be checked",
                     "restart the renew service with this version of spark-secrets (it writes its identity into its Lease)")
    try:
        denied = [v for v in SERVICE_VERBS if not kube.may(service.user, service.groups, v, "secrets", namespace)]
    except KubernetesForbidden:
        return Check(name, WARN, f"you may not ask what {service.user} may do in {namespace}",
                     "apply the layout's RBAC (spark-secrets rbac): its submitter role may ask")
    except SparkSecretsError as exc:
        return Check(name, WARN, f"cannot review the access of {service.user}: {exc.problem}")
    if denied:
        return Check(name, FAIL, f"the renew service ({service.user}) may not {', '.join(denied)} Secrets in "
                                 f"{namespace}: it would neither renew nor clean up the job's tokens",
                     "bind it there: spark-secrets rbac <your layout> ... | kubectl apply -f - (the RoleBinding "
                     "spark-secrets-renewer)")
    return Check(name, OK, f"{service.user} may {', '.join(SERVICE_VERBS)} Secrets in {namespace}")
