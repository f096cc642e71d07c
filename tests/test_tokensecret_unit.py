"""The token Secret's format: what the writer puts in the annotations is what the reader schedules
and cancels with, and no password is ever in the metadata."""

from __future__ import annotations

import base64

from spark_secrets.renew.metrics import Metrics, registry_for
from spark_secrets.secrets.tokensecret import (ANNOTATION_TOKENS, TokenSecret, release_patch, schedule_annotations,
                                       token_handles)
from prometheus_client.exposition import generate_latest

from test_renewal_unit import DAY, ISSUED, PASSWORD, _secret


def _metadata_only(ts: TokenSecret, notes: dict[str, str | None]) -> dict[str, object]:
    annotations = {"spark-secrets.io/filesystems": "hdfs://ns1",
                   **{k: v for k, v in notes.items() if v is not None}}
    return {"metadata": {"namespace": ts.namespace, "name": ts.name, "uid": "u", "resourceVersion": "9",
                         "annotations": annotations}}


def test_the_annotations_name_the_tokens_without_their_passwords() -> None:
    full = _secret(ISSUED + DAY)
    assert full.credentials is not None
    notes = schedule_annotations(full.credentials, ISSUED + DAY, renewed_at_ms=ISSUED)
    text = str(notes)
    assert PASSWORD.hex() not in text and base64.urlsafe_b64encode(PASSWORD).decode().rstrip("=") not in text
    ts = TokenSecret.from_metadata(_metadata_only(full, notes))
    assert not ts.has_data and "metadata only" in repr(ts)
    (token,) = ts.cancel_tokens()  # one distinct token: the file holds it for RPC and WebHDFS
    assert token.password == b"" and token.identifier == full.distinct_tokens()[0].identifier
    assert token.kind == "WEBHDFS delegation"
    # Scheduling from metadata alone sees what the whole object gives.
    assert (ts.max_date_ms, ts.expiry_ms, ts.identifiers[0].owner.split("@")[0], ts.issue_date_ms) == \
        (full.max_date_ms, ISSUED + DAY, "alice", full.issue_date_ms)
    assert ts.expiry_known and notes[ANNOTATION_TOKENS] == token_handles(full.credentials)


def test_a_secret_without_schedule_annotations_is_due_at_first_sight() -> None:
    ts = TokenSecret.from_metadata({"metadata": {"namespace": "alice", "name": "x", "resourceVersion": "1"}})
    assert not ts.expiry_known and ts.cancel_tokens() == [] and ts.key == "hadoop-tokens"


def test_release_removes_the_tokens_and_everything_the_service_schedules_with() -> None:
    patch = release_patch("hadoop-tokens", "5")
    assert patch["data"] == {"hadoop-tokens": None, "hadoop-tokens.outgoing": None}
    assert patch["metadata"]["resourceVersion"] == "5"
    assert set(patch["metadata"]["annotations"]) >= {"spark-secrets.io/expiry", ANNOTATION_TOKENS}
    assert all(v is None for v in patch["metadata"]["annotations"].values())


def test_metrics_are_exposed_by_prometheus_client_from_plain_counters() -> None:
    metrics = Metrics(renewals=3, api_writes=4, tracked=2, ready=True, nearest_expiry_ms=None)
    text = generate_latest(registry_for(metrics, clock=lambda: 0.0)).decode()
    assert "spark_secrets_renewals_total 3.0" in text and "spark_secrets_api_writes_total 4.0" in text
    assert "spark_secrets_tokens_tracked 2.0" in text and "spark_secrets_ready 1.0" in text
    assert "# TYPE spark_secrets_renewals_total counter" in text
    assert "spark_secrets_seconds_until_nearest_expiry NaN" in text


def test_a_kafka_only_secret_is_renewed_at_first_sight_and_its_max_date_is_the_brokers() -> None:
    """A Kafka token's identifier is only its id: until its brokers were asked, its max date is unknown, which
    means renew (and learn it), never re-issue; once they answered, the re-issue window opens by their word."""
    from spark_secrets.hadoop.credentials import Credentials
    from spark_secrets.hadoop.token import Token, TokenFacts
    from spark_secrets.renew.policy import REISSUE, RENEW, Policy

    token = Token(b"kafka-token-id", base64.b64encode(b"hmac"), "KAFKA_DELEGATION_TOKEN",
                  "kafka.server.delegation.token.c1")
    creds = Credentials({token.service: token})
    obj = {"metadata": {"namespace": "alice", "name": "stream", "uid": "u", "resourceVersion": "1",
                        "labels": {"spark-secrets.io/owner": "alice"},
                        "annotations": {"spark-secrets.io/filesystems": "kafka://k:9092/c1"}},
           "data": {"hadoop-tokens": base64.b64encode(creds.to_bytes()).decode()}}
    policy = Policy(reissue_before_ms=30_000)
    for ts in (TokenSecret.from_metadata(obj), TokenSecret.from_object(obj)):  # as scheduled, as acted on
        assert policy.main_action(ts, ISSUED, spread=False) == (RENEW, ISSUED)
    full = TokenSecret.from_object(obj)
    assert [t.identifier for t in full.opaque_tokens()] == [b"kafka-token-id"] and full.token_owners() == set()
    full.learn(token, TokenFacts("alice", ISSUED - 50_000, ISSUED + 10_000))  # the brokers: 10 s to its max date
    assert full.max_date_ms == ISSUED + 10_000 and full.token_owners() == {"alice"}
    assert policy.main_action(full, ISSUED, spread=False)[0] == REISSUE
    assert base64.b64encode(b"hmac").decode() not in repr(full) + repr(full.opaque_tokens())
