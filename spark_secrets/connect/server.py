"""The driver program of a user's own Spark Connect server: Spark's Connect service, loaded as a driver plugin
(``spark.plugins=org.apache.spark.sql.connect.SparkConnectPlugin``), in a cluster-mode application that ends
itself once idle.

Spark 4.3 refuses its own ``SparkConnectServer`` main class in cluster mode outside YARN; the plugin is how
pyspark's local mode starts Connect too. This program blocks while the service serves, reads its activity
(:mod:`.idle`) every few seconds through Py4J, and after the idle timeout stops Spark and deletes its own driver
pod: the job's token Secret goes with the pod, and the renew service cancels its tokens.

    spark-submit --deploy-mode cluster ... local:///opt/spark-secrets/connect_server.py IDLE_SECONDS
"""

from __future__ import annotations

import sys
import time
from typing import Any

from spark_secrets.connect.idle import Activity, running

CONNECT_SERVICE = "org.apache.spark.sql.connect.service.SparkConnectService$"
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"


def _service(spark: Any) -> Any:
    return getattr(getattr(spark._jvm, CONNECT_SERVICE), "MODULE$")


def _seq(seq: Any) -> list[Any]:
    return [seq.apply(i) for i in range(seq.size())]


def activity(spark: Any, started_ms: int) -> Activity:
    """The Connect service's sessions and operations, and Spark's jobs, now."""
    service = _service(spark)
    manager = service.sessionManager()
    sessions = _seq(manager.listActiveSessions())
    executions = service.listActiveExecutions()
    statuses = [] if executions.isLeft() else [str(e.status()) for e in _seq(executions.right().get())]
    return Activity(now_ms=int(time.time() * 1000), started_ms=started_ms,
                    last_call_ms=max((int(s.lastAccessTimeMs()) for s in sessions), default=0),
                    running_operations=running(statuses),
                    active_jobs=len(spark.sparkContext.statusTracker().getActiveJobsIds()),
                    active_streams=_active_streams(service))


def _active_streams(service: Any) -> int:
    """Streaming queries the Connect sessions started that still run (they run with no call attached). Read from
    the service's query cache: asking the session manager for a session would count as that session's call."""
    cache = service.streamingSessionManager()
    count = 0
    for keys in cache.taggedQueries().values():  # Py4J gives a Java map as a Python mapping
        for key in _seq(keys.keys().toList()):
            value = cache.getCachedValue(key.queryId(), key.runId())
            if value.isDefined() and value.get().query().isActive():
                count += 1
    return count


def _delete_own_pod(conf: Any) -> None:
    """The driver pod, deleted by its own service account (which created its executors): the garbage collector
    takes the executors, the token Secret and the Connect token's Secret, all owned by it. The API server is the
    one Spark's driver uses (``spark.kubernetes.driver.master``), with the pod's service-account credentials."""
    from urllib.parse import urlsplit

    from spark_secrets.kube.client import KubeClient
    from spark_secrets.kube.config import SERVICE_HOST_ENV, SERVICE_PORT_ENV, load_in_cluster

    pod, namespace = conf.get("spark.kubernetes.driver.pod.name", ""), conf.get("spark.kubernetes.namespace", "")
    master = urlsplit(conf.get("spark.kubernetes.driver.master", "https://kubernetes.default.svc"))
    environ = {SERVICE_HOST_ENV: master.hostname or "kubernetes.default.svc", SERVICE_PORT_ENV: str(master.port or 443)}
    if pod and namespace:
        KubeClient(load_in_cluster(environ), namespace).delete_pod(namespace, pod)


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    if len(argv) != 1:
        print("usage: connect_server.py IDLE_SECONDS", file=sys.stderr)
        return 2
    idle_ms = int(float(argv[0]) * 1000)
    spark = SparkSession.builder.getOrCreate()
    started_ms = int(time.time() * 1000)
    port = _service(spark).localPort()
    print(f"spark-secrets: Connect server on port {port}, ends after {idle_ms / 1000:.0f} s idle", flush=True)
    poll = min(5.0, max(0.5, idle_ms / 4000))
    while (now := activity(spark, started_ms)).idle_ms() < idle_ms:
        time.sleep(poll)
    print(f"spark-secrets: idle for {now.idle_ms() / 1000:.0f} s: stopping the Connect server", flush=True)
    conf = spark.sparkContext.getConf()
    spark.stop()
    _delete_own_pod(conf)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
