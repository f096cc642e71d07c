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
from spark_secrets.secrets.tokensecret import LABEL_MANAGED_BY, LABEL_OWNER, LABEL_PERSISTENT, MANAGED_BY, OWNER_SEPARATOR

Manifest = dict[str, Any]

RBAC = "rbac.authorization.k8s.io"
RENEWER_NAMESPACE = "spark-secrets-system"
RENEWER_ACCOUNT = "spark-secrets-renewer"
KEYTAB_SECRET = "spark-secrets-renewer-keytab"
LEASE = "spark-secrets-renewer"
LAYOUTS = ("namespace-per-user", "group", "precreated", "controller")
#: The admission policy that binds a Secret's owner label to the identity that created it, and its parameters.
OWNER_POLICY = "spark-secrets-token-owner"
OWNERS_CONFIGMAP = "spark-secrets-owners"
#: The admission policy on pods in shared namespaces: a pod mounts only its creator's Secrets and accounts.
POD_POLICY = "spark-secrets-pod-owner"
#: On a layout's namespace: which layout it follows; the pod policy binds the shared ones by it.
LABEL_LAYOUT = "spark-secrets.io/layout"
SHARED_LAYOUTS = ("controller", "precreated")
ADMISSION = "admissionregistration.k8s.io"

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


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {}),
                            "labels": {LABEL_MANAGED_BY: MANAGED_BY}}
    return meta


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(name), "rules": rules}


def _role(name: str, namespace: str, rules: list[dict[str, Any]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta(name, namespace), "rules": rules}


def _binding(name: str, namespace: str, role_kind: str, role: str, subjects: list[dict[str, str]]) -> Manifest:
    return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(name, namespace),
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role}, "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "User", "name": name}


def group_subject(name: str) -> dict[str, str]:
    return {"apiGroup": RBAC, "kind": "Group", "name": name}


def account(name: str, namespace: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _namespace(name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}


def _service_account(name: str, namespace: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace)}


def _secret_rule(verbs: list[str], names: Sequence[str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [""], "resources": ["secrets"], "verbs": verbs}
    if names:
        rule["resourceNames"] = list(names)
    return rule


_OWNER = f"'{LABEL_OWNER}'"
_HAS_OWNER = f"has(object.metadata.labels) && {_OWNER} in object.metadata.labels"
_HAD_OWNER = f"oldObject != null && has(oldObject.metadata.labels) && {_OWNER} in oldObject.metadata.labels"


def owner_policy(renewer_namespace: str = RENEWER_NAMESPACE,
                 submitters: Sequence[tuple[str, Sequence[str]]] = ()) -> list[Manifest]:
    """The ValidatingAdmissionPolicy, its binding and its parameters (a ConfigMap only admins write).

    A Secret labelled ``spark-secrets.io/owner`` may be created (or first labelled) only by that owner's
    own Kubernetes user (``sameName``), by a user listed for that owner in ``users`` (a service account
    that submits for others, such as an Airflow worker: ``system:serviceaccount:airflow:worker = alice bob``,
    or ``*`` for anyone), or by a member of ``anyOwnerGroups`` (admins pre-creating Secrets); the label
    cannot change or go afterwards, for anyone. The renew service acts only for that label."""
    params = {"sameName": "true", "anyOwnerGroups": "system:masters",
              "users": "".join(f"{who} = {' '.join(owners)}\n" for who, owners in submitters)}
    may_claim = _claim("variables.owner")
    policy = {
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": _meta(OWNER_POLICY),
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                    "operations": ["CREATE", "UPDATE"], "resources": ["secrets"]}]},
            "matchConditions": [{"name": "carries-an-owner", "expression": f"({_HAS_OWNER}) || ({_HAD_OWNER})"}],
            "variables": [
                {"name": "owner", "expression": f"{_HAS_OWNER} ? object.metadata.labels[{_OWNER}] : ''"},
                {"name": "oldOwner", "expression": f"{_HAD_OWNER} ? oldObject.metadata.labels[{_OWNER}] : ''"},
                *_PARAM_VARIABLES,
                {"name": "mayClaim", "expression": may_claim},
                {"name": "shared", "expression": _SHARED},
            ],
            "validations": [
                {"expression": "variables.oldOwner == '' || variables.owner == variables.oldOwner",
                 "reason": "Forbidden",
                 "messageExpression": f"'the owner label {LABEL_OWNER} cannot change or be removed (it is ' + "
                                      "variables.oldOwner + ')'"},
                {"expression": "variables.oldOwner != '' || variables.mayClaim", "reason": "Forbidden",
                 "messageExpression": "request.userInfo.username + ' may not label a Secret as owned by ' + "
                                      f"variables.owner + ' ({LABEL_OWNER}): only that user may, or one listed for it "
                                      f"in ConfigMap {renewer_namespace}/{OWNERS_CONFIGMAP}'"},
                # In a shared namespace the owner is in the name too, where the pod policy can see it.
                {"expression": "variables.oldOwner != '' || !variables.shared || variables.owner == '' || "
                               "object.metadata.name == 'hadoop-tokens-' + variables.owner || "
                               f"object.metadata.name.startsWith(variables.owner + '{OWNER_SEPARATOR}')",
                 "reason": "Forbidden",
                 "messageExpression": "'in a shared namespace a Secret owned by ' + variables.owner + "
                                      f"' ({LABEL_OWNER}) is named ' + variables.owner + '{OWNER_SEPARATOR}... or "
                                      "hadoop-tokens-' + variables.owner"},
            ],
        },
    }
    binding = {
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": _meta(OWNER_POLICY),
        "spec": {"policyName": OWNER_POLICY, "validationActions": ["Deny"],
                 "paramRef": {"name": OWNERS_CONFIGMAP, "namespace": renewer_namespace,
                              "parameterNotFoundAction": "Deny"}},
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(OWNERS_CONFIGMAP, renewer_namespace),
                 "data": params}
    return [configmap, policy, binding]


