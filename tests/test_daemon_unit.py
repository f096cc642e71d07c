"""The test bed's port picks: below the ephemeral range, each once, never one a server holds."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from spark_secrets.errors import TestbedError
from spark_secrets.testbed import daemon


def test_ports_come_from_below_the_ephemeral_range_and_never_twice() -> None:
    low = daemon._ephemeral_low()
    ports = [daemon.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(low - daemon._SPAN <= port < low for port in ports)
    # control: the kernel's own pick (bind to 0) lands in the range this avoids
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert sock.getsockname()[1] >= low


def test_a_port_a_server_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        gap = tmp_path / "range"
        gap.write_text(f"{taken + 2}\t60999\n")
        monkeypatch.setattr(daemon, "_ephemeral_low", lambda: daemon._read_low(gap))
        monkeypatch.setattr(daemon, "_SPAN", 2)
        monkeypatch.setattr(daemon, "_HANDED", set())
        assert not daemon._bindable(taken)
        picked = daemon.free_port()
        assert picked == taken + 1  # the only one of the two that is free
        with pytest.raises(TestbedError, match=rf"^no free TCP port between {taken} and {taken + 2}: stop"):
            daemon.free_port()  # the other is listened on, this one was handed out


def test_the_range_falls_back_when_the_kernel_does_not_say(tmp_path: Path) -> None:
    assert daemon._read_low(tmp_path / "missing") == 32768
    (tmp_path / "odd").write_text("x y")
    assert daemon._read_low(tmp_path / "odd") == 32768
    (tmp_path / "set").write_text("40000 50000")
    assert daemon._read_low(tmp_path / "set") == 40000
