"""The images' first stage: Debian bookworm with Java 17, Python 3, the MIT Kerberos tools, tini and
the ``spark`` user, by debootstrap and then apt in a chroot (needs root).

The slow part of a cold image build (a few minutes), so it is cached as a directory keyed by the
suite, the packages and :func:`_bootstrap`'s source, and packed as it is into every image.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from spark_secrets.errors import TestbedError
# ``_run``, so that _bootstrap's source (the stage's cache key) reads as it did before the split.
from spark_secrets.testbed.imagecache import Progress, digest, prune, remove_tree, unmount_under
from spark_secrets.testbed.imagecache import run as _run
from spark_secrets.testbed.paths import system_binary

SUITE = "bookworm"
PACKAGES = ("openjdk-17-jre-headless", "python3", "procps", "krb5-user", "tini")
FALLBACK_MIRROR = "http://deb.debian.org/debian"

SPARK_UID = 185
WORK_DIR = "/opt/spark-work"

_DEBIAN_RELEASES = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid",
                    "oldoldstable", "oldstable", "stable", "testing", "unstable"}


def debian_stage(images: Path, progress: Progress) -> Path:
    root = images / f"debian-{digest(SUITE, *PACKAGES, inspect.getsource(_bootstrap))}"
    if root.is_dir():  # renamed into place only when complete
        return root
    if os.geteuid() != 0:
        raise TestbedError("building the Spark image needs root (debootstrap, chroot, mount)",
                           "run the test bed as root")
    partial = root.with_name(root.name + ".part")
    remove_tree(partial)
    try:
        _bootstrap(partial, progress)
    except BaseException:
        remove_tree(partial)
        raise
    partial.rename(root)
    prune(images, "debian-", keep=root.name)
    return root


def _bootstrap(root: Path, progress: Progress) -> None:
    sources = debian_sources()
    mirror = next((uri for uri, suite in sources if suite == SUITE), FALLBACK_MIRROR)
    started = time.monotonic()
    progress(f"images: debootstrap --variant=minbase {SUITE} from {mirror}")
    _run([system_binary("debootstrap", "debootstrap"), "--variant=minbase", SUITE, root, mirror],
         "debootstrap a Debian root filesystem")
    progress(f"images: debootstrap done in {time.monotonic() - started:.0f} s")

    started = time.monotonic()
    progress(f"images: apt-get install {' '.join(PACKAGES)} (in a chroot)")
    apt_list, resolv = root / "etc/apt/sources.list", root / "etc/resolv.conf"
    debootstrap_list = apt_list.read_bytes() if apt_list.is_file() else b""
    with _proc_mounted(root):
        try:
            apt_list.write_text("".join(f"deb {uri} {suite} main\n" for uri, suite in sources))
            resolv.unlink(missing_ok=True)
            shutil.copyfile("/etc/resolv.conf", resolv)
            _chroot(root, "apt-get", "update", "-q")
            _chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES)
            _chroot(root, "apt-get", "clean")
            _chroot(root, "groupadd", "--gid", str(SPARK_UID), "spark")
            _chroot(root, "useradd", "--uid", str(SPARK_UID), "--gid", str(SPARK_UID), "--no-create-home",
                    "--home-dir", WORK_DIR, "--shell", "/bin/bash", "spark")
        finally:
            apt_list.write_bytes(debootstrap_list)
            resolv.unlink(missing_ok=True)
            resolv.touch()  # the runtime mounts the pod's resolv.conf over it
    # debootstrap copies the build machine's host name and writes no hosts file; kubelet mounts both.
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log", "usr/share/doc", "usr/share/man",
                     "usr/share/info", "usr/share/locale"):
        for path in (root / leftover).glob("*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    work = root / WORK_DIR.lstrip("/")
    work.mkdir(parents=True)
    os.chown(work, SPARK_UID, SPARK_UID)
    work.chmod(0o1777)  # any runAsUser may write there, as into /tmp
    progress(f"images: apt-get install done in {time.monotonic() - started:.0f} s")


def debian_sources() -> list[tuple[str, str]]:
    """(URI, suite) pairs for bookworm from the host's own Debian apt sources (the mirrors this
    machine can reach), with the host's release replaced by bookworm; the public mirror if none."""
    found: list[tuple[str, str]] = []
    for uri, suite in _host_apt_sources():
        release, dash, pocket = suite.partition("-")
        if release in _DEBIAN_RELEASES and (SUITE + dash + pocket) not in (s for _, s in found):
            found.append((uri.rstrip("/"), SUITE + dash + pocket))
    return found if any(suite == SUITE for _, suite in found) else [(FALLBACK_MIRROR, SUITE)]


def _host_apt_sources() -> Iterator[tuple[str, str]]:
    """(URI, suite) of every enabled ``deb`` line or deb822 stanza of /etc/apt."""
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    yield words[1], words[2]
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields = {}
            for line in stanza.splitlines():
                name, colon, value = line.partition(":")
                if colon and not line.startswith(("#", " ", "\t")):
                    fields[name.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0].lower() != "no":
                for uri in fields.get("uris", []):
                    for suite in fields.get("suites", []):
                        yield uri, suite


def _chroot(root: Path, *argv: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive"}
    env.update({k: v for k, v in os.environ.items() if k.lower() in ("http_proxy", "https_proxy", "no_proxy")})
    _run([system_binary("chroot", "coreutils"), root, *argv], f"run {' '.join(argv[:2])} in the image", env=env)


@contextlib.contextmanager
def _proc_mounted(root: Path) -> Iterator[None]:
    """/proc inside ``root`` (Java's postinst needs it), unmounted again whatever happens."""
    try:
        _run([system_binary("mount", "mount"), "-t", "proc", "proc", root / "proc"], "mount /proc in the image")
        yield
    finally:
        unmount_under(root)
