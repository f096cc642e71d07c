"""The image build cache under ``cache_dir()/images``: its lock, stage naming and pruning, the commands
a build runs, and the pip-installed stages.

Every stage is a directory or archive named ``<prefix><key>``, where the key hashes what the stage is
made of; a stage is written under a ``.part`` name and renamed into place only when complete, so a
name in the cache is always a finished stage, and outdated ones are pruned (a root filesystem is
hundreds of MiB).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir

Progress = Callable[[str], object]


def images_dir() -> Path:
    images = cache_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    return images


@contextlib.contextmanager
def locked(images: Path) -> Iterator[None]:
    """One builder at a time per cache (parallel test sessions would race on the same stages)."""
    with open(images / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def prune(images: Path, prefix: str, keep: str) -> None:
    """Delete a stage's outdated versions: a root filesystem is hundreds of MiB."""
    for old in images.glob(f"{prefix}*"):
        if old.name != keep:
            if old.is_dir():
                remove_tree(old)
            else:
                old.unlink()


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def run(argv: Sequence[str | Path], what: str, env: dict[str, str] | None = None, timeout: float = 1800) -> None:
    try:
        result = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                errors="replace", env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TestbedError(f"cannot {what}: no result after {timeout:.0f} s", f"command: {argv[0]}") from None
    if result.returncode != 0:
        raise TestbedError(f"cannot {what} (exit code {result.returncode})",
                           f"{' '.join(map(str, argv))}:\n{tail(result.stdout + result.stderr)}")


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def mib(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.0f} MiB"


# -- root filesystems, which a build may have left mounts in ------------------------------------------


def remove_tree(path: Path) -> None:
    """Delete a root filesystem, never through a mount point left in it."""
    if path.exists():
        unmount_under(path)
        shutil.rmtree(path)


def unmount_under(root: Path) -> None:
    for point in _mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    if left := _mounts_under(root):
        raise TestbedError(f"cannot unmount {', '.join(left)}", "unmount them by hand (umount -R)")


def _mounts_under(root: Path) -> list[str]:
    prefix = os.path.realpath(root)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


# -- stages of Python packages, by the host's pip -------------------------------------------------------


def pip_stage(images: Path, prefix: str, key: str, target_dir: str, requirements: Sequence[str], progress: Progress,
              *, with_deps: bool) -> Path:
    """``requirements`` installed by the host's pip into ``target_dir`` of a cached tree."""
    tree = images / f"{prefix}{key}"
    if tree.is_dir():
        return tree
    partial = tree.with_name(tree.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    progress(f"images: pip install {' '.join(requirements)} into {target_dir}")
    target = partial / target_dir.lstrip("/")
    run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *(() if with_deps else ("--no-deps",)), "--no-warn-script-location", "--target", target, *requirements],
        f"pip install {' '.join(requirements)}")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts with the host's interpreter path
    partial.rename(tree)
    prune(images, prefix, keep=tree.name)
    progress(f"images: pip install done in {time.monotonic() - started:.0f} s")
    return tree


def host_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise TestbedError(f"{distribution} is not installed", INSTALL_HINT) from None
