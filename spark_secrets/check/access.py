"""Checks of the job's own RBAC: the submitter may create (or fill) the token Secret, and the driver's
service account may read it, asked of the API server (access reviews), not inferred from manifests."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from spark_secrets.check.report import FAIL, OK, WARN, Check
from spark_secrets.errors import KubernetesForbidden, KubernetesInvalid, SparkSecretsError
from spark_secrets.kube.client import KubeClient
from spark_secrets.kube.rbac import OWNER_POLICY, POD_POLICY, SHARED_LAYOUTS
from spark_secrets.secrets.tokensecret import KIND_HADOOP_TOKENS, LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY

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


POLICY_FIX = ("ask a cluster admin to apply spark-secrets rbac common (the ValidatingAdmissionPolicy "
              "spark-secrets-token-owner, its binding and ConfigMap)")


def _refusal(name: str, attempt: Callable[[], object], marker: str, refused: str, admitted: str, fix: str,
             what: str) -> Check:
    """A dry run that an admission policy must refuse: ✔ when ``marker`` (the policy's own words) is in the
    refusal, ! when something else refused it (RBAC), ✗ with ``fix`` when the API server admitted it."""
    try:
        attempt()
    except (KubernetesForbidden, KubernetesInvalid) as exc:
        if marker in exc.problem:
            return Check(name, OK, refused)
        return Check(name, WARN, f"cannot tell: you may not {what} ({exc.problem})")
    except SparkSecretsError as exc:
        return Check(name, WARN, f"cannot tell: {exc.problem}")
    return Check(name, FAIL, admitted, fix)


def check_owner_policy(kube: KubeClient, namespace: str, fill: str | None) -> Check:
    """Whether the API server binds token Secrets' owner labels to their creators in ``namespace``: a dry-run
    token Secret claiming an owner nobody is must be refused by the owner policy. Without it the renew
    service acts for no Secret there (it refuses what the policy does not cover)."""
    stranger = f"doctor-{secrets.token_hex(4)}"
    body: dict[str, Any]
    if fill:  # may only fill a pre-created Secret: ask by changing its owner label, which nobody may
        what = f"patch the owner label of {namespace}/{fill}"
        path, method, body = f"/api/v1/namespaces/{namespace}/secrets/{fill}", "PATCH", {
            "metadata": {"labels": {LABEL_OWNER: stranger}}}
    else:
        what = f"create a token Secret in {namespace}"
        path, method, body = f"/api/v1/namespaces/{namespace}/secrets", "POST", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"generateName": "spark-secrets-doctor-", "labels": {
                LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS, LABEL_OWNER: stranger}}}
    return _refusal(
        "owner policy",
        lambda: kube.request("dry-run a token Secret", method, path, params={"dryRun": "All"}, body=body,
                             content_type="application/merge-patch+json" if fill else "application/json"),
        LABEL_OWNER, f"the API server refuses token Secrets in {namespace} that name someone else as owner "
                     f"({OWNER_POLICY})",
        f"the API server would let you {what} for another owner (dry run): no owner policy binds it, so the renew "
        "service refuses the job's Secret (unless you are in a group the policy lets claim any owner)",
        POLICY_FIX, what)


def check_pod_policy(kube: KubeClient, namespace: str, layout: str) -> Check | None:
    """In a shared layout's namespace, whether the API server refuses a pod that mounts another user's job
    Secret (a dry run); None for the other layouts, which need no pod policy."""
    if layout not in SHARED_LAYOUTS:
        return None
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "spark-secrets-doctor-"},
             "spec": {"containers": [{"name": "probe", "image": "probe"}],
                      "volumes": [{"name": "t", "secret": {"secretName": f"doctor-{secrets.token_hex(4)}--probe"
                                                                         "-hadoop-tokens"}}]}}
    return _refusal(
        "pod policy",
        lambda: kube.request("dry-run a pod", "POST", f"/api/v1/namespaces/{namespace}/pods",
                             params={"dryRun": "All"}, body=probe),
        POD_POLICY, f"the API server refuses pods in {namespace} that mount another user's job Secret ({POD_POLICY})",
        f"the API server would let anyone who may create pods in {namespace} mount your tokens ({layout} layout, "
        "dry run): no pod policy binds this namespace",
        "ask a cluster admin to apply spark-secrets rbac common and label the namespace "
        f"spark-secrets.io/layout={layout} (spark-secrets rbac {layout} does)", f"create pods in {namespace}")
