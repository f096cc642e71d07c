"""Where a notebook reaches a user's Connect server, from its driver pod as the API shows it: the port its
(unchangeable) spec declares, and the host by ``spark.secrets.connect.address`` (the Service's name, the pod's IP, or
the name when it resolves here). Standard library only: a client in a pod of the cluster uses it too."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any


def service_name(pod: Mapping[str, Any]) -> str:
    return f"{pod['metadata']['name'].removesuffix('-driver')}-driver-svc"


def _address(pod: Mapping[str, Any], how: str, service_ok: bool) -> str | None:
    """The host the notebook reaches the server at, or None while it has none. The Service only when ``service_ok``
    (it is the pod's own: a Service by that name made by someone else would receive the bearer token)."""
    meta, status = pod["metadata"], pod.get("status") or {}
    service = f"{service_name(pod)}.{meta['namespace']}.svc"
    if how == "service":
        return service if service_ok else None
    if how == "auto" and service_ok:
        try:
            socket.getaddrinfo(service, None)
            return service
        except OSError:
            pass
    return status.get("podIP")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def connect_port(pod: Mapping[str, Any], default: int) -> int:
    """The Connect port the pod's spec declares (a spec, unlike annotations, cannot change after creation)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "spark-connect" and port.get("containerPort"):
                return int(port["containerPort"])
    return default


def server_address(pod: Mapping[str, Any], how: str, default_port: int,
                   service_ok: bool = False) -> tuple[str | None, int, bool]:
    """Where the notebook reaches the server of ``pod`` (host, port), and whether it accepts a connection now."""
    port = connect_port(pod, default_port)
    host = _address(pod, how, service_ok)
    return host, port, bool(host) and (pod.get("status") or {}).get("phase") == "Running" and _listening(str(host), port)
