"""Profile of the renew service's start without a test bed: where its CPU goes per Secret once the events arrive.

    python3 benchmarks/renewer_start.py [--count 10000] [--stages] [--profile 25]

The API server's side is replayed: ``--count`` watch events as a streaming list sends them for token
Secrets the service sealed a moment ago (PartialObjectMetadata with managedFields, owner label, seal),
then the bookmark that ends the list. Printed: the CPU per Secret of a bare list's client (the JSON
decode :meth:`KubeClient.watch_secret_metadata` does for the benchmark's peer), of the service's watch
thread and main loop from the first event to ready, the size of what it keeps per Secret; with
``--stages`` each step alone, and with ``--profile N`` the N costliest functions of the start (cProfile, one
thread: watch then main loop; the cyclic GC's time lands in whichever function allocated). The resident memory
the start adds is printed too: the replay hands events over faster than an API server, as a long list does.
:mod:`benchmarks.renewer` measures the same start against a real API server.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import queue
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token
from spark_secrets.kube.metadata import decode_metadata_event
from spark_secrets.renew.config import ServiceConfig
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.seal import Seal
from spark_secrets.renew.service import RenewService
from spark_secrets.renew.watch import INITIAL_EVENTS_END, SecretEvent, SecretWatch
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_KEY, ANNOTATION_VERIFIED,
                                               KIND_HADOOP_TOKENS, LABEL_APP, LABEL_KIND, LABEL_MANAGED_BY,
                                               LABEL_OWNER, MANAGED_BY, TokenSecret, schedule_annotations)

NAMESPACE = "bench"
SEAL = Seal(b"k" * 32)
NOW_MS = int(time.time() * 1000)


def _event(i: int, creds: Credentials) -> bytes:
    """One ADDED event as the API server writes it for a Secret the service renewed a moment ago."""
    notes = {ANNOTATION_KEY: "hadoop-tokens", ANNOTATION_FILESYSTEMS: "webhdfs://nn.example:9870",
             **{k: v for k, v in schedule_annotations(creds, NOW_MS + 20 * 3_600_000, renewed_at_ms=NOW_MS).items()
                if v}}
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS, LABEL_OWNER: "alice",
              LABEL_APP: f"job-{i % 50}"}
    meta: dict[str, Any] = {"name": f"job-{i:06d}-hadoop-tokens", "namespace": NAMESPACE,
                            "uid": f"6f1c2b3a-{i:04x}-4c1d-9e2f-0123456789ab", "resourceVersion": str(100_000 + i),
                            "creationTimestamp": "2026-12-06T06:00:00Z", "labels": labels, "annotations": notes}
    meta["annotations"][ANNOTATION_VERIFIED] = SEAL.of(TokenSecret.from_metadata({"metadata": meta}))
    fields = {"f:data": {".": {}, "f:hadoop-tokens": {}}, "f:type": {},
              "f:metadata": {"f:annotations": {".": {}, **{f"f:{k}": {} for k in notes}},
                             "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}}}}
    meta["managedFields"] = [{"manager": "spark-secrets", "operation": "Update", "apiVersion": "v1",
                              "time": "2026-12-06T06:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields}]
    return json.dumps({"type": "ADDED", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                                   "metadata": meta}}, separators=(",", ":")).encode()


def _lines(count: int) -> list[bytes]:
    ident = DelegationTokenIdentifier("alice", "renewer", "", NOW_MS, NOW_MS + 7 * 86_400_000, 5, 2)
    token = Token(ident.encode(), bytes(range(20)), "WEBHDFS delegation", "127.0.0.1:9870")
    creds = Credentials({"127.0.0.1:9870": token})
    end = {"type": "BOOKMARK", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": {"resourceVersion": "200000",
                                                       "annotations": {INITIAL_EVENTS_END: "true"}}}}
    return [_event(i, creds) for i in range(count)] + [json.dumps(end).encode()]


class _Replay:
    """A KubeClient's watch, replaying ``lines`` with the decode it does (:func:`decode_metadata_event`)."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    def watch_secret_metadata(self, namespace: str | None, label_selector: str, resource_version: str | None,
                              timeout_seconds: int) -> Iterator[dict[str, Any]]:
        for line in self.lines:
            yield decode_metadata_event(line)


