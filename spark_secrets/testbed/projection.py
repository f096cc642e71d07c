"""A Secret volume as kubelet writes it, for pods that the test bed has no kubelet to run.

kubelet's atomic writer puts each version of the Secret's data in a new hidden, timestamped
directory, points ``..data_tmp`` at it, renames that over ``..data`` (one atomic step), and exposes
each key as a symlink ``<key> -> ..data/<key>``; then it removes the old directory. A reader that
opens ``<key>`` by path sees either the old or the new content, never a mix.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path


class SecretVolume:
    """A directory laid out like a mounted Secret volume; :meth:`update` swaps its content atomically."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.updates = 0

    def path(self, key: str) -> Path:
        return self.dir / key

    def update(self, data: Mapping[str, bytes], mode: int = 0o644) -> None:
        version = self.dir / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9:09d}"
        version.mkdir()
        for key, value in data.items():
            (version / key).write_bytes(value)
            os.chmod(version / key, mode)
        tmp = self.dir / "..data_tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(version.name)
        old = os.readlink(self.dir / "..data") if (self.dir / "..data").is_symlink() else None
        os.replace(tmp, self.dir / "..data")
        for key in data:
            link = self.dir / key
            if not link.is_symlink():
                link.symlink_to(f"..data/{key}")
        for link in self.dir.iterdir():  # keys no longer in the Secret disappear, as kubelet removes them
            if not link.name.startswith("..") and link.name not in data:
                link.unlink()
        if old is not None:
            shutil.rmtree(self.dir / old, ignore_errors=True)
        self.updates += 1