def _claim(owner: str) -> str:
    """CEL: whether the requester may act for ``owner`` (a CEL string expression): it is that user (sameName), a
    job account ``spark-<owner>`` of the request's namespace, in an anyOwnerGroups group, or a submitter listed
    for it (or for ``*``) in the parameters' ``users``."""
    return (f"({owner} != '' && ((variables.sameName == 'true' && {owner} == request.userInfo.username) || "
            f"request.userInfo.username == 'system:serviceaccount:' + request.namespace + ':spark-' + {owner} || "
            "variables.anyOwnerGroups.split(' ').exists(g, g != '' && has(request.userInfo.groups) && "
            "g in request.userInfo.groups) || "
            "variables.users.split('\\n').exists(l, size(l.split('=')) == 2 && "
            "l.split('=')[0].trim() == request.userInfo.username && "
            f"l.split('=')[1].trim().split(' ').exists(o, o == {owner} || o == '*'))))")


_PARAM_VARIABLES = tuple({"name": key, "expression": f"has(params.data) && '{key}' in params.data ? "
                                                      f"params.data['{key}'] : ''"}
                         for key in ("sameName", "anyOwnerGroups", "users"))
_SHARED = (f"has(namespaceObject.metadata.labels) && '{LABEL_LAYOUT}' in namespaceObject.metadata.labels && "
           f"namespaceObject.metadata.labels['{LABEL_LAYOUT}'] in {list(SHARED_LAYOUTS)}")
#: CEL on a Secret name ``n``: one of a job's Secrets (token or job secrets), and its owner by the name.
_OURS = "({n}.startsWith('hadoop-tokens-') || {n}.endsWith('-hadoop-tokens') || {n}.endsWith('-job-secrets'))"
_OWNER_OF = (f"({{n}}.startsWith('hadoop-tokens-') ? {{n}}.substring(14) : "
             f"({{n}}.indexOf('{OWNER_SEPARATOR}') > 0 ? {{n}}.substring(0, {{n}}.indexOf('{OWNER_SEPARATOR}')) : ''))")


