"""Python code in a job reads and writes secure HDFS with the job's delegation token: no JVM, no Kerberos.

* :func:`hdfs_client`: an HdfsCLI client (:mod:`.client`) for one filesystem;
* :func:`arrow_filesystem`: a ``pyarrow.fs.FileSystem`` (:mod:`.filesystem`) for ``pyarrow.parquet``,
  ``pyarrow.dataset`` and pandas;
* :mod:`.tokenfile`: the job's token file (``HADOOP_TOKEN_FILE_LOCATION``), re-read when it changes;
* :func:`secret`, :func:`fresh`, :func:`on_change` (:mod:`.secrets`): the job's own secrets
  (``spark.secrets.file.*``) by name, current after a rotation.

Both go through WebHDFS (or SWebHDFS) with ``delegation=``: HA nameservices from ``HADOOP_CONF_DIR``
(standbys skipped), HTTPS with a CA bundle, and this project's one-line errors (no token for the
filesystem, an expired or cancelled token, permission denied).

HdfsCLI and pyarrow come with the ``runtime`` extra (``pip install 'spark-secrets[runtime]'``) and are
imported on first use only (:mod:`._extra`): a job that only reads its secrets needs neither. Without
them, :func:`hdfs_client`, :func:`arrow_filesystem` and ``TokenFileClient`` raise a one-line
:class:`~spark_secrets.errors.ConfigError` naming the extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.runtime._extra import DEFAULT_TIMEOUT, load
from spark_secrets.runtime.secrets import (FreshSecret, MissingSecretError, fresh, on_change, secret, secret_bytes,
                                           secret_path)
from spark_secrets.runtime.tokenfile import TokenFile

if TYPE_CHECKING:
    import requests
    from pyarrow.fs import PyFileSystem

    from spark_secrets.hadoop.conf import HadoopConf
    from spark_secrets.runtime.client import TokenFileClient

__all__ = ["FreshSecret", "MissingSecretError", "TokenFile", "TokenFileClient", "arrow_filesystem", "fresh",
           "hdfs_client", "on_change", "secret", "secret_bytes", "secret_path"]


def hdfs_client(fs: str | None = None, *, token_file: str | Path | None = None, ca_bundle: str | bool | None = None,
                conf: HadoopConf | str | Path | None = None, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                session: requests.Session | None = None, tokens: TokenFile | None = None) -> TokenFileClient:
    """An HdfsCLI client for ``fs`` over the job's token (:func:`.client.hdfs_client`)."""
    client = load("spark_secrets.runtime.client", "spark_secrets.runtime.hdfs_client()")
    made: TokenFileClient = client.hdfs_client(fs, token_file=token_file, ca_bundle=ca_bundle, conf=conf,
                                               timeout=timeout, session=session, tokens=tokens)
    return made


def arrow_filesystem(fs: str | None = None, *, token_file: str | Path | None = None,
                     ca_bundle: str | bool | None = None, conf: str | Path | None = None,
                     client: TokenFileClient | None = None) -> PyFileSystem:
    """A ``pyarrow.fs.FileSystem`` for ``fs`` over the job's token (:func:`.filesystem.arrow_filesystem`)."""
    filesystem = load("spark_secrets.runtime.filesystem", "spark_secrets.runtime.arrow_filesystem()")
    made: PyFileSystem = filesystem.arrow_filesystem(fs, token_file=token_file, ca_bundle=ca_bundle, conf=conf,
                                                     client=client)
    return made


if not TYPE_CHECKING:  # mypy sees the import above, and no module __getattr__ that would accept any name
    def __getattr__(name: str) -> object:
        """``TokenFileClient`` (PEP 562): HdfsCLI's client class, imported on first use."""
        if name == "TokenFileClient":
            cls = load("spark_secrets.runtime.client", "spark_secrets.runtime.TokenFileClient").TokenFileClient
            globals()[name] = cls
            return cls
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
