"""Container images for the test bed's Kubernetes node, built with no registry and no Docker engine.

Three images, each a single-layer OCI archive that ``ctr images import`` loads into containerd:

* the sandbox ("pause") image: a static C program that sleeps until SIGTERM;
* a Spark image: Debian bookworm (debootstrap, then apt in a chroot) with Java 17, Python 3, the MIT
  Kerberos tools and tini; the host's pyspark; this project's plugin jar and Python packages; and
  ``docker/spark-entrypoint.sh`` as the entry point Spark's Kubernetes backend expects (also with
  Spark 3.5 in place of pyspark, built on first use);
* the renew service's image.

Builds are cached under ``cache_dir()/images`` in stages keyed by what each is made of. The Debian
root filesystem (the slow part) and the pyspark tree are kept as directories, so a change to the
project's own files only re-packs the final archive. Building the Debian stage needs root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from spark_secrets.errors import TestbedError
from spark_secrets.plugin.jar import jar_path
from spark_secrets.testbed.paths import INSTALL_HINT, cache_dir, system_binary

PAUSE_IMAGE = "localhost/spark-secrets/pause:1"
#: The Spark image's repository; its tag is ``<pyspark version>-<content hash>``.
SPARK_REPOSITORY = "localhost/spark-secrets/spark"

SUITE = "bookworm"
PACKAGES = ("openjdk-17-jre-headless", "python3", "procps", "krb5-user", "tini")
FALLBACK_MIRROR = "http://deb.debian.org/debian"

SPARK_UID = 185
PYTHON_DIR = "/opt/spark-python"
SPARK_HOME = f"{PYTHON_DIR}/pyspark"
PLUGIN_JAR = "/opt/spark-secrets/spark-secrets-plugin.jar"
ENTRYPOINT = "/opt/entrypoint.sh"
WORK_DIR = "/opt/spark-work"

Progress = Callable[[str], object]

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
_JAVA_HOME = f"/usr/lib/jvm/java-17-openjdk-{_ARCH}"
_PROJECT = Path(__file__).resolve().parents[2]
_PROJECT_PACKAGES = ("spark_secrets", "submit_steps")
_DEBIAN_RELEASES = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid",
                    "oldoldstable", "oldstable", "stable", "testing", "unstable"}
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
#: Top-level directories whose content belongs to the running container, never to an image.
_RUNTIME_DIRS = ("dev", "proc", "sys")

_PAUSE_C = r"""/* A pod's sandbox process: holds the pod's namespaces and sleeps until told to stop. */
#include <signal.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = stop;  /* as PID 1, a signal without a handler is ignored */
    sigaction(SIGTERM, &action, 0);
    sigaction(SIGINT, &action, 0);
    for (;;)
        pause();
}
"""


# -- the two images -------------------------------------------------------------------------------


def pause_archive() -> Path:
    """The archive of :data:`PAUSE_IMAGE` (entry point ``/pause``), compiled once and cached."""
    images = _images_dir()
    archive = images / f"pause-{_digest(_PAUSE_C, PAUSE_IMAGE, inspect.getsource(_write_layer))}.tar"
    if archive.is_file():
        return archive
    gcc = system_binary("gcc", "gcc")
    with _locked(images), tempfile.TemporaryDirectory(dir=images, prefix=".pause-") as tmp:
        if archive.is_file():
            return archive
        source, root = Path(tmp) / "pause.c", Path(tmp) / "rootfs"
        source.write_text(_PAUSE_C)
        root.mkdir()
        _run([gcc, "-static", "-Os", "-s", "-o", root / "pause", source], "compile the pause program")
        (root / "pause").chmod(0o755)
        _prune(images, "pause-", keep=archive.name)
        return oci_archive(root, archive, PAUSE_IMAGE, {"Entrypoint": ["/pause"]})


def spark_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The Spark image's reference and archive: Debian + Java 17 + the host's pyspark, pandas, pyarrow and HdfsCLI
    (what a job's Python code uses) + this project.

    The first build takes a few minutes (debootstrap, apt, pip); later calls reuse the stages whose
    inputs did not change. The reference's tag changes with the content, so a node never runs a
    stale image under an old name.
    """
    version = re.sub(r"[^\w.-]", "_", _host_version("pyspark"))  # a tag allows no "+"
    return _image("spark-", lambda key: f"{SPARK_REPOSITORY}:{version}-{key[:12]}", _pyspark_stage, _spark_config(),
                  progress)


