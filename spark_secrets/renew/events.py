"""Kubernetes Events on the Secrets the renew service looks after: what ``kubectl describe secret`` and
``spark-secrets status`` show a job's owner (a refusal, a failed renewal, a rotation), beside a log line."""

from __future__ import annotations

import logging
import time

from spark_secrets.errors import SparkSecretsError
from spark_secrets.kube.client import KubeClient

log = logging.getLogger("spark_secrets.renew")

#: The Events' ``source.component``.
COMPONENT = "spark-secrets-renewer"
#: The API server refuses longer messages; ours are one line anyway.
MAX_MESSAGE = 1000


class EventPoster:
    """Posts Events about Secrets through ``kube``; best effort, since an Event is a courtesy, never a
    reason to stop. Messages carry names and problems only, never token or secret bytes."""

    def __init__(self, kube: KubeClient, component: str = COMPONENT) -> None:
        self.kube = kube
        self.component = component

    def __repr__(self) -> str:
        return f"EventPoster({self.component})"

    def post(self, key: tuple[str, str], reason: str, message: str, kind: str = "Warning") -> None:
        """A log line and an Event of type ``kind`` (Warning or Normal) on the Secret ``key`` (namespace, name)."""
        log.log(logging.WARNING if kind == "Warning" else logging.INFO, "%s", message)
        namespace, name = key
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"generateName": f"{name}.", "namespace": namespace},
                 "involvedObject": {"apiVersion": "v1", "kind": "Secret", "name": name, "namespace": namespace},
                 "reason": reason, "message": message[:MAX_MESSAGE], "type": kind,
                 "source": {"component": self.component}, "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        try:
            self.kube.create_event(namespace, event)
        except SparkSecretsError as exc:
            log.info("could not record an Event on %s/%s (%s)", namespace, name, exc.problem)
