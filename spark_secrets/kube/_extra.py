"""What needs the ``kube`` extra (the ``kubernetes`` package), and loading it on first use.

Submissions, ``spark-secrets conf`` and the renew service talk to the API server over plain REST
(:mod:`.client`, :mod:`.config`), so ``pip install spark-secrets`` brings no ``kubernetes``. Only the
renew service's controller layout (per-Secret grants through ``kubernetes.client``) and kubeconfigs
whose user runs an exec plugin or auth provider (that package's loader) import it, through :func:`load`;
without the extra those raise a one-line :class:`~spark_secrets.errors.ConfigError` naming it.
"""

from __future__ import annotations

from types import ModuleType

from spark_secrets import extras

#: The extra of ``setup.cfg`` that brings ``kubernetes``.
EXTRA = "kube"
INSTALL = extras.install_line(EXTRA)


def load(module: str, what: str) -> ModuleType:
    """``module`` (of the ``kubernetes`` package) imported; :class:`ConfigError` naming the extra if
    ``kubernetes`` is missing."""
    return extras.load(module, what, EXTRA, {"kubernetes": "the kubernetes package"})
