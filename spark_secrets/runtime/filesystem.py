"""A ``pyarrow.fs.FileSystem`` over WebHDFS with the job's delegation token, for pyarrow, pandas and friends.

:func:`arrow_filesystem` is a ``pyarrow.fs.PyFileSystem`` whose :class:`WebHdfsHandler` calls the
HdfsCLI client of :mod:`spark_secrets.runtime.client`. Why this route and not the others:

* pyarrow's own ``HadoopFileSystem`` needs libhdfs, a JVM and a Kerberos ticket in every Python
  worker: the very things a job holding only delegation tokens does not have;
* fsspec's ``WebHDFS`` with ``token=`` would work through ``pyarrow.fs.FSSpecHandler``, but it is one
  more dependency (fsspec is not one of the project's; HdfsCLI and pyarrow are, by the owner's
  choice), it fixes the token when it is made (a job outlives its first token: the renew service
  re-issues it and kubelet swaps the file) and it has its own HA and error handling;
* a ``FileSystemHandler`` over the HdfsCLI client keeps one HTTP stack (``requests``, as the rest
  of the project), one place that picks the current token from the token file, fails over between
  NameNodes and turns refusals into this project's errors, and costs about 200 lines.

Reads are ranged: a file opened for reading sends ``OPEN`` with ``offset=`` when pyarrow seeks
(Parquet footers, column chunks) and keeps streaming while it reads on sequentially. Writes stream
to the DataNode through HdfsCLI's ``write`` as pyarrow produces them. Paths may be given as
``hdfs://<authority>/path`` of this filesystem or as absolute paths; pyarrow calls
:meth:`WebHdfsHandler.normalize_path` to strip the scheme and authority. The filesystem pickles by
its arguments, so it can be sent to executors (a pandas UDF) and opens the executor's own token file
there.
"""

from __future__ import annotations

import contextlib
import errno
import io
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
from hdfs.util import HdfsError as CliError

from spark_secrets.errors import HdfsError
from spark_secrets.runtime.client import TokenFileClient, hdfs_client
from spark_secrets.tokens.webhdfs import redact

_SCHEMES = ("hdfs", "webhdfs", "swebhdfs")


@contextlib.contextmanager
def _translated(path: str) -> Iterator[None]:
    """HdfsCLI's errors as the ``OSError`` subclasses pyarrow understands (missing path, exists, ...)."""
    try:
        yield
    except CliError as exc:
        name = getattr(exc, "exception", None) or ""
        message = " ".join(redact(str(exc)).split())[:300]
        if name == "FileNotFoundException" or "does not exist" in message:
            raise FileNotFoundError(errno.ENOENT, f"no such file or directory on HDFS: {path}") from None
        if name == "FileAlreadyExistsException":
            raise FileExistsError(errno.EEXIST, f"already exists on HDFS: {path}") from None
        if name == "ParentNotDirectoryException":
            raise NotADirectoryError(errno.ENOTDIR, f"a parent of {path} is a file on HDFS") from None
        if name == "PathIsNotEmptyDirectoryException":
            raise OSError(errno.ENOTEMPTY, f"directory not empty on HDFS: {path}") from None
        raise HdfsError(f"HDFS refused the operation on {path}: {name + ': ' if name else ''}{message}") from None


class _RangeReader(io.RawIOBase):
    """A seekable, read-only HDFS file: a new ``OPEN`` at the offset after each seek, streamed on after."""

    def __init__(self, client: TokenFileClient, path: str, size: int) -> None:
        super().__init__()
        self._client, self._path, self._size = client, path, size
        self._pos = 0
        self._stream: Any = None
        self._stream_pos = -1
        self._exit = contextlib.ExitStack()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, f"negative seek position in {self._path}")
        self._pos = base + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError(f"read from a closed HDFS file ({self._path})")
        left = self._size - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        if self._stream is None or self._stream_pos != self._pos:
            self._open_at(self._pos)
        parts: list[bytes] = []
        got = 0
        while got < want:
            chunk = self._stream.read(want - got)
            if not chunk:
                raise OSError(errno.EIO, f"HDFS stream of {self._path} ended at byte {self._pos + got} of {self._size}")
            parts.append(chunk)
            got += len(chunk)
        self._pos += got
        self._stream_pos = self._pos
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def _open_at(self, offset: int) -> None:
        self._exit.close()
        self._exit = contextlib.ExitStack()
        with _translated(self._path):
            self._stream = self._exit.enter_context(self._client.read(self._path, offset=offset))
        self._stream_pos = offset

    def close(self) -> None:
        if not self.closed:
            try:
                self._exit.close()
            finally:
                self._stream = None
                super().close()