def _start(lines: list[bytes], threads: bool = True) -> tuple[RenewService, float, float]:
    """The service's start: (service, CPU s, wall s) from the first event to ready; the watch on a thread of
    its own as in the service (``threads`` False: the watch first, then the main loop, for cProfile)."""
    events: queue.Queue[SecretEvent] = queue.Queue()
    service = RenewService(ServiceConfig(renewer="renewer", namespaces=(NAMESPACE,)), object(), [],  # type: ignore[arg-type]
                           seal=SEAL)
    watch = SecretWatch(_Replay(lines), NAMESPACE, events, Metrics())  # type: ignore[arg-type]
    began, wall = time.process_time(), time.perf_counter()
    thread = threading.Thread(target=watch._follow, args=(None, 600))
    if threads:
        thread.start()
    else:
        thread.run()
    while not service.metrics.ready:
        service.handle(events.get())
    thread.join() if threads else None
    return service, time.process_time() - began, time.perf_counter() - wall


def _rss() -> int:
    """This process's resident memory in bytes."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def _stages(lines: list[bytes]) -> None:
    """Each step of the start alone, per Secret, the cyclic GC off (its share is what the start costs beyond them)."""
    objects = [json.loads(line)["object"] for line in lines[:-1]]
    service = RenewService(ServiceConfig(renewer="renewer", namespaces=(NAMESPACE,)), object(), [],  # type: ignore[arg-type]
                           seal=SEAL)
    parsed = [TokenSecret.from_metadata(obj) for obj in objects]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("the event's decode (the peer's cost too)", lambda: all(decode_metadata_event(line) for line in lines)),
        ("the watch thread, decode included", lambda: SecretWatch(_Replay(lines), NAMESPACE, queue.Queue(),
                                                                  Metrics(), page_wait=0)._follow(None, 600)),
        ("TokenSecret.from_metadata", lambda: [TokenSecret.from_metadata(obj) for obj in objects]),
        ("the seal's check", lambda: [SEAL.holds(ts) for ts in parsed]),
        ("the policy's due time", lambda: [service.policy.next_action(ts, NOW_MS) for ts in parsed]),
        ("_track: all of the main loop's per-Secret work", lambda: [service._track(obj) for obj in objects]),
    ]
    gc.disable()
    try:
        for what, step in steps:
            began = time.process_time()
            step()
            print(f"    {(time.process_time() - began) * 1e6 / len(objects):6.1f} us/Secret  {what}")
    finally:
        gc.enable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions (cProfile)")
    parser.add_argument("--stages", action="store_true", help="time each step of the start alone")
    args = parser.parse_args()
    lines = _lines(args.count)
    print(f"{args.count} Secrets, {sum(map(len, lines)) / args.count:.0f} bytes of JSON each")
    began = time.process_time()
    for line in lines:
        decode_metadata_event(line)
    bare = time.process_time() - began
    gc.collect()
    before = _rss()
    service, cpu, wall = _start(lines)
    grown = _rss() - before
    assert len(service.secrets) == args.count and all(ts.verified for ts in service.secrets.values())
    assert service._due[0][0] > NOW_MS + 3_600_000  # sealed a moment ago: nothing due for hours
    per = 1e6 / args.count
    print(f"  bare list's decode {bare * per:5.1f} us/Secret; the service to ready: CPU {cpu * per:5.1f} us/Secret "
          f"(x{cpu / bare:.2f} of the decode), wall {wall * per:5.1f} us/Secret")
    del service
    tracemalloc.start()
    service, _, _ = _start(lines)
    kept = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"  kept once ready: {kept / args.count:.0f} bytes per Secret (tracemalloc); the process grew by "
          f"{grown / args.count:.0f} bytes per Secret (resident; decoded events freed but not given back count too)")
    del service
    if args.stages:
        _stages(lines)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(_start, lines, False)
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
