"""``spark-secrets renewer``: reads its options into a :class:`~spark_secrets.renew.app.RenewConfig`, each
checked before the KDC or the API server is contacted, and runs the service (:mod:`spark_secrets.renew.app`)."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.cli.options import kafka_clusters, lasting, verify
from spark_secrets.duration import parse_duration
from spark_secrets.errors import ConfigError

if TYPE_CHECKING:
    from spark_secrets.renew.app import RenewConfig


def cmd_renewer(args: argparse.Namespace) -> int:
    from spark_secrets.renew.app import run

    lasting()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(renew_config(args))


def _ms(option: str, text: str) -> int:
    return int(parse_duration(option, text).total_seconds() * 1000)


def renew_config(args: argparse.Namespace) -> RenewConfig:
    """The options, each parsed once and checked, in one line naming the option when wrong."""
    from spark_secrets.renew.app import RenewConfig

    if not args.all_namespaces and not args.namespace:
        raise ConfigError("no namespaces to watch", "give --namespace NS (repeatable) or --all-namespaces")
    try:
        ratio = float(args.ratio)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio < 1:
        raise ConfigError(f"--ratio {args.ratio}", "use a fraction between 0 and 1, e.g. 0.75")
    reissue_before_ms = _ms("--reissue-before", args.reissue_before)
    projection_bound_ms = _ms("--projection-bound", args.projection_bound)
    if projection_bound_ms <= 0:
        raise ConfigError(f"--projection-bound {args.projection_bound}",
                          "use a positive duration: how long pods may use old tokens after a re-issue, e.g. 120s")
    lease_duration_s = parse_duration("--lease-duration", args.lease_duration).total_seconds()
    sweep_interval_s = parse_duration("--sweep-interval", args.sweep_interval).total_seconds()
    orphan_grace_ms = _ms("--orphan-grace", args.orphan_grace)
    lease = None
    if args.lease:
        if not re.fullmatch(r"([a-z0-9][-a-z0-9]*/)?[a-z0-9][-a-z0-9.]*", args.lease):
            raise ConfigError(f"--lease {args.lease!r} is not NAMESPACE/NAME",
                              "e.g. spark-secrets-system/spark-secrets-renewer")
        lease_ns, _, lease_name = args.lease.rpartition("/")
        lease = (lease_ns or "spark-secrets-system", lease_name)
    if args.grant_access and "{owner}" not in args.grant_service_account and "{" in args.grant_service_account:
        raise ConfigError(f"--grant-service-account {args.grant_service_account!r}",
                          "use a name, or a pattern with {owner} such as spark-{owner}")
    host, _, port_text = args.listen.rpartition(":")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--listen {args.listen!r} has no port", "give HOST:PORT or :PORT, e.g. :8080")
    secrets_interval_s = parse_duration("--secrets-interval", args.secrets_interval).total_seconds()
    if args.owner_policy != "none" and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", args.owner_policy):
        raise ConfigError(f"--owner-policy {args.owner_policy!r} is not a policy name",
                          "give the name of a ValidatingAdmissionPolicy, or none")
    vault = None
    if args.vault_role:
        from spark_secrets.jobsecrets.vault import VaultConfig
        from spark_secrets.renew.rotation import role_for

        vault = VaultConfig.create(address=args.vault_address, namespace=args.vault_namespace,
                                   ca_cert=args.vault_ca_cert, role=args.vault_role, auth_mount=args.vault_auth_mount,
                                   auth="kubernetes")
        role_for(args.vault_role, "namespace", "account")  # a bad template: one line before anything is contacted
    kafka_clusters = _kafka_clusters(args.kafka_cluster or [])
    return RenewConfig(
        keytab=Path(args.keytab), principal=args.principal,
        ccache=Path(args.ccache or Path.home() / ".cache" / "spark-secrets" / "renewer-ccache"),
        namespaces=None if args.all_namespaces else tuple(args.namespace), ratio=ratio,
        reissue_before_ms=reissue_before_ms, projection_bound_ms=projection_bound_ms, lease=lease,
        lease_duration_s=lease_duration_s, sweep_interval_s=sweep_interval_s, orphan_grace_ms=orphan_grace_ms,
        grant_service_account=args.grant_service_account if args.grant_access else None,
        seal_key_file=Path(args.seal_key_file) if args.seal_key_file else None,
        owner_policy=None if args.owner_policy == "none" else args.owner_policy,
        listen_host=host or "0.0.0.0", listen_port=int(port_text), kubeconfig=args.kubeconfig, ca_bundle=verify(args),
        hive_metastore_uris=args.hive_metastore_uris, hive_principal=args.hive_principal, vault=vault,
        secrets_interval_s=secrets_interval_s, kafka_clusters=kafka_clusters)


def _kafka_clusters(values: list[str]) -> tuple[str, ...]:
    """``--kafka-cluster`` values, each a Kafka target, one cluster id at most once."""
    seen: set[str] = set()
    for cluster in kafka_clusters(values):
        if cluster.cluster in seen:
            raise ConfigError(f"--kafka-cluster names cluster {cluster.cluster} twice", "give each cluster once")
        seen.add(cluster.cluster)
    return tuple(values)


def add_parser(sub: argparse._SubParsersAction) -> None:
    renewer = sub.add_parser(
        "renewer", help="run the renew service: keep token Secrets alive, re-issue before max lifetime, cancel at end",
        description="Logs in from its own keytab, lists and watches token Secrets (label "
                    "app.kubernetes.io/managed-by=spark-secrets) and renews each token at --ratio of its remaining "
                    "lifetime, obtains new tokens for the owner (as a proxy user) --reissue-before its max date, "
                    "writes them into the Secret, and cancels the tokens of deleted Secrets. Serves /healthz, "
                    "/readyz and /metrics on --listen. NameNodes of nameservices come from HADOOP_CONF_DIR.")
    renewer.add_argument("--keytab", required=True, help="the service's keytab")
    renewer.add_argument("--principal", required=True, help="the principal in --keytab (a proxy user on HDFS)")
    renewer.add_argument("--ccache", help="private ticket cache (default ~/.cache/spark-secrets/renewer-ccache)")
    renewer.add_argument("--namespace", "-n", action="append", help="namespace to watch (repeatable)")
    renewer.add_argument("--all-namespaces", action="store_true", help="watch every namespace (needs a ClusterRole)")
    renewer.add_argument("--ratio", default="0.75", help="renew after this fraction of the remaining lifetime")
    renewer.add_argument("--reissue-before", default="1h", help="obtain new tokens this long before their max date")
    renewer.add_argument("--projection-bound", default="120s",
                         help="after a re-issue, keep renewing the old tokens for this long, since pods use them until "
                              "kubelet projects the new file and the plugin reloads it (default 120s: kubelet's 60 s "
                              "sync period, its cache and jitter, and the plugin's reaction)")
    renewer.add_argument("--lease", metavar="NAMESPACE/NAME",
                         help="with several replicas: only the holder of this coordination.k8s.io Lease acts")
    renewer.add_argument("--lease-duration", default="15s", help="how long a silent leader keeps the lease")
    renewer.add_argument("--sweep-interval", default="30s",
                         help="how often to check which pods use the token Secrets: give owner-less ones to the "
                              "driver pod that mounts them, clean up unused ones (0 = never; default 30s)")
    renewer.add_argument("--orphan-grace", default="10min",
                         help="delete a token Secret no pod has used for this long (pre-created ones are emptied "
                              "instead; default 10min)")
    renewer.add_argument("--grant-access", action="store_true",
                         help="controller mode: give each token Secret's job service account get on exactly that "
                              "Secret (a Role and RoleBinding owned by the Secret)")
    renewer.add_argument("--grant-service-account", default="spark-{owner}", metavar="PATTERN",
                         help="the job service account granted get ({owner} = the Secret's owner label, which "
                              "admission binds to its creator; default spark-{owner})")
    renewer.add_argument("--seal-key-file", metavar="FILE",
                         help="key that seals what the service verified on each Secret (default: derived from "
                              "--keytab; every replica needs the same)")
    renewer.add_argument("--owner-policy", default="spark-secrets-token-owner", metavar="NAME",
                         help="the ValidatingAdmissionPolicy that binds token Secrets' owners to their creators; "
                              "Secrets it does not cover are refused (none: do not check, unsafe)")
    renewer.add_argument("--listen", default=":8080", help="address for /healthz, /readyz, /metrics (default :8080)")
    renewer.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    renewer.add_argument("--ca-bundle", metavar="PEM", help="CA certificates for https:// NameNodes")
    renewer.add_argument("--hive-metastore-uris", metavar="URIS",
                         help="the Kerberized Hive metastore whose tokens it renews and cancels (comma-separated "
                              "thrift://host:port; default: hive.metastore.uris from hive-site.xml in HADOOP_CONF_DIR)")
    renewer.add_argument("--hive-principal", metavar="PRINCIPAL",
                         help="that metastore's Kerberos principal, _HOST = each URI's host (default: "
                              "hive.metastore.kerberos.principal from hive-site.xml)")
    renewer.add_argument("--kafka-cluster", action="append", metavar="kafka://HOST:PORT[,...]/ID[?KEY=VALUE]",
                         help="a Kafka cluster whose delegation tokens it renews, re-issues and cancels (repeatable): "
                              "its brokers and Spark's cluster id (spark.kafka.clusters.ID), with "
                              "security.protocol and sasl.kerberos.service.name as a query when not SASL_SSL and "
                              "kafka; the form `spark-secrets status` shows. A Secret's Kafka tokens of other "
                              "clusters are not renewed: the brokers a Secret names are its writer's input")
    vault = renewer.add_argument_group(
        "job secrets (rotation of vault: references without a pinned version; off without --vault-role)")
    vault.add_argument("--vault-role", metavar="ROLE",
                       help="OpenBao/Vault Kubernetes auth role the service logs in with *as each job's driver service "
                            "account* (a TokenRequest per job), so that account's policies decide what it may read; "
                            "{namespace} and {account} in it choose a role per account (e.g. jobs-{account})")
    vault.add_argument("--vault-address", metavar="URL", help="OpenBao/Vault address (default: VAULT_ADDR, else BAO_ADDR)")
    vault.add_argument("--vault-auth-mount", metavar="PATH", help="the Kubernetes auth mount (default: kubernetes)")
    vault.add_argument("--vault-namespace", metavar="NS", help="OpenBao/Vault namespace (default: VAULT_NAMESPACE)")
    vault.add_argument("--vault-ca-cert", metavar="PEM", help="CA of OpenBao/Vault's certificate (default: VAULT_CACERT)")
    vault.add_argument("--secrets-interval", default="30s",
                       help="how often the KV versions of running jobs' secrets are checked (default 30s)")
    renewer.set_defaults(func=cmd_renewer)