def _secret_ok(n: str) -> str:
    """CEL: the pod may use the Secret named ``n``: not one of ours, or its owner is one the requester may act
    for, and the pod's own job account (if it runs as one) is that owner's."""
    owner = _OWNER_OF.format(n=n)
    return (f"(!{_OURS.format(n=n)} || ({_claim(owner)} && "
            f"(!variables.account.startsWith('spark-') || variables.account == 'spark-' + {owner})))")


def pod_policy(renewer_namespace: str = RENEWER_NAMESPACE) -> list[Manifest]:
    """The ValidatingAdmissionPolicy on pods of the shared layouts (:data:`SHARED_LAYOUTS`) and its binding.

    Kubernetes lets anyone who may create pods in a namespace mount any of its Secrets and run as any of
    its service accounts. In a namespace labelled with a shared layout, a pod may use (volume, projected
    source, ``secretKeyRef``, ``envFrom``, in any container) a job's Secret (``*-hadoop-tokens``,
    ``*-job-secrets``, ``hadoop-tokens-<user>``) only if its owner, which those layouts put in the name
    (``<user>--…``, ``hadoop-tokens-<user>``), is one the pod's creator may act for (:func:`_claim`: the
    user themself, their job account ``spark-<user>`` creating executors, a listed submitter), and may run as
    a job account ``spark-<user>`` only on the same terms. Other Secrets and accounts keep Kubernetes' rules."""
    groups = ("containers", "initContainers", "ephemeralContainers")
    env_ok = " && ".join(
        f"(!has(object.spec.{g}) || object.spec.{g}.all(c, "
        f"(!has(c.env) || c.env.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || "
        f"{_secret_ok('e.valueFrom.secretKeyRef.name')})) && "
        f"(!has(c.envFrom) || c.envFrom.all(f, !has(f.secretRef) || {_secret_ok('f.secretRef.name')}))))"
        for g in groups)
    volumes_ok = ("!has(object.spec.volumes) || object.spec.volumes.all(v, "
                  f"(!has(v.secret) || !has(v.secret.secretName) || {_secret_ok('v.secret.secretName')}) && "
                  "(!has(v.projected) || !has(v.projected.sources) || v.projected.sources.all(s, "
                  f"!has(s.secret) || !has(s.secret.name) || {_secret_ok('s.secret.name')})))")
    who = "request.userInfo.username"
    policy = {
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": _meta(POD_POLICY),
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                 "resources": ["pods/ephemeralcontainers"]}]},
            "variables": [
                *_PARAM_VARIABLES,
                {"name": "account", "expression": "has(object.spec.serviceAccountName) && "
                                                  "object.spec.serviceAccountName != '' ? "
                                                  "object.spec.serviceAccountName : 'default'"},
            ],
            "validations": [
                {"expression": "!variables.account.startsWith('spark-') || "
                               + _claim("variables.account.substring(6)"),
                 "reason": "Forbidden",
                 "messageExpression": f"{who} + ' may not run a pod as ' + variables.account + ', the job account "
                                      "of another user'"},
                {"expression": volumes_ok, "reason": "Forbidden",
                 "messageExpression": f"{who} + ' may not mount a job Secret of another user (a volume of this pod "
                                      "names one; the owner is in its name)'"},
                {"expression": env_ok, "reason": "Forbidden",
                 "messageExpression": f"{who} + ' may not use a job Secret of another user in env or envFrom (the "
                                      "owner is in its name)'"},
            ],
        },
    }
    binding = {
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": _meta(POD_POLICY),
        "spec": {"policyName": POD_POLICY, "validationActions": ["Deny"],
                 "paramRef": {"name": OWNERS_CONFIGMAP, "namespace": renewer_namespace,
                              "parameterNotFoundAction": "Deny"},
                 "matchResources": {"namespaceSelector": {"matchExpressions": [
                     {"key": LABEL_LAYOUT, "operator": "In", "values": list(SHARED_LAYOUTS)}]}}},
    }
    return [policy, binding]


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
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _meta("spark-secrets-renewer-admission"),
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
        meta = _meta(secret, ns)
        meta["labels"].update({LABEL_OWNER: member, LABEL_PERSISTENT: "true"})
        out += [
            {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta},
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
