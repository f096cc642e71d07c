"""Faults for the long pod test: the renew service as a 2-replica Deployment with its Lease, its pods
deleted and its processes SIGKILLed, and the API server, the KDC and the NameNode frozen (SIGSTOP), one
fault at a time at random intervals from a seed the test prints. Also every renew-service container's
log, collected while pods come and go (a deleted pod's log goes with it)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from spark_secrets.testbed.daemon import Daemon

SELECTOR = "app.kubernetes.io/name=spark-secrets-renewer"
#: How long each server is frozen, as the issue's operator found: seconds.
PAUSES = {"kube-apiserver": 12.0, "krb5kdc": 20.0, "namenode": 8.0}


def _pids_of_pod(uid: str, marker: bytes) -> list[int]:
    """Processes of the pod ``uid`` on this node (its cgroup) whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and f"pod{uid}" in (entry / "cgroup").read_text().replace("_", "-") \
                    and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


class RenewerLogs:
    """Follows the log of every renew-service container (each pod, each restart) into memory."""

    def __init__(self, api: k8s.CoreV1Api, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.logs: dict[tuple[str, int], list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._discover, name="renewer-logs", daemon=True)

    def start(self) -> RenewerLogs:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def text(self) -> str:
        return "\n".join(line for lines in list(self.logs.values()) for line in list(lines))

    def _discover(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                for pod in self.api.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items:
                    for status in pod.status.container_statuses or []:
                        key = (pod.metadata.name, status.restart_count)
                        if key not in self.logs and status.state.running is not None:
                            self.logs[key] = []
                            threading.Thread(target=self._follow, args=(key,), daemon=True).start()

    def _follow(self, key: tuple[str, int]) -> None:
        lines = self.logs[key]
        with contextlib.suppress(Exception):
            stream = self.api.read_namespaced_pod_log(key[0], self.namespace, follow=True, _preload_content=False)
            for raw in stream.stream():
                lines.extend(raw.decode(errors="replace").splitlines())


@dataclass
class Fault:
    kind: str
    at: float  # epoch seconds
    seconds: float  # how long it lasted (a pause), or the takeover it caused (Lease holder changed)
    detail: str = ""


@dataclass
class Faults:
    """Injects one fault at a time, ``gap`` seconds apart (uniform), from ``seed``, until stopped."""

    api: k8s.CoreV1Api
    lease: Callable[[], dict[str, Any]]
    servers: dict[str, Daemon]
    namespace: str
    seed: int
    gap: tuple[float, float] = (15.0, 28.0)
    done: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.started = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> Faults:
        self.started = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.started:
            self._thread.join(60)

    def holder(self) -> str:
        with contextlib.suppress(Exception):
            return str(self.lease()["spec"].get("holderIdentity") or "")
        return ""

    def _pods(self) -> list[k8s.V1Pod]:
        return [p for p in self.api.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
                if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
                and all(s.ready for s in p.status.container_statuses or [])]

    def _both_up(self) -> bool:
        with contextlib.suppress(Exception):
            return len(self._pods()) >= 2 and bool(self.holder())
        return False

    def _leader_pod(self) -> k8s.V1Pod | None:
        """The pod whose process holds the Lease: the Lease names its health address (host:port)."""
        health = str(((self.lease().get("metadata") or {}).get("annotations") or {}).get(
            "spark-secrets.io/health", ""))
        port = health.rsplit(":", 1)[-1]
        for pod in self._pods():
            for pid in _pids_of_pod(pod.metadata.uid, b"renewer"):
                with contextlib.suppress(OSError):
                    if port.isdigit() and self._listens(pid, int(port)):
                        return pod
        return None

    @staticmethod
    def _listens(pid: int, port: int) -> bool:
        """Whether process ``pid`` has a listening TCP socket on ``port`` (host network: /proc/net/tcp)."""
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = fd.readlink().as_posix()
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                    return True
        return False

    def _takeover(self, before: str, began: float, limit: float = 90.0) -> float:
        while time.time() - began < limit:
            now = self.holder()
            if now and now != before:
                return time.time() - began
            time.sleep(0.1)
        raise AssertionError(f"nobody took the Lease over from {before} in {limit:.0f} s")

    def _run(self) -> None:
        replica_faults = ["delete-leader", "kill-replica"]
        while not self._stop.wait(self.rng.uniform(*self.gap)):
            kind = self.rng.choice([*replica_faults, *self.servers])
            try:
                # One fault at a time: a replica's fault only while both replicas run and one holds the Lease
                # (else the next frozen server instead).
                leader = self._leader_pod() if kind in replica_faults and self._both_up() else None
                if kind in replica_faults and leader is None:
                    kind = self.rng.choice(list(self.servers))
                if kind in self.servers:
                    began = time.time()
                    self.servers[kind].pause(PAUSES[kind])
                    self.done.append(Fault(kind, began, time.time() - began))
                    continue
                assert leader is not None
                before = self.holder()
                if kind == "delete-leader":
                    began = time.time()
                    self.api.delete_namespaced_pod(leader.metadata.name, self.namespace)
                    self.done.append(Fault(kind, began, self._takeover(before, began), leader.metadata.name))
                    continue
                pod = self.rng.choice(self._pods())
                was_leader = pod.metadata.uid == leader.metadata.uid
                pids = _pids_of_pod(pod.metadata.uid, b"renewer")
                began = time.time()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                taken = self._takeover(before, began) if was_leader else 0.0
                self.done.append(Fault(kind, began, taken, f"{pod.metadata.name}{' (leader)' if was_leader else ''}"))
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(f"{_clock()}: {kind}: {type(exc).__name__}: {exc}")

    def summary(self) -> str:
        return "\n".join(f"  {_clock(f.at)} {f.kind:<15} {f.seconds:5.1f} s {f.detail}" for f in self.done)


def _clock(at: float | None = None) -> str:
    return dt.datetime.fromtimestamp(at or time.time(), tz=dt.timezone.utc).strftime("%H:%M:%S")
