"""The renew service, room by room:

* :mod:`.app`: the service put together from one parsed :class:`~.app.RenewConfig` (the CLI only parses);
* :mod:`.watch`: lists and watches token Secrets' metadata (one thread per namespace);
* :mod:`.service`: the main loop (settings: :mod:`.config`): per-Secret scheduling (:mod:`.policy`) and the
  actions (:mod:`.actions`), through token kinds (:mod:`.kinds`: obtain, renew, cancel one kind of token);
* :mod:`.events`: Kubernetes Events on the Secrets, for their owners;
* :mod:`.housekeeping`: read grants (:mod:`.grants`) and the ownership sweep (:mod:`.ownership`);
* :mod:`.lease`: leader election among replicas;
* :mod:`.session`: the service's own Kerberos login from its keytab;
* :mod:`.metrics` and :mod:`.health`: ``/metrics`` (prometheus_client), ``/healthz``, ``/readyz``.

The Secret's format (labels, annotations, the token file) is :mod:`spark_secrets.secrets.tokensecret`'s.

The names below are imported on first use, so that importing one room (``doctor`` reads the lease's
annotation names from :mod:`.lease`) does not load the whole service and prometheus_client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spark_secrets.renew.health import HealthServer
    from spark_secrets.renew.policy import Policy
    from spark_secrets.renew.service import RenewService
    from spark_secrets.renew.session import KeytabSession

_EXPORTS = {"HealthServer": "spark_secrets.renew.health", "Policy": "spark_secrets.renew.policy",
            "RenewService": "spark_secrets.renew.service", "KeytabSession": "spark_secrets.renew.session"}
__all__ = ["HealthServer", "KeytabSession", "Policy", "RenewService"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'spark_secrets.renew' has no attribute {name!r}")
