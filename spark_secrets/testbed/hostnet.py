"""A helm post-renderer that fits a chart's workloads to the test bed's one node.

The test bed's API server and every server pods talk to listen on the host's loopback and there is no
kube-proxy, so pods run on the host network (as tests/test_pods.py runs every job pod), resolving cluster
names through the node's CoreDNS. With ``--free-port`` each container's ``--listen`` becomes ``:0`` and
its declared ports and HTTP probes go: two replicas on one host network cannot share a port, and a probe
would have to know the port chosen. ``--no-probes`` drops only the probes (two programs' fixed probe ports
would clash), ``--append-arg`` adds an argument to every container. Reads the rendered YAML on stdin, writes it on stdout.

    python3 -m spark_secrets.testbed.hostnet [--free-port] [--no-probes] [--append-arg ARG ...]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def fit(doc: dict[str, Any], free_port: bool, no_probes: bool = False, append: tuple[str, ...] = ()) -> dict[str, Any]:
    if doc.get("kind") not in WORKLOADS:
        return doc
    pod = doc["spec"]["template"]["spec"]
    pod.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet", terminationGracePeriodSeconds=10)
    for container in pod.get("containers", []):
        for key in ("livenessProbe", "readinessProbe", "startupProbe") if free_port or no_probes else ():
            container.pop(key, None)
        args = container.setdefault("args", [])
        if free_port:
            container.pop("ports", None)
            for i, arg in enumerate(args[:-1]):
                if arg == "--listen":
                    args[i + 1] = ":0"
        args.extend(append)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fit a chart's workloads to the test bed's host-network node")
    parser.add_argument("--free-port", action="store_true", help="--listen :0, no ports or HTTP probes")
    parser.add_argument("--no-probes", action="store_true", help="no HTTP probes")
    parser.add_argument("--append-arg", action="append", default=[], help="an argument for every container")
    args = parser.parse_args(argv)
    docs = [fit(d, args.free_port, args.no_probes, tuple(args.append_arg)) for d in yaml.safe_load_all(sys.stdin) if d]
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False, explicit_start=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
