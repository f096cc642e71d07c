"""When the renew service renews and re-issues (pure policy), and how it reads a token Secret."""

from __future__ import annotations

import base64
import random

import pytest

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.secrets.tokensecret import rfc3339
from spark_secrets.errors import UnusableSecret
from spark_secrets.renew.policy import REISSUE, RENEW, Policy
from spark_secrets.secrets.tokensecret import TokenSecret
from spark_secrets.hadoop.token import Token

HOUR, DAY = 3_600_000, 86_400_000
ISSUED = 1_795_000_000_000
PASSWORD = bytes(range(20))


def _secret(expiry: int, renewed_at: int | None = None, max_lifetime: int = 7 * DAY,
            estimated: bool = False, verified: bool = True) -> TokenSecret:
    """A token Secret of alice's; ``verified`` as the renew service marks one whose seal it made."""
    ident = DelegationTokenIdentifier("alice", "spark-renewer", "", ISSUED, ISSUED + max_lifetime, 5, 2)
    token = Token(ident.encode(), PASSWORD, "HDFS_DELEGATION_TOKEN", "ha-hdfs:ns1")
    creds = Credentials({"ha-hdfs:ns1": token, "ha-webhdfs:ns1": token.with_service("ha-webhdfs:ns1", "WEBHDFS delegation")})
    notes = {"spark-secrets.io/expiry": rfc3339(expiry), "spark-secrets.io/filesystems": "hdfs://ns1"}
    if renewed_at is not None:
        notes["spark-secrets.io/renewed-at"] = rfc3339(renewed_at)
    if estimated:
        notes["spark-secrets.io/expiry-estimated"] = "true"
    obj = {"metadata": {"namespace": "alice", "name": "job-hadoop-tokens", "uid": "u", "resourceVersion": "7",
                        "annotations": notes, "labels": {"spark-secrets.io/owner": "alice"}},
           "data": {"hadoop-tokens": base64.b64encode(creds.to_bytes()).decode()}}
    ts = TokenSecret.from_object(obj)
    ts.verified = verified
    return ts


def test_reads_a_token_secret_without_showing_its_bytes() -> None:
    ts = _secret(ISSUED + DAY)
    assert (ts.token_owners(), ts.filesystems, ts.max_date_ms) == ({"alice"}, ("hdfs://ns1",), ISSUED + 7 * DAY)
    assert len(ts.distinct_tokens()) == 1 and ts.distinct_tokens()[0].kind == "WEBHDFS delegation"
    assert PASSWORD.hex() not in repr(ts) and "alice/job-hadoop-tokens" in repr(ts)


def test_renews_at_the_ratio_of_the_lifetime_since_the_last_renewal() -> None:
    policy = Policy(ratio=0.75, reissue_before_ms=HOUR, jitter=0)
    assert policy.next_action(_secret(ISSUED + DAY, ISSUED), ISSUED) == (RENEW, ISSUED + 18 * HOUR)
    renewed = ISSUED + 18 * HOUR
    assert policy.next_action(_secret(renewed + DAY, renewed), renewed) == (RENEW, renewed + 18 * HOUR)


@pytest.mark.parametrize("estimate", [20_000, DAY, 7 * DAY - 2 * HOUR])
def test_a_token_never_renewed_by_the_service_is_renewed_at_first_sight(estimate: int) -> None:
    """The submission's expiry is a guess: whatever it says, the first renewal is now."""
    policy = Policy(ratio=0.75, reissue_before_ms=HOUR, jitter=0)
    now = ISSUED + 5_000
    assert policy.next_action(_secret(ISSUED + estimate), now) == (RENEW, now)
    # Also when it was renewed before but the expiry on it is marked as an estimate again (a refilled Secret).
    assert policy.next_action(_secret(ISSUED + estimate, ISSUED, estimated=True), now) == (RENEW, now)
    # And whatever its annotations claim, when the service's seal is not on it (a writer's word only).
    assert policy.next_action(_secret(ISSUED + estimate, ISSUED, verified=False), now) == (RENEW, now)
    assert policy.next_action(_secret(ISSUED + estimate, ISSUED), now)[1] > now  # the control: sealed, scheduled
    # Control: the same Secret with an expiry learnt from the NameNode waits for the ratio.
    assert policy.next_action(_secret(ISSUED + DAY, ISSUED), now) == (RENEW, ISSUED + 18 * HOUR)


def test_first_sight_inside_the_reissue_window_reissues() -> None:
    policy = Policy(ratio=0.75, reissue_before_ms=HOUR, jitter=0)
    now = ISSUED + 7 * DAY - HOUR // 2
    assert policy.next_action(_secret(ISSUED + DAY), now) == (REISSUE, now)


