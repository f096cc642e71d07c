"""The Connect server's idle rule (spark_secrets.connect.idle): idle is no call and nothing running."""

from __future__ import annotations

from spark_secrets.connect.idle import Activity, running


def test_idle_counts_from_the_last_call_or_the_start() -> None:
    assert Activity(now_ms=10_000, started_ms=1_000).idle_ms() == 9_000
    assert Activity(now_ms=10_000, started_ms=1_000, last_call_ms=7_000).idle_ms() == 3_000
    assert Activity(now_ms=10_000, started_ms=1_000, last_call_ms=12_000).idle_ms() == 0  # clocks a little apart


def test_anything_running_is_not_idle_however_old_the_last_call() -> None:
    for busy in ({"running_operations": 1}, {"active_jobs": 2}, {"active_streams": 1}):
        assert Activity(now_ms=10**9, started_ms=0, last_call_ms=0, **busy).idle_ms() == 0, busy


def test_operations_that_ended_but_were_not_released_do_not_count() -> None:
    assert running(["Finished", "Closed", "Failed", "Canceled"]) == 0
    assert running(["Started", "Finished", "Analyzed", "Pending", "ReadyForExecution"]) == 4
