"""What the submission steps' unit suites share: a fake ticket, tokens and the default step pipeline."""

from __future__ import annotations

from pathlib import Path


from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token
from submit_steps.builder import StepBuilder
from submit_steps.layout import LayoutStep
from submit_steps.plugin import RefresherPluginStep
from submit_steps.pods import PodWiringStep
from submit_steps.secret import TokenSecretStep
from submit_steps.settings import Settings
from submit_steps.tokens import DelegationTokenStep

NN = "http://nn.example.com:9870"
BASE = {"spark.app.name": "Nightly ETL", "spark.kubernetes.namespace": "alice", "spark.secrets.hadoop.filesystems": NN,
        "spark.secrets.renewer": "spark-renewer"}


class Ticket:
    principal = "alice@EXAMPLE.COM"
    short_name = "alice"
    credentials = None


def creds(password: bytes = b"p" * 20) -> Credentials:
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", 1_795_000_000_000, 1_795_604_800_000, 3, 1)
    return Credentials({"10.0.0.1:8020": Token(ident.encode(), password, "HDFS_DELEGATION_TOKEN", "10.0.0.1:8020")})


def builder(conf: dict[str, str], fetched: list[tuple[object, ...]] | None = None) -> StepBuilder:
    settings = Settings(conf)

    def fetch(namenodes, renewer, ticket, verify, problems):  # type: ignore[no-untyped-def]
        if fetched is not None:
            fetched.append((tuple(namenodes), renewer))
        return creds()

    steps = [DelegationTokenStep(settings, ticket=Ticket, fetch=fetch), LayoutStep(settings), TokenSecretStep(settings),
             PodWiringStep(settings), RefresherPluginStep(settings, local_jar=lambda: Path("/site/plugin.jar"))]
    return StepBuilder(conf, steps)


def plugin_conf(**extra: str) -> dict[str, str]:
    """A cluster-mode submission to a Kubernetes master, with ``extra`` settings."""
    return {**BASE, "spark.master": "k8s://https://api:6443", **extra}
