"""RBAC layouts for token Secrets and the renew service's keytab, as manifests (plain dicts).

A delegation token lets whoever holds it act as its owner on HDFS, so:

==================  =========  ============  ===========  =================  ==========================
                    job owner  owner's pods  other users  other users' pods  renew service
==================  =========  ============  ===========  =================  ==========================
token Secret        create     get           none         none               get, update, delete
renew keytab        none       none          none         none               get
==================  =========  ============  ===========  =================  ==========================

Every layout shares :func:`common` (the renew service's namespace, account, keytab access and
ClusterRoles) and adds one way of separating users:

``namespace-per-user``
    ``spark-<user>`` per user; the user may create Secrets there but not read them; the namespace's
    ``spark`` account (the job's pods) may get them.
``group``
    ``spark-<group>`` per group; members may create and read each other's token Secrets, as may the
    group's ``spark`` account.
``precreated``
    one namespace per group with a Secret ``hadoop-tokens-<user>`` made by the admin for each member;
    a member may only fill their own (``resourceNames``), their ``spark-<user>`` account may only get it.
``controller``
    a shared namespace where users may only create Secrets; the renew service (``--grant-access``)
    gives each Secret's ``spark-<user>`` account ``get`` on exactly that Secret.

Printed by ``spark-secrets rbac``; ``conf/rbac/`` holds examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spark_secrets.errors import ConfigError
# Re-exported: the layouts' public names include the policies'.
from spark_secrets.kube.policies import (
    ADMISSION as ADMISSION,
    LABEL_LAYOUT as LABEL_LAYOUT,
    OWNER_POLICY as OWNER_POLICY,
    OWNERS_CONFIGMAP as OWNERS_CONFIGMAP,
    POD_POLICY as POD_POLICY,
    RENEWER_NAMESPACE as RENEWER_NAMESPACE,
    SHARED_LAYOUTS as SHARED_LAYOUTS,
    Manifest as Manifest,
    owner_policy as owner_policy,
    pod_policy as pod_policy,
)
from spark_secrets.kube.policies import meta
from spark_secrets.secrets.tokensecret import LABEL_OWNER, LABEL_PERSISTENT

RBAC = "rbac.authorization.k8s.io"
RENEWER_ACCOUNT = "spark-secrets-renewer"
KEYTAB_SECRET = "spark-secrets-renewer-keytab"
LEASE = "spark-secrets-renewer"
LAYOUTS = ("namespace-per-user", "group", "precreated", "controller")

#: What Spark's driver (and ``spark-submit`` in cluster mode) does with the API: executor pods, their
#: services and ConfigMaps, volumes. Secrets are deliberately absent.
_SPARK_RULES = [
    {"apiGroups": [""], "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
     "verbs": ["create", "get", "list", "watch", "delete", "deletecollection", "patch", "update"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    # Spark 4 puts each application behind a NetworkPolicy of its own (server-side apply).
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
     "verbs": ["create", "get", "list", "watch", "delete", "patch", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": meta(name), "rules": rules}


def _role(name: str, namespace: str, rules: list[dict[str, Any]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": meta(name, namespace), "rules": rules}


def _binding(name: str, namespace: str, role_kind: str, role: str, subjects: list[dict[str, str]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": meta(name, namespace),
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role}, "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def group_subject(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _namespace(name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta(name)}


def _service_account(name: str, namespace: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name, namespace)}


def _secret_rule(verbs: list[str], names: Sequence[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": verbs}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def common(*, renewer_namespace: str = RENEWER_NAMESPACE,
           submitters: Sequence[tuple[str, Sequence[str]]] = ()) -> list[Manifest]:
    """The renew service's namespace and account, its keytab access and lease, the ClusterRoles the
    layouts bind, and the admission policy that binds token Secrets' owners to their creators."""
    renewer = account(RENEWER_ACCOUNT, renewer_namespace)
    return [
        _namespace(renewer_namespace),
        _service_account(RENEWER_ACCOUNT, renewer_namespace),
        _cluster_role("spark-secrets-renewer", [
            _secret_rule(["get", "list", "watch", "patch", "update", "delete"]),
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        _cluster_role("spark-secrets-renewer-grants", [
            {"apiGroups": [RBAC], "resources": ["roles", "rolebindings"], "verbs": ["get", "create", "delete"]}]),
        # Rotating job secrets (--vault-role): a short-lived token of a job's driver account, to read
        # OpenBao/Vault as that job. Bind it only in namespaces whose jobs' secrets it keeps current.
        _cluster_role("spark-secrets-renewer-vault", [
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]),
        # and may ask whether the renew service and their job's account may do their part there
        # (spark-secrets doctor), as the built-in admin role may
        _cluster_role("spark-secrets-submitter", [*_SPARK_RULES, {
            "apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]}]),
        _cluster_role("spark-secrets-token-creator", [_secret_rule(["create"])]),
        _cluster_role("spark-secrets-driver", _SPARK_RULES),
        _role("spark-secrets-renewer-keytab", renewer_namespace, [_secret_rule(["get"], [KEYTAB_SECRET])]),
        _binding("spark-secrets-renewer-keytab", renewer_namespace, "Role", "spark-secrets-renewer-keytab",
                 [renewer]),
        _role("spark-secrets-renewer-lease", renewer_namespace, [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]),
        _binding("spark-secrets-renewer-lease", renewer_namespace, "Role", "spark-secrets-renewer-lease", [renewer]),
        # Anyone signed in may read the service's Lease (who holds it, since when, its principal):
        # spark-secrets doctor tells from it whether the service runs. It holds no secret.
        _role("spark-secrets-renewer-status", renewer_namespace, [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"], "resourceNames": [LEASE]}]),
        _binding("spark-secrets-renewer-status", renewer_namespace, "Role", "spark-secrets-renewer-status",
                 [group_subject("system:authenticated")]),
        # The renew service checks that the owner policy is bound over a Secret's namespace before acting.
        _cluster_role("spark-secrets-renewer-admission", [
            {"apiGroups": [ADMISSION], "resources": ["validatingadmissionpolicies"], "verbs": ["get"],
             "resourceNames": [OWNER_POLICY]},
            {"apiGroups": [ADMISSION], "resources": ["validatingadmissionpolicybindings"], "verbs": ["list"]},
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}]),
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": meta("spark-secrets-renewer-admission"),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "spark-secrets-renewer-admission"},
         "subjects": [renewer]},
        *owner_policy(renewer_namespace, submitters),
        *pod_policy(renewer_namespace),
    ]


def _spark_namespace(namespace: str, *, renewer_namespace: str, grants: bool = False,
                     layout_name: str | None = None) -> list[Manifest]:
    """A namespace jobs run in (labelled with its layout), with the renew service bound to its ClusterRole(s)."""
    renewer = [account(RENEWER_ACCOUNT, renewer_namespace)]
    ns = _namespace(namespace)
    if layout_name:
        ns["metadata"]["labels"][LABEL_LAYOUT] = layout_name
    out = [ns,
           _binding("spark-secrets-renewer", namespace, "ClusterRole", "spark-secrets-renewer", renewer)]
    if grants:
        out.append(_binding("spark-secrets-renewer-grants", namespace, "ClusterRole", "spark-secrets-renewer-grants",
                            renewer))
    return out


def namespace_per_user(users: Sequence[str], *, renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    out: list[Manifest] = []
    for name in users:
        ns = f"spark-{name}"
        out += _spark_namespace(ns, renewer_namespace=renewer_namespace, layout_name="namespace-per-user")
        out += [
            _service_account("spark", ns),
            _binding("spark-secrets-submitter", ns, "ClusterRole", "spark-secrets-submitter", [user(name)]),
            _binding("spark-secrets-token-creator", ns, "ClusterRole", "spark-secrets-token-creator", [user(name)]),
            _binding("spark-secrets-driver", ns, "ClusterRole", "spark-secrets-driver", [account("spark", ns)]),
            _role("spark-secrets-token-reader", ns, [_secret_rule(["get"])]),
            _binding("spark-secrets-token-reader", ns, "Role", "spark-secrets-token-reader", [account("spark", ns)]),
        ]
    return out


def group(name: str, *, namespace: str | None = None, renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    ns = namespace or f"spark-{name}"
    members = [group_subject(name)]
    return [
        *_spark_namespace(ns, renewer_namespace=renewer_namespace, layout_name="group"),
        _service_account("spark", ns),
        _binding("spark-secrets-submitter", ns, "ClusterRole", "spark-secrets-submitter", members),
        _binding("spark-secrets-token-creator", ns, "ClusterRole", "spark-secrets-token-creator", members),
        _binding("spark-secrets-driver", ns, "ClusterRole", "spark-secrets-driver", [account("spark", ns)]),
        _role("spark-secrets-token-reader", ns, [_secret_rule(["get", "list"])]),
        _binding("spark-secrets-token-reader", ns, "Role", "spark-secrets-token-reader",
                 [*members, account("spark", ns)]),
    ]


def precreated_secret_name(user_name: str) -> str:
    return f"hadoop-tokens-{user_name}"


def precreated(name: str, users: Sequence[str], *, namespace: str | None = None,
               renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    ns = namespace or f"spark-{name}"
    out = [*_spark_namespace(ns, renewer_namespace=renewer_namespace, layout_name="precreated"),
           _binding("spark-secrets-submitter", ns, "ClusterRole", "spark-secrets-submitter", [group_subject(name)])]
    for member in users:
        secret, sa = precreated_secret_name(member), f"spark-{member}"
        labelled = meta(secret, ns)
        labelled["labels"].update({LABEL_OWNER: member, LABEL_PERSISTENT: "true"})
        out += [
            {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": labelled},
            _service_account(sa, ns),
            _binding(f"spark-secrets-driver-{member}", ns, "ClusterRole", "spark-secrets-driver", [account(sa, ns)]),
            _role(f"spark-secrets-fill-{member}", ns, [_secret_rule(["patch", "update"], [secret])]),
            _binding(f"spark-secrets-fill-{member}", ns, "Role", f"spark-secrets-fill-{member}", [user(member)]),
            _role(f"spark-secrets-read-{member}", ns, [_secret_rule(["get"], [secret])]),
            _binding(f"spark-secrets-read-{member}", ns, "Role", f"spark-secrets-read-{member}", [account(sa, ns)]),
        ]
    return out


def controller(namespace: str, users: Sequence[str], *, renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    out = [*_spark_namespace(namespace, renewer_namespace=renewer_namespace, grants=True, layout_name="controller")]
    submitters = [user(u) for u in users]
    out += [_binding("spark-secrets-submitter", namespace, "ClusterRole", "spark-secrets-submitter", submitters),
            _binding("spark-secrets-token-creator", namespace, "ClusterRole", "spark-secrets-token-creator",
                     submitters)]
    for member in users:
        sa = f"spark-{member}"
        out += [_service_account(sa, namespace),
                _binding(f"spark-secrets-driver-{member}", namespace, "ClusterRole", "spark-secrets-driver",
                         [account(sa, namespace)])]
    return out


def layout(name: str, *, users: Sequence[str] = (), group_name: str | None = None, namespace: str | None = None,
           renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    """The manifests of one layout (without :func:`common`)."""
    def need(what: str, value: object, flag: str) -> None:
        if not value:
            raise ConfigError(f"layout {name} needs {what}", f"give {flag}")

    if name == "namespace-per-user":
        need("users", users, "--user NAME (repeatable)")
        return namespace_per_user(users, renewer_namespace=renewer_namespace)
    if name == "group":
        need("a group", group_name, "--group NAME")
        return group(str(group_name), namespace=namespace, renewer_namespace=renewer_namespace)
    if name == "precreated":
        need("a group", group_name, "--group NAME")
        need("users", users, "--user NAME (repeatable)")
        return precreated(str(group_name), users, namespace=namespace, renewer_namespace=renewer_namespace)
    if name == "controller":
        need("a namespace", namespace, "--namespace NS")
        need("users", users, "--user NAME (repeatable)")
        return controller(str(namespace), users, renewer_namespace=renewer_namespace)
    raise ConfigError(f"unknown layout {name!r}", f"use one of {', '.join(LAYOUTS)}")
