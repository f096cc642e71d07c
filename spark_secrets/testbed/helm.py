"""A real ``helm`` (v3, built by install.sh from the Go module proxy) against the test bed's API server.

Charts are installed as their users install them; what only the test bed needs (its one node's host
network, see :mod:`spark_secrets.testbed.hostnet`) goes in through helm's own ``--post-renderer``, so no chart
carries a value for it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir

#: The pinned helm (install.sh builds exactly this one).
HELM_VERSION = "v3.21.4"


def helm_binary() -> Path:
    path = cache_dir() / "helm" / "bin" / "helm"
    if not os.access(path, os.X_OK):
        raise TestbedError(f"helm not found at {path}", INSTALL_HINT)
    return path


class Helm:
    """``helm`` with its own cache, config and data under ``workdir`` and the given kubeconfig."""

    def __init__(self, workdir: Path, kubeconfig: Path | None = None) -> None:
        self.binary = helm_binary()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **{f"HELM_{d}_HOME": str(workdir / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}}
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)
        self._files = 0

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise TestbedError(f"helm {shlex.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}",
                               "read helm's message above")
        return done

    def values_file(self, values: dict[str, Any]) -> Path:
        self._files += 1
        path = self.workdir / f"values-{self._files}.yaml"
        path.write_text(json.dumps(values))  # JSON is YAML
        return path

    def post_renderer(self, *args: str) -> list[str]:
        """``--post-renderer`` flags running :mod:`spark_secrets.testbed.hostnet` with ``args``."""
        script = self.workdir / "hostnet"
        script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m spark_secrets.testbed.hostnet \"$@\"\n")
        script.chmod(0o755)
        return ["--post-renderer", str(script), *(f"--post-renderer-args={a}" for a in args)]

    def template(self, chart: Path, values: dict[str, Any], *extra: str) -> str:
        return self.run("template", "spark-secrets-renewer", str(chart), "-f", str(self.values_file(values)),
                        *extra).stdout

    def install(self, release: str, chart: Path, namespace: str, values: dict[str, Any], *extra: str,
                verb: str = "install") -> str:
        """``helm install`` (or ``upgrade``) and wait until its workloads are ready; returns helm's output."""
        return self.run(verb, release, str(chart), "-n", namespace, "-f", str(self.values_file(values)),
                        "--wait", "--timeout", "5m", *extra).stdout

    def uninstall(self, release: str, namespace: str) -> str:
        return self.run("uninstall", release, "-n", namespace, "--wait", "--timeout", "5m").stdout

    def manifest(self, release: str, namespace: str) -> list[dict[str, Any]]:
        """The objects of the release as installed (``helm get manifest``)."""
        import yaml

        text = self.run("get", "manifest", release, "-n", namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]
