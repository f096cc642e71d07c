"""``doctor --connect``: can this machine be a notebook of its user's own Spark Connect server? pyspark's Connect
client installed, and the user's running server (if any) reachable at the address ``connect()`` would use."""

from __future__ import annotations

from spark_secrets.check.report import FAIL, OK, Check
from spark_secrets.kube.client import KubeClient
from submit_steps.settings import Settings
from submit_steps.settings import catalog as c

FIX_CLIENT = ("pip install pyspark-client (Spark Connect's client alone, no Spark jars) or "
              "'spark-secrets[connect]' (the whole pyspark with grpcio and protobuf)")


def client_distribution() -> str:
    """Which distribution gives the ``pyspark`` package here, with its version: ``pyspark``, or ``pyspark-client``
    (which installs the same package without Spark's jars), as ``name version``."""
    from importlib.metadata import packages_distributions, version

    names = sorted(set(packages_distributions().get("pyspark", [])), key=lambda n: n.lower() != "pyspark")
    return " and ".join(f"{name} {version(name)}" for name in names) or "pyspark (no distribution metadata)"


def check_client() -> Check:
    """pyspark's Connect client and its gRPC packages, importable here."""
    import importlib
    import warnings
    from importlib.metadata import version

    try:
        with warnings.catch_warnings():  # pyspark's own about pandas versions: not this check's finding
            warnings.simplefilter("ignore")
            for module in ("grpc", "pyspark.sql.connect.session"):  # the client imports grpc only when it connects
                importlib.import_module(module)
    except ImportError as exc:
        return Check("connect client", FAIL, f"pyspark's Connect client cannot be imported ({exc.name or exc})",
                     FIX_CLIENT)
    return Check("connect client", OK, f"{client_distribution()} Connect client, grpcio {version('grpcio')}")


def check_server(settings: Settings, kube: KubeClient, user: str) -> Check:
    """The user's live Connect server in the namespace answers at its address (none running is fine)."""
    from spark_secrets.connect.address import server_address
    from submit_steps.connectserver import live_servers

    name = "connect server"
    pods = live_servers(kube, settings.namespace, user)
    if not pods:
        return Check(name, OK, f"none of {user}'s runs in namespace {settings.namespace}: connect() starts one")
    pod = pods[0]
    host, port, answers = server_address(pod, settings.value(c.CONNECT_ADDRESS), settings.value(c.CONNECT_PORT))
    where = f"{host}:{port}" if host else "no address yet"
    if answers:
        return Check(name, OK, f"{pod['metadata']['name']} answers at {where}")
    return Check(name, FAIL, f"{pod['metadata']['name']} does not answer at {where} from here",
                 "run the notebook where it reaches the pod network or the Service (spark.secrets.connect.address; "
                 "a NetworkPolicy must let the notebook in), see the README's Spark Connect section")