def spark35_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The same Spark image with Spark 3.5 (the distribution ``install.sh`` keeps beside pyspark 4 in
    the cache) in place of the host's pyspark: for the plugin's compatibility test in pods."""
    version = _spark35_version()
    return _image("spark35-", lambda key: f"{SPARK_REPOSITORY}:{version}-{key[:12]}", _spark35_stage, _spark_config(),
                  progress)


#: The renew service's image (``docker/renewer.Dockerfile``'s recipe on the same Debian stage).
RENEWER_REPOSITORY = "localhost/spark-secrets/renewer"
RENEWER_DEPS_DIR = "/opt/renewer-deps"
RENEWER_UID = 65532


def renewer_image_archive(progress: Progress = print) -> tuple[str, Path]:
    """The renew service's image: the Debian stage (Python 3, MIT Kerberos libraries), this project's
    runtime dependencies (built by the host's pip for the same CPython minor version) and its
    packages; entry point ``python3 -m spark_secrets renewer``, a non-root user, ``HOME=/tmp``."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "PYTHONPATH": f"{PYTHON_DIR}:{RENEWER_DEPS_DIR}", "HOME": "/tmp", "LANG": "C.UTF-8"}
    config = {"Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": "/tmp",
              "Entrypoint": ["python3", "-m", "spark_secrets", "renewer"], "User": f"{RENEWER_UID}:{RENEWER_UID}"}
    return _image("renewer-image-", lambda key: f"{RENEWER_REPOSITORY}:{key[:12]}", _renewer_deps_stage, config,
                  progress)


def _image(prefix: str, ref_for: Callable[[str], str], stage: Callable[[Path, Progress], Path],
           config: dict[str, Any], progress: Progress) -> tuple[str, Path]:
    """The Debian stage, one image-specific ``stage`` and this project's files, packed once per content."""
    images = _images_dir()
    with _locked(images):
        debian = _debian_stage(images, progress)
        middle = stage(images, progress)
        files = _project_files()
        digest = hashlib.sha256(Path(__file__).read_bytes())
        digest.update(f"\0{debian.name}\0{middle.name}".encode())
        for target, source in files:
            digest.update(f"\0{target}\0".encode() + source.read_bytes())
        key = digest.hexdigest()[:16]
        ref, archive = ref_for(key), images / f"{prefix}{key}.tar"
        if archive.is_file():
            return ref, archive
        started = time.monotonic()
        progress(f"images: packing {ref}")
        with tempfile.TemporaryDirectory(dir=images, prefix=".overlay-") as tmp:
            overlay = _overlay(Path(tmp), files)
            oci_archive([debian, middle, overlay], archive, ref, config)
        _prune(images, prefix, keep=archive.name)
        progress(f"images: packed {archive.name} ({_mib(archive)}) in {time.monotonic() - started:.1f} s")
        return ref, archive


def _renewer_deps_stage(images: Path, progress: Progress) -> Path:
    """The project's ``install_requires`` at the host's installed versions, in one directory."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(_PROJECT / "setup.cfg")
    names = [re.split(r"[<>=!~ ;\[]", line.strip())[0] for line in cfg["options"]["install_requires"].splitlines()
             if line.strip()]
    pins = [f"{name}=={_host_version(name)}" for name in names]
    return _pip_stage(images, "renewer-deps-", _digest(sys.version.split()[0][:4], *pins), RENEWER_DEPS_DIR, pins,
                      progress, with_deps=True)


def _spark_config() -> dict[str, Any]:
    env = {
        "PATH": f"{SPARK_HOME}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SPARK_HOME": SPARK_HOME,
        "JAVA_HOME": _JAVA_HOME,
        "PYTHONPATH": PYTHON_DIR,
        "PYSPARK_PYTHON": "python3",
        "HOME": WORK_DIR,  # not every runtime derives it from /etc/passwd
        "LANG": "C.UTF-8",
    }
    return {"Env": [f"{name}={value}" for name, value in env.items()], "Entrypoint": [ENTRYPOINT],
            "WorkingDir": WORK_DIR, "User": str(SPARK_UID)}


# -- stage 1: Debian with Java, Python, Kerberos tools and the spark user ---------------------------


def _debian_stage(images: Path, progress: Progress) -> Path:
    root = images / f"debian-{_digest(SUITE, *PACKAGES, inspect.getsource(_bootstrap))}"
    if root.is_dir():  # renamed into place only when complete
        return root
    if os.geteuid() != 0:
        raise TestbedError("building the Spark image needs root (debootstrap, chroot, mount)",
                           "run the test bed as root")
    partial = root.with_name(root.name + ".part")
    _remove_tree(partial)
    try:
        _bootstrap(partial, progress)
    except BaseException:
        _remove_tree(partial)
        raise
    partial.rename(root)
    _prune(images, "debian-", keep=root.name)
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
        _unmount_under(root)


def _unmount_under(root: Path) -> None:
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


def _remove_tree(path: Path) -> None:
    """Delete a root filesystem, never through a mount point left in it."""
    if path.exists():
        _unmount_under(path)
        shutil.rmtree(path)


# -- stage 2: pyspark and py4j at the host's versions ----------------------------------------------


#: What a job's Python code uses besides pyspark: the ``runtime`` extra (HdfsCLI, pyarrow), pandas for
#: pandas UDFs and pg8000 (a pure-Python PostgreSQL client) for jobs using leased database credentials,
#: at the host's versions.
JOB_PACKAGES = ("pandas", "pyarrow", "hdfs", "requests", "pg8000")


def _pyspark_stage(images: Path, progress: Progress) -> Path:
    spark, py4j = _host_version("pyspark"), _host_version("py4j")
    pins = [f"{name}=={_host_version(name)}" for name in JOB_PACKAGES]
    # The host's pip and its wheel cache: pyspark is an sdist only, built once already for the host.
    # The job packages bring their dependencies (numpy, ...); pyspark's only one is py4j, pinned here.
    return _pip_stage(images, "pyspark-", _digest(f"{spark}-py4j-{py4j}", sys.version.split()[0][:4], *pins),
                      PYTHON_DIR, [f"pyspark=={spark}", f"py4j=={py4j}", *pins], progress, with_deps=True)


def _spark35_version() -> str:
    stamp = cache_dir() / "spark-3.5" / "stamp"
    if not stamp.is_file():
        raise TestbedError(f"no Spark 3.5 in {stamp.parent}", INSTALL_HINT)
    return stamp.read_text().strip()


def _spark35_stage(images: Path, progress: Progress) -> Path:
    """Spark 3.5's pyspark tree (its own ``python/lib`` holds the py4j Spark puts on the path)."""
    source = cache_dir() / "spark-3.5" / "pyspark"
    tree = images / f"pyspark35-{_spark35_version()}"
    if tree.is_dir():
        return tree
    partial = tree.with_name(tree.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    progress(f"images: copying Spark {_spark35_version()} from {source}")
    shutil.copytree(source, partial / SPARK_HOME.lstrip("/"), symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "work"))
    partial.rename(tree)
    _prune(images, "pyspark35-", keep=tree.name)
    return tree


def _pip_stage(images: Path, prefix: str, key: str, target_dir: str, requirements: Sequence[str], progress: Progress,
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
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          *(() if with_deps else ("--no-deps",)), "--no-warn-script-location", "--target", target, *requirements],
         f"pip install {' '.join(requirements)}")
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts with the host's interpreter path
    partial.rename(tree)
    _prune(images, prefix, keep=tree.name)
    progress(f"images: pip install done in {time.monotonic() - started:.0f} s")
    return tree


