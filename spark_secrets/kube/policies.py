"""The admission policies of the RBAC layouts (ValidatingAdmissionPolicy, CEL): RBAC cannot say "only
the Secrets labelled with your own name", so the API server checks the owner label on Secrets, and in
shared namespaces which Secrets and accounts a pod may use, against the authenticated creator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from spark_secrets.secrets.tokensecret import LABEL_MANAGED_BY, LABEL_OWNER, MANAGED_BY, OWNER_SEPARATOR

Manifest = dict[str, Any]

RENEWER_NAMESPACE = "spark-secrets-system"
#: The admission policy that binds a Secret's owner label to the identity that created it, and its parameters.
OWNER_POLICY = "spark-secrets-token-owner"
OWNERS_CONFIGMAP = "spark-secrets-owners"
#: The admission policy on pods in shared namespaces: a pod mounts only its creator's Secrets and accounts.
POD_POLICY = "spark-secrets-pod-owner"
#: On a layout's namespace: which layout it follows; the pod policy binds the shared ones by it.
LABEL_LAYOUT = "spark-secrets.io/layout"
SHARED_LAYOUTS = ("controller", "precreated")
ADMISSION = "admissionregistration.k8s.io"


def meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    """Metadata of a manifest of ours: its name, namespace, and the managed-by label."""
    out: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {}),
                           "labels": {LABEL_MANAGED_BY: MANAGED_BY}}
    return out


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
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": meta(OWNER_POLICY),
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
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": meta(OWNER_POLICY),
        "spec": {"policyName": OWNER_POLICY, "validationActions": ["Deny"],
                 "paramRef": {"name": OWNERS_CONFIGMAP, "namespace": renewer_namespace,
                              "parameterNotFoundAction": "Deny"}},
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(OWNERS_CONFIGMAP, renewer_namespace),
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
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicy", "metadata": meta(POD_POLICY),
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
        "apiVersion": f"{ADMISSION}/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": meta(POD_POLICY),
        "spec": {"policyName": POD_POLICY, "validationActions": ["Deny"],
                 "paramRef": {"name": OWNERS_CONFIGMAP, "namespace": renewer_namespace,
                              "parameterNotFoundAction": "Deny"},
                 "matchResources": {"namespaceSelector": {"matchExpressions": [
                     {"key": LABEL_LAYOUT, "operator": "In", "values": list(SHARED_LAYOUTS)}]}}},
    }
    return [policy, binding]