class _StreamWriter(io.RawIOBase):
    """An HDFS file being written: HdfsCLI's ``write`` streams the chunks to the DataNode in a thread."""

    def __init__(self, client: TokenFileClient, path: str, *, append: bool = False) -> None:
        super().__init__()
        self._path = path
        self._pos = 0
        with _translated(path):
            self._writer = client.write(path, overwrite=not append, append=append)
        self._writer.__enter__()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._writer.write(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            try:
                with _translated(self._path):
                    self._writer.__exit__(None, None, None)
            finally:
                super().close()


class WebHdfsHandler(pafs.FileSystemHandler):
    """The ``pyarrow.fs.FileSystemHandler`` behind :func:`arrow_filesystem`."""

    def __init__(self, fs: str | None = None, *, token_file: str | Path | None = None,
                 ca_bundle: str | bool | None = None, conf: str | Path | None = None,
                 client: TokenFileClient | None = None) -> None:
        self.client = client if client is not None else hdfs_client(fs, token_file=token_file, ca_bundle=ca_bundle,
                                                                    conf=conf)
        self.uri = self.client.target.uri
        # What an unpickled copy is made from: the same filesystem, the rest looked up where it is unpickled
        # unless given here (HADOOP_TOKEN_FILE_LOCATION and HADOOP_CONF_DIR differ between driver and executors).
        self._args: dict[str, Any] = {"fs": self.uri, "token_file": token_file, "ca_bundle": ca_bundle, "conf": conf}
        parts = urlsplit(self.uri)
        self._authority = parts.netloc.lower()

    def __repr__(self) -> str:
        return f"WebHdfsHandler({self.uri!r}, token_file={str(self.client.tokens.path)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by its arguments: unpickled (on an executor, say), it reads that host's token file."""
        return (_handler, (self._args,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WebHdfsHandler):
            return NotImplemented
        return (self.uri, self.client.tokens.path) == (other.uri, other.client.tokens.path)

    def __hash__(self) -> int:
        return hash((self.uri, self.client.tokens.path))

    def get_type_name(self) -> str:
        return "webhdfs-token"

    def normalize_path(self, path: str) -> str:
        if "://" in path:
            parts = urlsplit(path)
            if parts.scheme.lower() not in _SCHEMES or parts.netloc.lower() != self._authority:
                raise ValueError(f"{path!r} is not on {self.uri}")
            path = parts.path or "/"
        return path

    # -- metadata --------------------------------------------------------------------------------
    def _status(self, path: str) -> dict[str, Any] | None:
        with _translated(path):
            status: dict[str, Any] | None = self.client.status(path, strict=False)
        return status

    @staticmethod
    def _info(path: str, status: dict[str, Any]) -> pafs.FileInfo:
        mtime_ns = int(status.get("modificationTime", 0)) * 1_000_000
        if status.get("type") == "DIRECTORY":
            return pafs.FileInfo(path, pafs.FileType.Directory, mtime_ns=mtime_ns)
        kind = pafs.FileType.File if status.get("type") == "FILE" else pafs.FileType.Unknown
        return pafs.FileInfo(path, kind, size=int(status.get("length", 0)), mtime_ns=mtime_ns)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        infos = []
        for path in map(self.normalize_path, paths):
            status = self._status(path or "/")
            infos.append(pafs.FileInfo(path, pafs.FileType.NotFound) if status is None else self._info(path, status))
        return infos

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        base = self.normalize_path(selector.base_dir) or "/"
        status = self._status(base)
        if status is None:
            if selector.allow_not_found:
                return []
            raise FileNotFoundError(errno.ENOENT, f"no such directory on HDFS: {base}")
        if status.get("type") != "DIRECTORY":
            raise NotADirectoryError(errno.ENOTDIR, f"not a directory on HDFS: {base}")
        infos: list[pafs.FileInfo] = []
        pending = [base]
        while pending:
            directory = pending.pop()
            with _translated(directory):
                entries = self.client.list(directory, status=True)
            for name, entry in entries:
                child = posixpath.join(directory, name)
                infos.append(self._info(child, entry))
                if entry.get("type") == "DIRECTORY" and selector.recursive:
                    pending.append(child)
        return infos

    # -- directories and files -------------------------------------------------------------------
    def create_dir(self, path: str, recursive: bool) -> None:
        path = self.normalize_path(path)
        parent = posixpath.dirname(path.rstrip("/"))
        if not recursive and parent and self._status(parent) is None:
            raise FileNotFoundError(errno.ENOENT, f"parent directory of {path} does not exist on HDFS")
        status = self._status(path)
        if status is not None:
            if status.get("type") != "DIRECTORY":
                raise FileExistsError(errno.EEXIST, f"a file exists at {path} on HDFS")
            return
        with _translated(path):
            self.client.makedirs(path)

    def _existing(self, path: str, want_directory: bool) -> None:
        status = self._status(path)
        if status is None:
            raise FileNotFoundError(errno.ENOENT, f"no such file or directory on HDFS: {path}")
        is_directory = status.get("type") == "DIRECTORY"
        if want_directory and not is_directory:
            raise NotADirectoryError(errno.ENOTDIR, f"not a directory on HDFS: {path}")
        if not want_directory and is_directory:
            raise IsADirectoryError(errno.EISDIR, f"a directory, not a file, on HDFS: {path}")

    def delete_dir(self, path: str) -> None:
        path = self.normalize_path(path)
        self._existing(path, want_directory=True)
        with _translated(path):
            self.client.delete(path, recursive=True)

    def _delete_contents(self, path: str, missing_dir_ok: bool) -> None:
        status = self._status(path)
        if status is None:
            if missing_dir_ok:
                return
            raise FileNotFoundError(errno.ENOENT, f"no such directory on HDFS: {path}")
        if status.get("type") != "DIRECTORY":
            raise NotADirectoryError(errno.ENOTDIR, f"not a directory on HDFS: {path}")
        with _translated(path):
            for name in self.client.list(path):
                self.client.delete(posixpath.join(path, name), recursive=True)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        path = self.normalize_path(path)
        if path.strip("/") == "":
            raise ValueError("delete_dir_contents of the root directory: call delete_root_dir_contents")
        self._delete_contents(path, missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        self._delete_contents("/", False)

    def delete_file(self, path: str) -> None:
        path = self.normalize_path(path)
        self._existing(path, want_directory=False)
        with _translated(path):
            self.client.delete(path)

    def move(self, src: str, dest: str) -> None:
        src, dest = self.normalize_path(src), self.normalize_path(dest)
        if self._status(src) is None:
            raise FileNotFoundError(errno.ENOENT, f"no such file or directory on HDFS: {src}")
        target = self._status(dest)
        with _translated(dest):
            if target is not None:  # pyarrow's move replaces a file or an empty directory
                if target.get("type") == "DIRECTORY" and self.client.list(dest):
                    raise OSError(errno.ENOTEMPTY, f"cannot move {src} over the non-empty directory {dest}")
                self.client.delete(dest, recursive=False)
            self.client.rename(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        src, dest = self.normalize_path(src), self.normalize_path(dest)
        self._existing(src, want_directory=False)
        with _translated(src), self.client.read(src) as reader:
            self.client.write(dest, data=iter(lambda: reader.read(1 << 20), b""), overwrite=True)

    # -- streams ---------------------------------------------------------------------------------
    def open_input_file(self, path: str) -> pa.NativeFile:
        path = self.normalize_path(path)
        status = self._status(path)
        if status is None:
            raise FileNotFoundError(errno.ENOENT, f"no such file on HDFS: {path}")
        if status.get("type") == "DIRECTORY":
            raise IsADirectoryError(errno.EISDIR, f"a directory, not a file, on HDFS: {path}")
        return pa.PythonFile(_RangeReader(self.client, path, int(status.get("length", 0))), mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.open_input_file(path)

    def open_output_stream(self, path: str, metadata: Any = None) -> pa.NativeFile:
        path = self.normalize_path(path)
        return pa.PythonFile(_StreamWriter(self.client, path), mode="w")

    def open_append_stream(self, path: str, metadata: Any = None) -> pa.NativeFile:
        path = self.normalize_path(path)
        if self._status(path) is None:  # pyarrow: appending to a missing file creates it
            return self.open_output_stream(path, metadata)
        return pa.PythonFile(_StreamWriter(self.client, path, append=True), mode="w")


def _handler(args: dict[str, Any]) -> WebHdfsHandler:
    return WebHdfsHandler(**args)


def arrow_filesystem(fs: str | None = None, *, token_file: str | Path | None = None,
                     ca_bundle: str | bool | None = None, conf: str | Path | None = None,
                     client: TokenFileClient | None = None) -> pafs.PyFileSystem:
    """A ``pyarrow.fs.FileSystem`` for ``fs`` (default ``fs.defaultFS``) that uses only the job's token.

    Pass it as ``filesystem=`` to ``pyarrow.parquet``, ``pyarrow.dataset`` or pandas (``read_parquet``,
    ``to_parquet``); the arguments are those of :func:`spark_secrets.runtime.hdfs_client`, or an
    existing ``client``.
    """
    return pafs.PyFileSystem(WebHdfsHandler(fs, token_file=token_file, ca_bundle=ca_bundle, conf=conf, client=client))
