"""Start, watch and stop one test-bed server process, its output kept in a log file."""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import TestbedError

_PR_SET_PDEATHSIG = 1


#: Ports this process handed out, so two servers of one bed never get the same one.
_HANDED: set[int] = set()
#: How many ports below the kernel's ephemeral range :func:`free_port` picks from.
_SPAN = 12000


def _read_low(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(path.read_text().split()[0])
    return 32768


def _ephemeral_low() -> int:
    """The first port the kernel gives outgoing connections (``net.ipv4.ip_local_port_range``)."""
    return _read_low(Path("/proc/sys/net/ipv4/ip_local_port_range"))


def _bindable(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A TCP port that nothing listens on right now, below the kernel's ephemeral range.

    Why not ``bind(0)``: that picks from the ephemeral range, where every outgoing connection takes its local
    port, so between the pick and the server's own bind some client's ``connect`` can take it (stop 43: a
    DataNode's IPC port, "Address already in use"). Below the range only servers bind, and each port is handed
    out once per process; the pick is random so two processes' beds rarely meet.
    """
    high = _ephemeral_low()
    low = max(1024, high - _SPAN)
    for _ in range(4 * _SPAN):
        port = secrets.randbelow(high - low) + low
        if port not in _HANDED and _bindable(port):
            _HANDED.add(port)
            return port
    raise TestbedError(f"no free TCP port between {low} and {high}",
                       "stop the servers that hold them, or widen net.ipv4.ip_local_port_range's gap")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so no server outlives a killed test run."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setsid()


class Daemon:
    """One server process of the test bed."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log_dir / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Daemon({self.name!r}, {state}, log={str(self.log)!r})"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            out.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise TestbedError(f"cannot start {self.name} ({self.argv[0]}): {exc.strerror}",
                                   "run tests/testbed/install.sh") from None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail with the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise TestbedError(f"{self.name} exited while starting (code {self.exit_code()})",
                                   f"see {self.log}:\n{self.tail()}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.2)
        raise TestbedError(f"{self.name} not {what} after {timeout:.0f} s", f"see {self.log}:\n{self.tail()}")

    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def pause(self, seconds: float) -> None:
        """Freeze the process group (SIGSTOP) for ``seconds`` and let it go on (SIGCONT), as a stalled host or
        a long garbage-collection pause would: its sockets stay open, nothing answers."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise TestbedError(f"{self.name} is not running", "start it before pausing it")
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Stop at once, as a crash would (SIGKILL)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
