"""What needs the ``runtime`` extra (HdfsCLI, pyarrow), and loading it on first use.

A job that only reads its own secrets (:mod:`.secrets`) installs ``spark-secrets`` alone, so the
package imports neither ``hdfs`` nor ``pyarrow`` until :func:`~spark_secrets.runtime.hdfs_client`,
:func:`~spark_secrets.runtime.arrow_filesystem` or ``TokenFileClient`` is used; without the extra,
those raise a one-line :class:`~spark_secrets.errors.ConfigError` naming it.
"""

from __future__ import annotations

from types import ModuleType

from spark_secrets import extras

#: The extra of ``setup.cfg`` that brings what :mod:`.client` and :mod:`.filesystem` import.
EXTRA = "runtime"
INSTALL = extras.install_line(EXTRA)
#: Top-level modules of the extra, with the distribution a user would recognise.
_PROVIDED = {"hdfs": "HdfsCLI (module hdfs)", "pyarrow": "pyarrow"}

#: (connect, read) seconds of the HdfsCLI client; reads of a DataNode's stream may pause while the consumer works.
#: Here, not in :mod:`.client`, so that the package's signatures can name it without HdfsCLI.
DEFAULT_TIMEOUT = (10.0, 120.0)


def load(module: str, what: str) -> ModuleType:
    """``module`` imported; :class:`ConfigError` naming the extra if a module of the extra is missing."""
    return extras.load(module, what, EXTRA, _PROVIDED)
