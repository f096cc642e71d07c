"""Checks of the job's own RBAC: the submitter may create (or fill) the token Secret, and the driver's
service account may read it, asked of the API server (access reviews), not inferred from manifests."""

from __future__ import annotations

from spark_secrets.doctor.report import FAIL, OK, WARN, Check
from spark_secrets.errors import KubernetesForbidden, SparkSecretsError
from spark_secrets.kube import KubeClient

LAYOUT_FIX = "ask an admin to apply your layout (spark-secrets rbac <layout> ... | kubectl apply -f -)"


def check_submitter(kube: KubeClient, namespace: str, fill: str | None) -> Check:
    name = "your access"
    verb, what = ("patch", f"the pre-created Secret {namespace}/{fill}") if fill else ("create", f"Secrets in {namespace}")
    try:
        allowed = kube.can_i(verb, "secrets", namespace, name=fill)
    except SparkSecretsError as exc:
        return Check(name, FAIL, f"cannot ask the API server: {exc.problem}", exc.fix or "")
    if not allowed:
        return Check(name, FAIL, f"you may not {verb} {what}",
                     "submit to a namespace where you may (spark.kubernetes.namespace), or " + LAYOUT_FIX)
    return Check(name, OK, f"you may {verb} {what}")


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """The groups the API server puts every service account of ``namespace`` in."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


def check_driver_account(kube: KubeClient, namespace: str, account: str | None, secret: str | None,
                         layout: str) -> Check:
    name = "driver account"
    account = account or "default"
    user = f"system:serviceaccount:{namespace}:{account}"
    if layout == "controller":
        return Check(name, OK, f"{account} is granted get on each job's Secret by the renew service (controller "
                               "layout, --grant-access)")
    try:
        allowed = kube.may(user, service_account_groups(namespace), "get", "secrets", namespace, secret)
    except KubernetesForbidden:
        return Check(name, WARN, f"you may not ask whether {account} may read Secrets in {namespace}",
                     "apply the layout's RBAC (spark-secrets rbac): its submitter role may ask")
    except SparkSecretsError as exc:
        return Check(name, WARN, f"cannot review the access of {account}: {exc.problem}")
    if not allowed:
        return Check(name, FAIL, f"the driver's service account {account} may not get Secrets in {namespace}: the "
                                 "pods could not mount the token file",
                     "set spark.kubernetes.authenticate.driver.serviceAccountName to an account that may, or "
                     + LAYOUT_FIX)
    return Check(name, OK, f"{account} may get " + (f"Secret {secret}" if secret else f"Secrets in {namespace}"))
