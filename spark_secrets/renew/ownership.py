"""Whose a token Secret is, decided from the pods that use it (pure: no I/O).

A Secret made by ``spark-secrets submit`` is owned by its driver pod, so Kubernetes deletes it with
the job. Secrets made by ``conf`` or ``render`` (or by a submitter whose role may only create them)
start owner-less: the renew service gives them to the driver pod that mounts them, and deletes the
ones no pod uses once a grace period has passed. A Secret an admin pre-created for one user
(``spark-secrets.io/persistent=true``) outlives jobs: it is emptied instead of deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spark_secrets.secrets.tokensecret import parse_rfc3339
from spark_secrets.secrets.tokensecret import TokenSecret

KEEP = "keep"
ADOPT = "adopt"
DELETE = "delete"
RELEASE = "release"
_FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodInfo:
    """What the sweep needs from one pod: which Secrets it mounts, whether it is a driver, whether it ended."""

    name: str
    uid: str
    driver: bool
    secrets: frozenset[str]
    finished_ms: int | None  # when its last container ended, if the pod has finished

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> PodInfo:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        names: set[str] = set()
        for volume in spec.get("volumes") or []:
            if (volume.get("secret") or {}).get("secretName"):
                names.add(volume["secret"]["secretName"])
            for source in (volume.get("projected") or {}).get("sources") or []:
                if (source.get("secret") or {}).get("name"):
                    names.add(source["secret"]["name"])
        finished = None
        if status.get("phase") in _FINISHED:
            ends = [parse_rfc3339(s["state"]["terminated"]["finishedAt"])
                    for s in status.get("containerStatuses") or []
                    if ((s.get("state") or {}).get("terminated") or {}).get("finishedAt")]
            finished = max(ends, default=0)
        labels = meta.get("labels") or {}
        return cls(str(meta.get("name")), str(meta.get("uid")), labels.get("spark-role") == "driver",
                   frozenset(names), finished)


@dataclass(frozen=True)
class Verdict:
    action: str
    reason: str
    pod: PodInfo | None = None


def judge(ts: TokenSecret, pods: Sequence[PodInfo], now_ms: int, grace_ms: int) -> Verdict:
    """What to do with ``ts`` given every pod in its namespace."""
    users = [p for p in pods if ts.name in p.secrets]
    running = [p for p in users if p.finished_ms is None]
    ended = max((p.finished_ms or 0 for p in users), default=0)
    if ts.persistent:
        if running:
            return Verdict(KEEP, "in use")
        idle_since = max(ended, ts.issue_date_ms or now_ms)  # tokens not named yet: as if just issued
        if now_ms - idle_since > grace_ms:
            return Verdict(RELEASE, "no running pod uses this pre-created Secret")
        return Verdict(KEEP, "recently used")
    pod_owners = [uid for kind, _, uid in ts.owners if kind == "Pod"]
    if ts.owners and not pod_owners:
        return Verdict(KEEP, "owned by something other than a pod (its garbage collection applies)")
    if pod_owners and not any(p.uid in pod_owners for p in pods):
        return Verdict(DELETE, "its owner pod is gone")
    if users and not running:
        if now_ms - ended > grace_ms:
            return Verdict(DELETE, "every pod that used it has finished")
        return Verdict(KEEP, "job finished recently")
    if not pod_owners:
        drivers = [p for p in running if p.driver]
        if drivers:
            return Verdict(ADOPT, f"driver pod {drivers[0].name} mounts it", drivers[0])
        if not users and now_ms - ts.created_ms > grace_ms:
            return Verdict(DELETE, "no pod has used it since it was made")
    return Verdict(KEEP, "in use" if users else "waiting for its job")
