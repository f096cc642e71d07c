"""The renew service put together from one parsed configuration: the CLI only reads options into a
:class:`RenewConfig`; here the service's login, API clients, Lease, grants, rotator and health server
are made and wired, in an order that contacts nothing before every local file has been read."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.jobsecrets.vault import VaultConfig
from spark_secrets.kube.client import KubeClient
from spark_secrets.renew.admission import OwnerPolicy
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.events import EventPoster
from spark_secrets.renew.grants import AccessGrants
from spark_secrets.renew.health import HealthServer
from spark_secrets.renew.kinds import default_kinds
from spark_secrets.renew.lease import (LEASE_GROUPS, LEASE_HEALTH, LEASE_NAMESPACES, LEASE_PRINCIPAL, LEASE_USER,
                                       LeaderElector)
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.policy import Policy
from spark_secrets.renew.rotation import SecretRotator
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.session import KeytabSession
from spark_secrets.tokens.kafka import conf_of_targets
from spark_secrets.tokens.metastore import Metastore

log = logging.getLogger("spark_secrets.renew")


@dataclass(frozen=True)
class RenewConfig:
    """Every option of ``spark-secrets renewer``, parsed and checked (durations in ms or s as named)."""

    keytab: Path
    principal: str
    ccache: Path
    #: Namespaces to watch; None: every namespace.
    namespaces: tuple[str, ...] | None
    ratio: float = 0.75
    reissue_before_ms: int = 3_600_000
    projection_bound_ms: int = 120_000
    #: (namespace, name) of the Lease among replicas; None: a single replica, always acting.
    lease: tuple[str, str] | None = None
    lease_duration_s: float = 15.0
    sweep_interval_s: float = 30.0
    orphan_grace_ms: int = 600_000
    #: Controller mode: the job service account granted get on its token Secret ({owner} in it); None: off.
    grant_service_account: str | None = None
    #: The seal's key; None: derived from :attr:`keytab`.
    seal_key_file: Path | None = None
    #: The ValidatingAdmissionPolicy binding owners to creators; None: not checked (unsafe).
    owner_policy: str | None = "spark-secrets-token-owner"
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    kubeconfig: str | None = None
    #: ``verify=`` for https:// NameNodes and KMS: a PEM file, or True for the system's CAs.
    ca_bundle: str | bool = True
    hive_metastore_uris: str | None = None
    hive_principal: str | None = None
    #: Where job secrets' vault: values are followed from; None: no rotation.
    vault: VaultConfig | None = None
    secrets_interval_s: float = 30.0
    #: ``--kafka-cluster``: Kafka targets (``kafka://host:port/<id>?...``), the only brokers it asks.
    kafka_clusters: tuple[str, ...] = ()

    @property
    def policy(self) -> Policy:
        return Policy(ratio=self.ratio, reissue_before_ms=self.reissue_before_ms,
                      projection_bound_ms=self.projection_bound_ms)


def hive_metastore(config: RenewConfig, hadoop_conf: HadoopConf) -> Metastore | None:
    """The metastore whose tokens the service renews: the options, else ``hive-site.xml``; None if none is named."""
    return Metastore.configured(hadoop_conf.get, config.hive_metastore_uris, config.hive_principal)


def run(config: RenewConfig) -> int:
    """Builds the service from ``config`` and runs it until SIGTERM or Ctrl-C; 0 then."""
    seal = Seal.from_file(config.seal_key_file) if config.seal_key_file else Seal.from_file(config.keytab, "--keytab")
    hadoop_conf = HadoopConf.load()
    metastore = hive_metastore(config, hadoop_conf)
    config.ccache.parent.mkdir(parents=True, exist_ok=True)
    login = KeytabSession(config.principal, config.keytab, config.ccache)
    kube = KubeClient.from_config(config.kubeconfig)
    owner_policy = None
    if config.owner_policy is not None:
        owner_policy = OwnerPolicy(kube, config.owner_policy)
    else:
        log.warning("--owner-policy none: token Secrets' owner labels are not checked against their creators; any "
                    "user who may create a Secret in a watched namespace can get tokens for anyone this service may "
                    "impersonate")
    elector = None
    if config.lease is not None:
        elector = LeaderElector(kube, *config.lease, duration=config.lease_duration_s,
                                annotations=_lease_annotations(kube, login.principal, config.namespaces))
    leader = (lambda: elector.is_leader) if elector is not None else None
    service = build_service(config, kube, login, leader, seal=seal, hadoop_conf=hadoop_conf, metastore=metastore,
                            owner_policy=owner_policy)
    health = HealthServer(service.metrics, config.listen_host, config.listen_port)
    if elector is not None:
        elector.annotations[LEASE_HEALTH] = f"http://{_reachable_host(config.listen_host)}:{health.port}"
        elector.start()
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    print(f"spark-secrets renewer: {login.principal} watching {', '.join(config.namespaces or ['all namespaces'])}; "
          f"health on :{health.port}", file=sys.stderr, flush=True)
    try:
        service.run()
    except KeyboardInterrupt:
        pass
    finally:
        if elector is not None:  # after the last action: a standby takes over at once
            elector.release()
        health.close()
    return 0


def build_service(config: RenewConfig, kube: KubeClient, login: KeytabSession, leader: Callable[[], bool] | None, *,
                  seal: Seal, hadoop_conf: HadoopConf, metastore: Metastore | None,
                  owner_policy: OwnerPolicy | None) -> RenewService:
    """The service and what acts beside it, every one counting its API calls into one :class:`Metrics` through
    a counting twin of ``kube`` (the Lease's and the owner policy's reads are not actions: not counted)."""
    metrics = Metrics()
    counted = kube.counting(metrics.api_call)
    events = EventPoster(counted)
    grants = None
    if config.grant_service_account is not None:
        grants = AccessGrants(counted, config.grant_service_account)
    rotator = None
    if config.vault is not None:
        rotator = SecretRotator(counted, config.vault, namespaces=config.namespaces, metrics=metrics,
                                report=events.post, interval=config.secrets_interval_s,
                                leader=leader or (lambda: True))
    kinds = default_kinds(login, login.short_name, conf=hadoop_conf, verify=config.ca_bundle, metastore=metastore,
                          spark_conf=conf_of_targets(config.kafka_clusters))
    settings = ServiceConfig(renewer=login.short_name, principal=login.principal, namespaces=config.namespaces,
                             policy=config.policy, sweep_interval=config.sweep_interval_s,
                             orphan_grace_ms=config.orphan_grace_ms)
    return RenewService(settings, counted, kinds, metrics=metrics, events=events, leader=leader, grants=grants,
                        seal=seal, rotator=rotator, owner_policy=owner_policy)


def _reachable_host(host: str) -> str:
    """The address others reach the health server at: the pod's IP (``POD_IP``, from the downward
    API) or the host's, when it listens on every address."""
    if host not in ("", "0.0.0.0", "::"):
        return f"[{host}]" if ":" in host else host
    address = os.environ.get("POD_IP") or socket.gethostbyname(socket.gethostname())
    return f"[{address}]" if ":" in address else address


def _lease_annotations(kube: KubeClient, principal: str, namespaces: Sequence[str] | None) -> dict[str, str]:
    """Who the service is, for its Lease (read by ``spark-secrets doctor``)."""
    notes = {LEASE_PRINCIPAL: principal, LEASE_NAMESPACES: ",".join(namespaces or ["*"])}
    try:
        user, groups = kube.whoami()
        notes.update({LEASE_USER: user, LEASE_GROUPS: ",".join(groups)})
    except SparkSecretsError as exc:  # an API server before 1.28: doctor then cannot check its access
        print(f"spark-secrets renewer: cannot tell its Kubernetes identity ({exc.problem})", file=sys.stderr)
    return notes