def _host_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise TestbedError(f"{distribution} is not installed", INSTALL_HINT) from None


# -- stage 3: this project's files ----------------------------------------------------------------


def _project_files() -> list[tuple[str, Path]]:
    """(path in the image, path here) of what the image takes from this checkout."""
    entrypoint = _PROJECT / "docker" / "spark-entrypoint.sh"
    if not entrypoint.is_file():
        raise TestbedError(f"{entrypoint} not found", "build the Spark image from a source checkout")
    files = [(ENTRYPOINT, entrypoint), (PLUGIN_JAR, jar_path())]
    for package in _PROJECT_PACKAGES:
        for path in sorted((_PROJECT / package).rglob("*")):
            rel = path.relative_to(_PROJECT)
            if path.is_file() and "__pycache__" not in rel.parts and rel.parts[:2] != ("spark_secrets", "testbed"):
                files.append((f"{PYTHON_DIR}/{rel.as_posix()}", path))
    return files


def _overlay(root: Path, files: Sequence[tuple[str, Path]]) -> Path:
    for target, source in files:
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        dest.chmod(0o755 if target == ENTRYPOINT or source.stat().st_mode & 0o111 else 0o644)
    for dirpath, _, _ in os.walk(root):
        Path(dirpath).chmod(0o755)
    return root


