"""Controller mode of the renew service: per-Secret read access for the job's service account.

For each token Secret it tracks, the service creates a Role allowing ``get`` on exactly that Secret
(``resourceNames``) and a RoleBinding of it to the owner's job account, a pattern of the owner label
(``spark-{owner}``; the label is bound to the Secret's creator by the owner policy, while an annotation
naming an account would be the writer's choice). Both are owned by the Secret, so they go with it even while the service is down;
the service also deletes them itself when it sees the Secret go.
"""

from __future__ import annotations

import hashlib
import logging

from spark_secrets.errors import KubernetesConflict, KubernetesNotFound, UnusableSecret
from spark_secrets.kube._extra import load
from spark_secrets.kube.client import KubeClient
from spark_secrets.secrets.tokensecret import TokenSecret

log = logging.getLogger("spark_secrets.renew.grants")

RBAC_GROUP = "rbac.authorization.k8s.io"
#: Marks the Roles and RoleBindings this module makes.
LABEL_GRANT_FOR = "spark-secrets.io/grant-for"


def grant_name(secret_name: str) -> str:
    """``<secret>-reader``, shortened with a hash when the Secret's name is near the 253-character limit."""
    name = f"{secret_name}-reader"
    if len(name) <= 253:
        return name
    digest = hashlib.sha256(secret_name.encode()).hexdigest()[:10]
    return f"{secret_name[:230]}-{digest}-reader"


class AccessGrants:
    """Creates and removes the Role and RoleBinding that let a job's pods read their token Secret."""

    def __init__(self, kube: KubeClient, service_account_pattern: str = "spark-{owner}") -> None:
        self.kube = kube
        self.pattern = service_account_pattern
        # Only in controller mode: its import costs ~0.3 s at start, and it is the ``kube`` extra.
        k8s = load("kubernetes.client", "the controller layout's per-Secret grants")
        self.rbac = k8s.RbacAuthorizationV1Api(kube.api_client)

    def __repr__(self) -> str:
        return f"AccessGrants(pattern={self.pattern!r})"

    def service_account(self, ts: TokenSecret) -> str:
        """The owner's job account by the pattern: the owner label is the one the API server bound to the
        Secret's creator; the Secret's ``service-account`` annotation is its writer's word, never used here."""
        return self.pattern.format(owner=ts.owner_label)

    def grant(self, ts: TokenSecret) -> str:
        """Make ``ts`` readable by its job's service account (idempotent); returns that account."""
        if not ts.owner_label:
            raise UnusableSecret(f"{ts.ref} names no owner, so no account to grant", "recreate it with spark-secrets")
        account = self.service_account(ts)
        name = grant_name(ts.name)
        meta = {"name": name, "namespace": ts.namespace, "labels": {LABEL_GRANT_FOR: _label(ts.name)},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": ts.name, "uid": ts.uid}]}
        role = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": meta,
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [ts.name],
                           "verbs": ["get"]}]}
        binding = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding", "metadata": meta,
                   "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ts.namespace}]}
        for what, create, body in (("Role", self.rbac.create_namespaced_role, role),
                                   ("RoleBinding", self.rbac.create_namespaced_role_binding, binding)):
            try:
                self.kube.call(f"create {what} {ts.namespace}/{name}", create, ts.namespace, body,
                                _preload_content=False)
            except KubernetesConflict:
                pass  # already granted (by this replica before a restart, or another one)
        return account

    def revoke(self, namespace: str, secret_name: str) -> None:
        name = grant_name(secret_name)
        for what, delete in (("RoleBinding", self.rbac.delete_namespaced_role_binding),
                             ("Role", self.rbac.delete_namespaced_role)):
            try:
                self.kube.call(f"delete {what} {namespace}/{name}", delete, name, namespace, _preload_content=False)
            except KubernetesNotFound:
                pass


def _label(text: str) -> str:
    return text if len(text) <= 63 else hashlib.sha256(text.encode()).hexdigest()[:63]
