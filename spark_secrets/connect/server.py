"""The driver program of a user's own Spark Connect server: Spark's Connect service in a cluster-mode
application that ends itself once idle.

Spark 4.3 refuses its own ``SparkConnectServer`` main class in cluster mode outside YARN. This program starts the
service itself (``SparkConnectService.start``, what Spark's ``SparkConnectPlugin`` calls) once its SparkContext
is up, not as a driver plugin: a plugin starts it inside the SparkContext's constructor, which then waits up to
``spark.scheduler.maxRegisteredResourcesWaitingTime`` (30 s) for executors before the context is active, and a
query that came in meanwhile failed in Spark's write path on ``SparkContext.getActive.get`` (``None.get``).
It then blocks while the service serves, reads its activity (:mod:`.idle`) every few seconds through Py4J, and
after the idle timeout stops Spark and deletes its own driver pod: the job's token Secret goes with the pod,
and the renew service cancels its tokens.

    spark-submit --deploy-mode cluster ... local:///opt/spark-secrets/connect_server.py IDLE_SECONDS
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

from spark_secrets.connect.idle import Activity, running
from spark_secrets.connect.names import ACTIVITY_WRITE_S, ANNOTATION_LAST_ACTIVITY

CONNECT_SERVICE = "org.apache.spark.sql.connect.service.SparkConnectService$"


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


class OwnPod:
    """The driver pod, through its own service account (which creates its executors) at the API server Spark's
    driver uses (``spark.kubernetes.driver.master``); None outside a pod (local mode)."""

    def __init__(self, conf: Any) -> None:
        from urllib.parse import urlsplit

        from spark_secrets.kube.client import KubeClient
        from spark_secrets.kube.config import SERVICE_HOST_ENV, SERVICE_PORT_ENV, load_in_cluster

        self.name, self.namespace = conf.get("spark.kubernetes.driver.pod.name", ""), conf.get("spark.kubernetes.namespace", "")
        master = urlsplit(conf.get("spark.kubernetes.driver.master", "https://kubernetes.default.svc"))
        environ = {SERVICE_HOST_ENV: master.hostname or "kubernetes.default.svc", SERVICE_PORT_ENV: str(master.port or 443)}
        self.kube = KubeClient(load_in_cluster(environ), self.namespace)
        self.path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"

    @classmethod
    def of(cls, conf: Any) -> OwnPod | None:
        from spark_secrets.errors import KubernetesError
        from spark_secrets.kube.config import KubeconfigError

        if not conf.get("spark.kubernetes.driver.pod.name", ""):
            return None
        try:
            return cls(conf)
        except (KubeconfigError, KubernetesError) as exc:
            print(f"spark-secrets: cannot reach the API server as the driver's account ({exc})", flush=True)
            return None

    def mark(self, last_activity_ms: int) -> None:
        """Tell ``spark-secrets status`` when the server was last active (a failure only costs that)."""
        from spark_secrets.errors import SparkSecretsError
        from spark_secrets.kube.client import STRATEGIC_MERGE_PATCH
        from spark_secrets.secrets.tokensecret import rfc3339

        patch = {"metadata": {"annotations": {ANNOTATION_LAST_ACTIVITY: rfc3339(last_activity_ms)}}}
        try:
            self.kube.request(f"annotate pod {self.namespace}/{self.name}", "PATCH", self.path, body=patch,
                              content_type=STRATEGIC_MERGE_PATCH)
        except SparkSecretsError as exc:
            print(f"spark-secrets: cannot record the server's activity ({exc.problem})", flush=True)

    def delete(self) -> None:
        """The garbage collector then takes the executors, the token Secret and the bearer token's Secret, all owned
        by the pod; the renew service cancels the tokens with their Secret."""
        self.kube.delete_pod(self.namespace, self.name)


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    if len(argv) != 1:
        print("usage: connect_server.py IDLE_SECONDS", file=sys.stderr)
        return 2
    idle_ms = int(float(argv[0]) * 1000)
    spark = SparkSession.builder.getOrCreate()  # returns once the context is active (executors came, or 30 s)
    service = _service(spark)
    service.start(spark.sparkContext._jsc.sc())  # a no-op, with Spark's warning, if a plugin started it already
    started_ms = int(time.time() * 1000)
    port = service.localPort()
    print(f"spark-secrets: Connect server on port {port}, ends after {idle_ms / 1000:.0f} s idle", flush=True)
    conf = spark.sparkContext.getConf()
    pod = OwnPod.of(conf)
    poll = min(5.0, max(0.5, idle_ms / 4000))
    written: tuple[int, bool] | None = None  # the last activity written, and whether the server was busy then
    latest = started_ms  # the latest activity seen: a released session no longer lists its last call
    while True:
        now = activity(spark, started_ms)
        latest = max(latest, now.now_ms if now.busy else now.last_call_ms)
        now = replace(now, last_call_ms=latest)
        if now.idle_ms() >= idle_ms:
            break
        if pod is not None and (written is None or written[1] != now.busy or (
                latest != written[0] and latest - written[0] >= ACTIVITY_WRITE_S * 1000)):
            pod.mark(latest)
            written = (latest, now.busy)
        time.sleep(poll)
    print(f"spark-secrets: idle for {now.idle_ms() / 1000:.0f} s: stopping the Connect server", flush=True)
    try:
        service.stop(getattr(service, "stop$default$1")(), getattr(service, "stop$default$2")())
        spark.stop()
    finally:
        if pod is not None:
            pod.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