def test_jitter_only_ever_brings_renewal_earlier() -> None:
    policy = Policy(ratio=0.75, reissue_before_ms=HOUR, jitter=0.1)
    dues = {policy.next_action(_secret(ISSUED + DAY, ISSUED), ISSUED, random.Random(i))[1] for i in range(20)}
    assert all(ISSUED + int(0.9 * 18 * HOUR) <= d <= ISSUED + 18 * HOUR for d in dues) and len(dues) > 1


def test_reissues_before_the_max_date_instead_of_renewing_past_it() -> None:
    policy = Policy(ratio=0.75, reissue_before_ms=3 * HOUR, jitter=0)
    late = ISSUED + 6 * DAY + 12 * HOUR
    # Expiry already reaches into the re-issue window: no more renewals, re-issue when the window opens.
    action, due = policy.next_action(_secret(ISSUED + 7 * DAY - HOUR, late), late)
    assert (action, due) == (REISSUE, ISSUED + 7 * DAY - 3 * HOUR)
    # Inside the window: now.
    inside = ISSUED + 7 * DAY - 2 * HOUR
    assert policy.next_action(_secret(ISSUED + 7 * DAY - HOUR, late), inside) == (REISSUE, inside)


def test_an_expired_token_is_reissued_at_once() -> None:
    now = ISSUED + 2 * DAY
    assert Policy(jitter=0).next_action(_secret(ISSUED + DAY, ISSUED), now) == (REISSUE, now)


@pytest.mark.parametrize(("data", "problem"), [
    ({}, "has no key"),
    ({"hadoop-tokens": base64.b64encode(b"HDTS\x00\x05junk").decode()}, "does not hold a Hadoop token file"),
    ({"hadoop-tokens": "%%%"}, "does not hold a Hadoop token file"),
    ({"hadoop-tokens": base64.b64encode(Credentials().to_bytes()).decode()}, "no delegation tokens"),
])
def test_unusable_secrets_are_named(data: dict[str, str], problem: str) -> None:
    with pytest.raises(UnusableSecret, match=problem):
        TokenSecret.from_object({"metadata": {"namespace": "alice", "name": "x"}, "data": data})


@pytest.mark.parametrize(("estimate", "actual", "warned"), [
    (DAY, 20_000, True),          # the NameNode renews far more often than the submission guessed
    (5_000, 20_000, True),        # ... or less often
    (20_000, 20_500, False),      # close enough
    (7 * DAY, 20_000, True),      # an estimate cut at the max date was at least that long
])
def test_a_wrong_estimate_is_named_once_with_the_real_interval(
        caplog: pytest.LogCaptureFixture, estimate: int, actual: int, warned: bool) -> None:
    from spark_secrets.renew.service import RenewService
    now = ISSUED + 1_000
    with caplog.at_level("WARNING", logger="spark_secrets.renew"):
        RenewService._check_estimate(_secret(ISSUED + estimate), now + actual, now)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == int(warned)
    if warned:
        assert "renew interval is about 20s" in lines[0] and "spark.secrets.renewInterval=20s" in lines[0]
        assert ("at least 7d" in lines[0]) == (estimate >= 7 * DAY)


def test_durations_read_as_people_write_them() -> None:
    from spark_secrets.duration import duration_text
    assert [duration_text(ms) for ms in (20_000, 90_000, 3_600_000, 7_200_000, DAY, 7 * DAY)] == \
        ["20s", "90s", "1h", "2h", "1d", "7d"]


@pytest.mark.parametrize("version", [0, 1])
def test_the_token_file_format_is_read_so_a_reissue_keeps_it(version: int) -> None:
    ts = _secret(ISSUED + DAY)
    obj = {"metadata": {"namespace": "alice", "name": "x"},
           "data": {"hadoop-tokens": base64.b64encode(ts.credentials.to_bytes(version)).decode()}}
    assert TokenSecret.from_object(obj).file_format == version


def test_an_estimate_cut_at_the_max_date_reads_as_at_least_despite_whole_second_annotations(
        caplog: pytest.LogCaptureFixture) -> None:
    """The expiry annotation keeps whole seconds, the identifier's max date milliseconds."""
    from spark_secrets.renew.service import RenewService
    now = ISSUED + 1_000
    max_date = ISSUED + 7 * DAY
    cut = _secret(max_date - 700)  # the submission's estimate, written as rfc3339(max date): 0.7 s short
    with caplog.at_level("WARNING", logger="spark_secrets.renew"):
        RenewService._check_estimate(cut, now + 20_000, now)
        RenewService._check_estimate(_secret(max_date - 3_000_000), now + 20_000, now)  # control: not cut
    lines = [r.getMessage() for r in caplog.records]
    assert "estimated at least 7d" in lines[0] and "at least" not in lines[1], lines
