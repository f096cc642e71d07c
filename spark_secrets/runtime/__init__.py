"""Python code in a job reads and writes secure HDFS with the job's delegation token: no JVM, no Kerberos.

* :func:`hdfs_client`: an HdfsCLI client (:mod:`.client`) for one filesystem;
* :func:`arrow_filesystem`: a ``pyarrow.fs.FileSystem`` (:mod:`.filesystem`) for ``pyarrow.parquet``,
  ``pyarrow.dataset`` and pandas;
* :mod:`.tokenfile`: the job's token file (``HADOOP_TOKEN_FILE_LOCATION``), re-read when it changes;
* :func:`secret`, :func:`fresh`, :func:`on_change` (:mod:`.secrets`): the job's own secrets
  (``spark.secrets.file.*``) by name, current after a rotation.

Both go through WebHDFS (or SWebHDFS) with ``delegation=``: HA nameservices from ``HADOOP_CONF_DIR``
(standbys skipped), HTTPS with a CA bundle, and this project's one-line errors (no token for the
filesystem, an expired or cancelled token, permission denied). ``pyarrow`` is imported only by
:func:`arrow_filesystem`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.runtime.client import TokenFileClient, hdfs_client
from spark_secrets.runtime.secrets import (FreshSecret, MissingSecretError, fresh, on_change, secret, secret_bytes,
                                           secret_path)
from spark_secrets.runtime.tokenfile import TokenFile

if TYPE_CHECKING:
    from pyarrow.fs import PyFileSystem

__all__ = ["FreshSecret", "MissingSecretError", "TokenFile", "TokenFileClient", "arrow_filesystem", "fresh",
           "hdfs_client", "on_change", "secret", "secret_bytes", "secret_path"]


def arrow_filesystem(fs: str | None = None, *, token_file: str | Path | None = None,
                     ca_bundle: str | bool | None = None, conf: str | Path | None = None,
                     client: TokenFileClient | None = None) -> PyFileSystem:
    """A ``pyarrow.fs.FileSystem`` for ``fs`` over the job's token (:func:`.filesystem.arrow_filesystem`)."""
    from spark_secrets.runtime.filesystem import arrow_filesystem as make

    return make(fs, token_file=token_file, ca_bundle=ca_bundle, conf=conf, client=client)
