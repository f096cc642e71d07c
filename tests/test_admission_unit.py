"""Whether the owner policy covers a Secret, as the renew service judges it from the API server's objects
(injected answers; the real API server: test_owner_binding.py, test_doctor.py)."""

from __future__ import annotations

from typing import Any

from spark_secrets.errors import KubernetesNotFound
from spark_secrets.renew.admission import OwnerPolicy, selector_matches
from spark_secrets.secrets.tokensecret import TokenSecret


class _Kube:
    def __init__(self, actions: list[str], created: str = "2026-12-01T00:00:00Z",
                 selector: dict[str, Any] | None = None, policy: bool = True) -> None:
        self.actions, self.created, self.selector, self.policy, self.reads = actions, created, selector, policy, 0

    def request(self, what: str, method: str, path: str, **_: Any) -> dict[str, Any]:
        self.reads += 1
        if path.endswith("/validatingadmissionpolicies/spark-secrets-token-owner"):
            if not self.policy:
                raise KubernetesNotFound("not found")
            return {"metadata": {"creationTimestamp": "2026-11-30T00:00:00Z"}}
        if path.endswith("/validatingadmissionpolicybindings"):
            match = {"namespaceSelector": self.selector} if self.selector is not None else {}
            return {"items": [{"metadata": {"creationTimestamp": self.created},
                               "spec": {"policyName": "spark-secrets-token-owner", "validationActions": self.actions,
                                        "matchResources": match}}]}
        if path.startswith("/api/v1/namespaces/"):
            return {"metadata": {"labels": {"team": "a"}}}
        raise AssertionError(path)


def _secret(created: str = "2026-12-02T00:00:00Z", namespace: str = "alice") -> TokenSecret:
    return TokenSecret.from_metadata({"metadata": {"namespace": namespace, "name": "s", "creationTimestamp": created}})


def test_a_deny_binding_made_before_the_secret_covers_it() -> None:
    assert OwnerPolicy(_Kube(["Deny"])).problem(_secret()) is None  # type: ignore[arg-type]


def test_no_policy_an_audit_only_binding_or_a_later_binding_covers_nothing() -> None:
    assert "no ValidatingAdmissionPolicy" in (OwnerPolicy(_Kube(["Deny"], policy=False)).problem(_secret()) or "")  # type: ignore[arg-type]
    assert "with validationActions Deny" in (OwnerPolicy(_Kube(["Audit"])).problem(_secret()) or "")  # type: ignore[arg-type]
    later = _Kube(["Deny"], created="2026-12-03T00:00:00Z")  # the Secret was made while nothing checked it
    assert OwnerPolicy(later).problem(_secret()) is not None  # type: ignore[arg-type]


def test_a_namespace_selector_is_matched_against_the_namespace_s_labels() -> None:
    assert OwnerPolicy(_Kube(["Deny"], selector={"matchLabels": {"team": "a"}})).problem(_secret()) is None  # type: ignore[arg-type]
    assert OwnerPolicy(_Kube(["Deny"], selector={"matchLabels": {"team": "b"}})).problem(_secret())  # type: ignore[arg-type]
    assert selector_matches({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}, {"team": "a"})
    assert not selector_matches({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, {"team": "a"})
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Gt", "values": ["1"]}]}, {})


def test_a_refusal_is_never_made_from_a_stale_view() -> None:
    kube = _Kube(["Audit"])
    now = [0.0]
    policy = OwnerPolicy(kube, clock=lambda: now[0])  # type: ignore[arg-type]
    assert policy.problem(_secret())  # not covered: the view is fresh
    kube.actions = ["Deny"]  # the admin binds it
    now[0] = 10.0  # inside the 30 s cache, but older than the recheck
    assert policy.problem(_secret()) is None
    reads = kube.reads
    assert policy.problem(_secret()) is None and kube.reads == reads  # covered: the cached view serves