# -- OCI archives and containerd ------------------------------------------------------------------


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
        image = {"architecture": _ARCH, "os": "linux", "config": config,
                 "rootfs": {"type": "layers", "diff_ids": [sink.digest]}}
        config_blob = _canonical_json(image)
        manifest_blob = _canonical_json({"schemaVersion": 2, "mediaType": _OCI_MANIFEST,
                                         "config": _descriptor(_OCI_CONFIG, config_blob), "layers": [layer]})
        manifest = _descriptor(_OCI_MANIFEST, manifest_blob)
        manifest["platform"] = {"architecture": _ARCH, "os": "linux"}
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
    argv = [*base, "images", "import", "--no-unpack=false", "--platform", f"linux/{_ARCH}", str(archive)]
    result = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=900, check=False)
    if result.returncode != 0:
        raise TestbedError(f"ctr could not import {archive.name} as {ref} (exit code {result.returncode})",
                           f"ctr said:\n{_tail(result.stderr + result.stdout)}")
    listed = subprocess.run([*base, "images", "ls", "-q"], capture_output=True, text=True, timeout=60, check=False)
    if ref not in listed.stdout.split():
        raise TestbedError(f"{ref} is not among containerd's images after importing {archive.name}",
                           f"ctr said:\n{_tail(result.stdout + result.stderr + listed.stderr)}")


# -- helpers --------------------------------------------------------------------------------------


def _images_dir() -> Path:
    images = cache_dir() / "images"
    images.mkdir(parents=True, exist_ok=True)
    return images


@contextlib.contextmanager
def _locked(images: Path) -> Iterator[None]:
    """One builder at a time per cache (parallel test sessions would race on the same stages)."""
    with open(images / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _prune(images: Path, prefix: str, keep: str) -> None:
    """Delete a stage's outdated versions: a root filesystem is hundreds of MiB."""
    for old in images.glob(f"{prefix}*"):
        if old.name != keep:
            if old.is_dir():
                _remove_tree(old)
            else:
                old.unlink()


def _run(argv: Sequence[str | Path], what: str, env: dict[str, str] | None = None, timeout: float = 1800) -> None:
    try:
        result = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                errors="replace", env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TestbedError(f"cannot {what}: no result after {timeout:.0f} s", f"command: {argv[0]}") from None
    if result.returncode != 0:
        raise TestbedError(f"cannot {what} (exit code {result.returncode})",
                           f"{' '.join(map(str, argv))}:\n{_tail(result.stdout + result.stderr)}")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


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


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _mib(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.0f} MiB"
