"""Reuse where users may read no Secrets (the shared ``controller`` layout): a server is reused by the record of the
pod this machine created (its uid, which the API server assigns), never by labels or Secrets a user wrote. Attack
tests beside their controls; the API server is a fake (a transport of objects), the server's port a real socket."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from spark_secrets.connect.records import ServerRecords
from spark_secrets.errors import ConfigError, KubernetesForbidden
from submit_steps.connectserver import ConnectServers

import test_connect_reuse_unit
from test_connect_reuse_unit import CONF, FakeKube, _pod, _secrets

SHARED = {**CONF, "spark.secrets.layout": "controller"}
#: A real listening socket's port: the fixture of test_connect_reuse_unit.
port = test_connect_reuse_unit.port


class NoSecretsKube(FakeKube):
    """The controller layout: a user may create Secrets but read none."""

    def read_secret(self, namespace: str, name: str) -> dict[str, Any]:
        raise KubernetesForbidden(f"cannot get Secret {namespace}/{name}: forbidden")


def _started_here(records: ServerRecords, name: str, port: int, token: str = "made-here") -> dict[str, Any]:
    pod = _pod(name, "2026-12-06T08:00:00Z", "alice-tokens", "alice-bearer", port)
    pod["metadata"]["uid"] = str(uuid.uuid4())
    records.save("shared", pod["metadata"]["uid"], name, token)
    return pod


def test_her_server_started_here_is_reused_without_reading_a_secret(tmp_path: Path, port: int) -> None:
    records = ServerRecords(tmp_path / "state")
    own = _started_here(records, "connect-alice-1-driver", port)
    servers = ConnectServers(SHARED, NoSecretsKube([own], {}), lambda _: None, records=records)  # type: ignore[arg-type]
    server = servers.find("alice")
    assert server is not None and server.token == "made-here" and server.url == f"sc://127.0.0.1:{port}"
    # Only its user reads the records.
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()} == {0o600}
    assert "made-here" not in repr(records) and "made-here" not in repr(server)


def test_a_pod_planted_with_her_label_is_never_sent_her_token(tmp_path: Path, port: int) -> None:
    """Attack: bob's pod labelled as alice's server, newer than hers, in the shared namespace. It is not hers by uid,
    and its Secrets cannot be read to check: passed over for her own (the control), or nothing when alone."""
    records = ServerRecords(tmp_path / "state")
    own = _started_here(records, "connect-alice-1-driver", port)
    planted = _pod("planted-driver", "2026-12-06T09:00:00Z", "bob-tokens", "bob-bearer", port)
    planted["metadata"]["uid"] = str(uuid.uuid4())
    said: list[str] = []
    servers = ConnectServers(SHARED, NoSecretsKube([planted, own], {}), said.append, records=records)  # type: ignore[arg-type]
    server = servers.find("alice")
    assert server is not None and server.pod == "connect-alice-1-driver"
    assert any("planted-driver: this machine did not start it" in line for line in said), said
    alone = ConnectServers(SHARED, NoSecretsKube([planted], {}), said.append, records=records)  # type: ignore[arg-type]
    assert alone.find("alice") is None


def test_a_record_names_its_pod_and_records_of_gone_pods_are_removed(tmp_path: Path, port: int) -> None:
    records = ServerRecords(tmp_path / "state")
    own = _started_here(records, "connect-alice-1-driver", port)
    uid = own["metadata"]["uid"]
    assert records.token("shared", uid, "another-name") is None  # the same uid under another name: not this record
    assert records.token("shared", "../../etc/passwd", "x") is None  # a uid is no path
    gone = _started_here(records, "connect-alice-0-driver", port)
    ConnectServers(SHARED, NoSecretsKube([own], {}), lambda _: None, records=records).find("alice")  # type: ignore[arg-type]
    assert records.token("shared", gone["metadata"]["uid"], "connect-alice-0-driver") is None
    assert records.token("shared", uid, "connect-alice-1-driver") == "made-here"


def test_in_the_namespace_per_user_layout_a_server_not_started_here_is_still_found_through_the_api(
        tmp_path: Path, port: int) -> None:
    """The control of the records: with no record, reading the Secrets (where the user may) still finds her server."""
    own = _pod("connect-alice-1-driver", "2026-12-06T08:00:00Z", "alice-tokens", "alice-bearer", port)
    servers = ConnectServers(CONF, FakeKube([own], _secrets()), lambda _: None,  # type: ignore[arg-type]
                             records=ServerRecords(tmp_path / "state"))
    server = servers.find("alice")
    assert server is not None and server.token == "alice-bearer-token"


@pytest.mark.parametrize("conf, message", [
    ({"spark.secrets.layout": "controller", "spark.secrets.connect.address": "service"}, "may replace the Service"),
    ({"spark.secrets.layout": "precreated"}, "no Secret for its bearer token"),
])
def test_what_a_shared_layout_cannot_give_is_refused_before_contacting_anything(conf: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConnectServers({**CONF, **conf}, FakeKube([], {}), lambda _: None)  # type: ignore[arg-type]


def test_in_the_controller_layout_auto_is_the_pod_ip(tmp_path: Path) -> None:
    servers = ConnectServers({**SHARED, "spark.secrets.connect.address": "auto"}, FakeKube([], {}),  # type: ignore[arg-type]
                             lambda _: None, records=ServerRecords(tmp_path))
    assert servers.how == "pod"
