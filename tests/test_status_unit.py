"""`spark-secrets status` from a token Secret's metadata, its namespace's pods and its Events (no
server): what it shows, and that no token password reaches it (the status on the test bed, across a
renewal and a re-issue, is in tests/test_renewer.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json

from test_renewal_unit import DAY, ISSUED, PASSWORD, _secret

from spark_secrets.check.status import job_status
from spark_secrets.secrets.tokensecret import (ANNOTATION_ACTED_BY, ANNOTATION_LAST_ACTION, ANNOTATION_NEXT_ACTION, LABEL_APP,
                                       LABEL_OWNER, rfc3339, schedule_annotations)


def _metadata(notes: dict[str, str | None]) -> dict[str, object]:
    return {"metadata": {"namespace": "alice", "name": "etl-hadoop-tokens", "labels": {LABEL_APP: "etl",
                                                                                       LABEL_OWNER: "alice"},
                         "annotations": {k: v for k, v in notes.items() if v is not None}}}


def _pod(name: str, role: str, phase: str, secret: str, projected: bool = False) -> dict[str, object]:
    volume = ({"name": "t", "projected": {"sources": [{"secret": {"name": secret}}]}} if projected
              else {"name": "t", "secret": {"secretName": secret}})
    return {"metadata": {"name": name, "labels": {"spark-role": role}}, "spec": {"volumes": [volume]},
            "status": {"phase": phase}}


def test_a_renewed_job_with_its_pods_and_events() -> None:
    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    notes = {**schedule_annotations(full.credentials, ISSUED + DAY, renewed_at_ms=ISSUED + 1000),
             ANNOTATION_LAST_ACTION: "renewed", ANNOTATION_ACTED_BY: "spark-renewer/host@EXAMPLE.TEST",
             ANNOTATION_NEXT_ACTION: f"renew {rfc3339(ISSUED + DAY * 3 // 4)}"}
    pods = [_pod("etl-driver", "driver", "Running", "etl-hadoop-tokens"),
            _pod("etl-exec-1", "executor", "Pending", "etl-hadoop-tokens", projected=True),
            _pod("other-driver", "driver", "Running", "other-hadoop-tokens")]
    events = [{"lastTimestamp": f"2026-12-01T0{i}:00:00Z", "type": "Warning", "reason": "RenewFailed",
               "message": f"try {i}", "count": i} for i in range(1, 8)]
    status = job_status(_metadata(notes), pods, events)
    assert (status.app, status.owner, status.last_action, status.acted_by) == (
        "etl", "alice", "renewed", "spark-renewer/host@EXAMPLE.TEST")
    assert [(p.name, p.role, p.phase) for p in status.pods] == [("etl-driver", "driver", "Running"),
                                                                ("etl-exec-1", "executor", "Pending")]
    assert [e.message for e in status.events] == ["try 3", "try 4", "try 5", "try 6", "try 7"]  # the newest 5
    (token,) = status.tokens
    assert (token.kind, token.service, token.owner, token.renewer, token.sequence) == (
        "WEBHDFS delegation", "ha-webhdfs:ns1", "alice", "spark-renewer", 5)
    now = dt.datetime.fromtimestamp((ISSUED + DAY - 3_600_000) / 1000, tz=dt.timezone.utc)
    lines = status.lines(now)
    assert lines[0] == "alice/etl-hadoop-tokens  app etl  owner alice"
    assert lines[1] == (f"  expires {rfc3339(ISSUED + DAY)} (in 1 h 0 min); max date {rfc3339(ISSUED + 7 * DAY)}; "
                        f"next renew at {rfc3339(ISSUED + DAY * 3 // 4)}")
    assert lines[2] == f"  last renewed {rfc3339(ISSUED + 1000)} by spark-renewer/host@EXAMPLE.TEST"
    assert "  pods: etl-driver (driver, Running), etl-exec-1 (executor, Pending)" in lines
    text = "\n".join(lines) + json.dumps(status.as_dict())
    for form in (PASSWORD.hex(), base64.b64encode(PASSWORD).decode(), base64.urlsafe_b64encode(PASSWORD).decode()):
        assert form.rstrip("=") not in text


def test_a_job_the_service_has_not_renewed_yet() -> None:
    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    notes = {**schedule_annotations(full.credentials, ISSUED + DAY, estimated=True),
             "spark-secrets.io/principal": "alice@EXAMPLE.TEST"}
    lines = job_status(_metadata(notes), [], []).lines()
    assert "estimated at submission" in lines[1] and "renewal not yet planned" in lines[1]
    assert lines[2] == "  not renewed yet (obtained by alice@EXAMPLE.TEST)"
    assert "  pods: none mount it" in lines


def test_a_kafka_token_is_shown_by_its_id_and_the_max_date_is_the_brokers() -> None:
    """A Kafka token's handle is only its id: no owner or dates to show but the Secret's own (the service writes
    the max date the brokers gave); its HMAC never reaches the output."""
    from spark_secrets.hadoop.token import Token

    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    hmac = base64.b64encode(b"kafka-hmac-bytes")
    full.credentials.add(Token(b"kafka-token-id", hmac, "KAFKA_DELEGATION_TOKEN", "kafka.server.delegation.token.c1"))
    notes = schedule_annotations(full.credentials, ISSUED + DAY, renewed_at_ms=ISSUED, max_date_ms=ISSUED + 3 * DAY)
    status = job_status(_metadata(notes), [], [])
    assert status.max_date == rfc3339(ISSUED + 3 * DAY)
    kafka = [t for t in status.tokens if t.kind == "KAFKA_DELEGATION_TOKEN"]
    assert [(t.owner, t.sequence, t.max_date) for t in kafka] == [(None, None, None)]
    lines = status.lines()
    assert f"  token KAFKA_DELEGATION_TOKEN kafka.server.delegation.token.c1: id {kafka[0].id} (owner and dates as " \
           "its servers say)" in lines
    assert len(status.tokens) == 2  # and the HDFS token beside it, as before
    text = "\n".join(lines) + json.dumps(status.as_dict())
    assert hmac.decode() not in text and b"kafka-hmac-bytes".hex() not in text


def test_a_connect_server_s_secret_shows_the_server_its_age_and_idle_time() -> None:
    from spark_secrets.connect.names import ANNOTATION_IDLE_TIMEOUT, ANNOTATION_LAST_ACTIVITY, LABEL_CONNECT_USER

    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    notes = schedule_annotations(full.credentials, ISSUED + DAY, renewed_at_ms=ISSUED + 1000)
    server = _pod("connect-alice-1a2b3c-driver", "driver", "Running", "etl-hadoop-tokens")
    server["metadata"] = {"name": "connect-alice-1a2b3c-driver", "creationTimestamp": rfc3339(ISSUED),
                          "labels": {"spark-role": "driver", LABEL_CONNECT_USER: "alice"},
                          "annotations": {ANNOTATION_IDLE_TIMEOUT: "1800", ANNOTATION_LAST_ACTIVITY: rfc3339(ISSUED + 600_000)}}
    plain = job_status(_metadata(notes), [_pod("etl-driver", "driver", "Running", "etl-hadoop-tokens")], [])
    assert plain.connect is None  # the control: an ordinary job's driver
    status = job_status(_metadata(notes), [server], [])
    assert status.connect is not None and status.connect.user == "alice"
    now = dt.datetime.fromtimestamp((ISSUED + 900_000) / 1000, tz=dt.timezone.utc)
    assert (f"  Connect server of alice: pod connect-alice-1a2b3c-driver, up 15 min 0 s, last active "
            f"{rfc3339(ISSUED + 600_000)} (5 min 0 s idle), stops after 1800 s idle") in status.lines(now)
    assert status.as_dict()["connect"]["idle_timeout_s"] == 1800
