"""Whether the API server binds a token Secret's owner label to the identity that created it.

The renew service acts for the owner label of a token Secret only because the admission policy
``spark-secrets-token-owner`` (``spark-secrets rbac common``) let nobody create that label for
someone else, nor change it afterwards. So before acting the service checks that such a policy
exists, is bound with ``Deny`` over the Secret's namespace, and was there before the Secret was made
(a Secret created while nothing checked its label proves nothing). Policies and bindings are
cluster objects only admins write; they are read at most every :data:`REFRESH_S` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from spark_secrets.errors import KubernetesError, KubernetesNotFound
from spark_secrets.kube.client import KubeClient
from spark_secrets.kube.rbac import OWNER_POLICY
from spark_secrets.secrets.tokensecret import TokenSecret, parse_rfc3339

log = logging.getLogger("spark_secrets.renew")

POLICY_NAME = OWNER_POLICY
REFRESH_S = 30.0
#: A view that says "not covered" is read again when older than this before a Secret is refused.
RECHECK_S = 2.0
_ADMISSION = "/apis/admissionregistration.k8s.io/v1"
FIX = "apply spark-secrets rbac common (its ValidatingAdmissionPolicy and binding) as a cluster admin"


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (``matchLabels``, ``matchExpressions``) against ``labels``; an empty one matches all."""
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # unknown to us: do not claim coverage
    return True


def _created_ms(obj: Mapping[str, Any]) -> int:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return parse_rfc3339(stamp) if stamp else 0


@dataclass
class _Binding:
    created_ms: int
    namespaces: Mapping[str, Any] | None  # the namespaceSelector


@dataclass
class OwnerPolicy:
    """Reads the owner policy and its bindings; :meth:`problem` says why a Secret is not covered."""

    kube: KubeClient
    name: str = POLICY_NAME
    clock: Callable[[], float] = time.monotonic
    _read_at: float = field(default=-1e9, init=False)
    _policy_ms: int | None = field(default=None, init=False)
    _bindings: list[_Binding] = field(default_factory=list, init=False)
    _failure: str | None = field(default=None, init=False)
    _namespace_labels: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict, init=False)

    def __repr__(self) -> str:
        return f"OwnerPolicy({self.name!r})"

    def _refresh(self) -> None:
        if self.clock() - self._read_at < REFRESH_S:
            return
        self._read_at = self.clock()
        try:
            policy = self.kube.request(f"read the admission policy {self.name}", "GET",
                                       f"{_ADMISSION}/validatingadmissionpolicies/{quote(self.name, safe='')}")
            bindings = self.kube.request("list admission policy bindings", "GET",
                                         f"{_ADMISSION}/validatingadmissionpolicybindings").get("items") or []
        except KubernetesNotFound:
            self._policy_ms, self._bindings, self._failure = None, [], None
            return
        except KubernetesError as exc:
            self._failure = exc.problem  # keep the last good view; say why it is not current
            log.warning("cannot read the admission policy %s: %s", self.name, exc.problem)
            return
        self._failure = None
        self._policy_ms = _created_ms(policy)
        self._bindings = []
        for b in bindings:
            spec = b.get("spec") or {}
            if spec.get("policyName") != self.name or "Deny" not in (spec.get("validationActions") or []):
                continue
            match = spec.get("matchResources") or {}
            if match.get("excludeResourceRules") or match.get("objectSelector"):
                continue  # a binding that exempts some Secrets covers none we could name
            self._bindings.append(_Binding(_created_ms(b), match.get("namespaceSelector")))

    def _labels_of(self, namespace: str) -> dict[str, str]:
        cached = self._namespace_labels.get(namespace)
        if cached and self.clock() - cached[0] < REFRESH_S:
            return cached[1]
        obj = self.kube.request(f"read namespace {namespace}", "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}")
        labels = {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}
        self._namespace_labels[namespace] = (self.clock(), labels)
        return labels

    def problem(self, ts: TokenSecret) -> str | None:
        """None if the policy covered ``ts`` when it was created; else what is missing. A refusal is never
        made from a view older than :data:`RECHECK_S` (an admin may just have bound the policy)."""
        self._refresh()
        found = self._judge(ts)
        if found is not None and self.clock() - self._read_at > RECHECK_S:
            self._read_at = -1e9
            self._refresh()
            found = self._judge(ts)
        return found

    def _judge(self, ts: TokenSecret) -> str | None:
        if self._policy_ms is None:
            why = f" ({self._failure})" if self._failure else ""
            return f"no ValidatingAdmissionPolicy {self.name} binds token Secrets' owner labels{why}"
        for binding in self._bindings:
            if ts.created_ms < max(binding.created_ms, self._policy_ms):
                continue
            if binding.namespaces:
                try:
                    labels = self._labels_of(ts.namespace)
                except KubernetesError as exc:
                    return f"cannot read namespace {ts.namespace} to match the policy's binding ({exc.problem})"
                if not selector_matches(binding.namespaces, labels):
                    continue
            return None
        return (f"no binding of {self.name} with validationActions Deny covered namespace {ts.namespace} "
                "when the Secret was created")
