"""OCI image archives of one uncompressed layer, written with no registry and no Docker engine, and
their import into containerd (``ctr images import``).

This module decides the bytes of every image besides its stages' content, so :mod:`.images` hashes its
source into each image's cache key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.imagecache import tail
from spark_secrets.testbed.paths import system_binary

#: The node's architecture, as OCI and Debian name it.
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
#: Top-level directories whose content belongs to the running container, never to an image.
_RUNTIME_DIRS = ("dev", "proc", "sys")


def oci_archive(rootfs: Path | Sequence[Path], dest: Path, ref: str, config: dict[str, Any]) -> Path:
    """Write ``dest``: an OCI image archive of one uncompressed layer, named ``ref`` for containerd.

    ``rootfs`` is a root filesystem directory, or several merged in order (a later tree's entry
    replaces an earlier one's), so cached stages are packed as they are, without a copy. ``config``
    is the image's runtime configuration (``Env``, ``Entrypoint``, ``Cmd``, ``WorkingDir``, ``User``).
    The layer keeps modes, numeric owners, symlinks and hard links, and leaves out what is inside
    ``/dev``, ``/proc`` and ``/sys``; it is streamed through a temporary file while hashed.
    """
    trees = [rootfs] if isinstance(rootfs, Path) else list(rootfs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".oci-") as tmp:
        layer_file = Path(tmp) / "layer.tar"
        with open(layer_file, "wb") as out:
            sink = _HashingSink(out)
            _write_layer(trees, sink)
        layer = {"mediaType": _OCI_LAYER, "digest": sink.digest, "size": sink.size}
        image = {"architecture": ARCH, "os": "linux", "config": config,
                 "rootfs": {"type": "layers", "diff_ids": [sink.digest]}}
        config_blob = _canonical_json(image)
        manifest_blob = _canonical_json({"schemaVersion": 2, "mediaType": _OCI_MANIFEST,
                                         "config": _descriptor(_OCI_CONFIG, config_blob), "layers": [layer]})
        manifest = _descriptor(_OCI_MANIFEST, manifest_blob)
        manifest["platform"] = {"architecture": ARCH, "os": "linux"}
        # ctr names the image after io.containerd.image.name; the OCI tag alone would need --base-name.
        manifest["annotations"] = {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": _tag(ref)}
        index_blob = _canonical_json({"schemaVersion": 2, "mediaType": _OCI_INDEX, "manifests": [manifest]})
        partial = dest.with_name(dest.name + ".part")
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", _canonical_json({"imageLayoutVersion": "1.0.0"}))
            _add_bytes(tar, "index.json", index_blob)
            for blob in (manifest_blob, config_blob):
                _add_bytes(tar, f"blobs/sha256/{hashlib.sha256(blob).hexdigest()}", blob)
            info = tar.gettarinfo(str(layer_file), arcname=f"blobs/sha256/{sink.digest.removeprefix('sha256:')}")
            with open(layer_file, "rb") as layer_data:
                tar.addfile(info, layer_data)
        partial.replace(dest)
    return dest


def _write_layer(trees: Sequence[Path], sink: io.RawIOBase) -> None:
    entries: dict[str, Path] = {}
    for tree in trees:
        for dirpath, dirnames, filenames in os.walk(tree):
            rel_dir = os.path.relpath(dirpath, tree)
            if rel_dir in _RUNTIME_DIRS:
                dirnames.clear()
                continue
            for name in dirnames + filenames:  # symlinks to directories are listed, never followed
                entries[name if rel_dir == "." else f"{rel_dir}/{name}"] = Path(dirpath, name)
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=1 << 20) as tar:
        for rel in sorted(entries, key=lambda rel: rel.split("/")):  # parents before children
            info = tar.gettarinfo(str(entries[rel]), arcname=rel)  # a second link to an inode: a hard link
            if info is None:  # a socket
                continue
            info.uname = info.gname = ""  # numeric owners: names mean nothing in another root filesystem
            info.mtime = int(info.mtime)  # a float would cost a PAX header per file
            if info.isreg():
                with open(entries[rel], "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


class _HashingSink(io.RawIOBase):
    """A write-only stream that hashes and counts what it passes to ``out``: one pass over the layer."""

    def __init__(self, out: io.BufferedWriter) -> None:
        super().__init__()
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._out.write(data)

    @property
    def digest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


def import_image(archive: Path, address: Path | str, ref: str) -> None:
    """Load ``archive`` into the containerd listening on ``address``, unpacked, in namespace
    ``k8s.io`` (the one the CRI plugin serves to kubelet), and check that ``ref`` is there."""
    base = [str(system_binary("ctr", "containerd")), "--address", str(address), "--namespace", "k8s.io"]
    argv = [*base, "images", "import", "--no-unpack=false", "--platform", f"linux/{ARCH}", str(archive)]
    result = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=900, check=False)
    if result.returncode != 0:
        raise TestbedError(f"ctr could not import {archive.name} as {ref} (exit code {result.returncode})",
                           f"ctr said:\n{tail(result.stderr + result.stdout)}")
    listed = subprocess.run([*base, "images", "ls", "-q"], capture_output=True, text=True, timeout=60, check=False)
    if ref not in listed.stdout.split():
        raise TestbedError(f"{ref} is not among containerd's images after importing {archive.name}",
                           f"ctr said:\n{tail(result.stdout + result.stderr + listed.stderr)}")


def _canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{hashlib.sha256(blob).hexdigest()}", "size": len(blob)}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _tag(ref: str) -> str:
    name, _, tag = ref.rpartition(":")
    return tag if name and "/" not in tag else "latest"
