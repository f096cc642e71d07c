"""The RBAC layouts as data (no API server): what each identity is bound to, and the CLI around them.
The live proof, cell by cell with real identities, is tests/test_rbac.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from spark_secrets.kube import rbac
from spark_secrets.cli.main import main

READ = {"get", "list", "watch", "*"}


def _layouts() -> dict[str, list[dict[str, Any]]]:
    return {"namespace-per-user": rbac.layout("namespace-per-user", users=["alice", "bob"]),
            "group": rbac.layout("group", group_name="team-a"),
            "precreated": rbac.layout("precreated", users=["alice", "bob"], group_name="team-a"),
            "controller": rbac.layout("controller", users=["alice", "bob"], namespace="spark-jobs")}


def _secret_verbs(role: dict[str, Any]) -> list[tuple[set[str], list[str] | None]]:
    return [(set(r["verbs"]), r.get("resourceNames")) for r in role.get("rules", [])
            if "secrets" in r.get("resources", []) or "*" in r.get("resources", [])]


def test_no_cluster_role_but_the_renew_service_reads_secrets() -> None:
    for role in (m for m in rbac.common() if m["kind"] == "ClusterRole"):
        reads = [verbs & READ for verbs, _ in _secret_verbs(role)]
        if role["metadata"]["name"] == "spark-secrets-renewer":
            assert reads == [{"get", "list", "watch"}]
        else:
            assert not any(reads), role["metadata"]["name"]


def test_only_the_renew_service_is_bound_in_its_own_namespace_and_only_to_its_keytab() -> None:
    """Everyone else signed in may only read the service's Lease (spark-secrets doctor reads it)."""
    bindings = [m for m in rbac.common() if m["kind"] == "RoleBinding"]
    others = [b for b in bindings if any(s["name"] != rbac.RENEWER_ACCOUNT for s in b["subjects"])]
    assert [(b["metadata"]["name"], b["subjects"]) for b in others] == [
        ("spark-secrets-renewer-status", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                           "name": "system:authenticated"}])]
    (status,) = [m for m in rbac.common() if m["kind"] == "Role" and m["metadata"]["name"] == others[0]["roleRef"]["name"]]
    assert status["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"],
                                "resourceNames": [rbac.LEASE]}]
    (keytab,) = [m for m in rbac.common() if m["metadata"]["name"] == "spark-secrets-renewer-keytab"
                 and m["kind"] == "Role"]
    assert _secret_verbs(keytab) == [({"get"}, [rbac.KEYTAB_SECRET])]


@pytest.mark.parametrize("layout", ["namespace-per-user", "group", "precreated", "controller"])
def test_users_never_get_read_access_to_secrets_except_in_the_group_layout(layout: str) -> None:
    manifests = _layouts()[layout]
    roles = {(m["kind"], m["metadata"]["name"]): m for m in [*manifests, *rbac.common()]
             if m["kind"] in ("Role", "ClusterRole")}
    for binding in (m for m in manifests if m["kind"] == "RoleBinding"):
        people = [s for s in binding["subjects"] if s["kind"] in ("User", "Group")]
        if not people:
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        reads = [verbs & READ for verbs, _ in _secret_verbs(role)]
        if layout == "group" and binding["metadata"]["name"] == "spark-secrets-token-reader":
            assert reads == [{"get", "list"}]  # members share their tokens, by design
        else:
            assert not any(reads), (layout, binding["metadata"]["name"])


def test_precreated_grants_are_limited_to_each_users_own_secret() -> None:
    roles = [m for m in _layouts()["precreated"] if m["kind"] == "Role"]
    for role in roles:
        for _, names in _secret_verbs(role):
            user = role["metadata"]["name"].rsplit("-", 1)[-1]
            assert names == [f"hadoop-tokens-{user}"]


def test_cli_prints_applyable_yaml_headed_by_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rbac", "controller", "--namespace", "spark-jobs", "--user", "alice"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# spark-secrets rbac controller --user=alice --namespace=spark-jobs\n")
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert docs and all(d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "spark-secrets" for d in docs)


@pytest.mark.parametrize("argv, message", [
    (["rbac", "precreated", "--user", "alice"], "layout precreated needs a group: give --group NAME"),
    (["rbac", "controller", "--user", "alice"], "layout controller needs a namespace: give --namespace NS"),
    (["rbac", "namespace-per-user"], "layout namespace-per-user needs users: give --user NAME (repeatable)"),
])
def test_cli_names_what_a_layout_is_missing_in_one_line(argv: list[str], message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"spark-secrets: error: {message}" and "Traceback" not in err
