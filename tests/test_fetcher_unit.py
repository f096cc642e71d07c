"""obtain_tokens with several filesystems: asked at the same time, stored in the order given, and the
first failing filesystem (in that order) is the error (no test bed: the NameNode call is replaced)."""

from __future__ import annotations

import threading
import time

import pytest

from spark_secrets.tokens import hdfs as fetcher  # obtain_tokens lives with the HDFS provider
from spark_secrets.errors import NameNodeUnavailable
from spark_secrets.hadoop.conf import FileSystemTarget, NameNodeAddress
from spark_secrets.hadoop.token import Token

TARGETS = [FileSystemTarget(f"http://nn{i}:9870", (NameNodeAddress(f"http://nn{i}:9870"),)) for i in range(4)]


def _fake(monkeypatch: pytest.MonkeyPatch, delays: list[float], failing: frozenset[int] = frozenset()) -> list[int]:
    running: list[int] = []
    peak = [0]
    lock = threading.Lock()

    def obtain_one(target, renewer, auth, doas, verify, conf, failover):  # type: ignore[no-untyped-def]
        i = TARGETS.index(target)
        with lock:
            running.append(i)
            peak[0] = max(peak[0], len(running))
        time.sleep(delays[i])
        with lock:
            running.remove(i)
        if i in failing:
            raise NameNodeUnavailable(f"nn{i} is down")
        return (Token(b"id%d" % i, b"pw", "HDFS_DELEGATION_TOKEN", f"10.0.0.{i}:8020"),
                Token(b"id%d" % i, b"pw", "WEBHDFS delegation", f"10.0.0.{i}:9870"), None)  # no KMS

    monkeypatch.setattr(fetcher, "_obtain_one", obtain_one)
    return peak


def test_several_filesystems_are_asked_at_once_and_stored_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _fake(monkeypatch, [0.3, 0.2, 0.1, 0.0])
    began = time.monotonic()
    creds = fetcher.obtain_tokens(TARGETS, "renewer", None)
    assert time.monotonic() - began < 0.55  # not 0.6 s one after the other
    assert peak[0] > 1
    assert [t.service for t in creds] == [s for i in range(4) for s in (f"10.0.0.{i}:8020", f"10.0.0.{i}:9870")]


def test_the_first_failing_filesystem_in_order_is_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [0.2, 0.1, 0.0, 0.0], failing=frozenset({1, 3}))
    with pytest.raises(NameNodeUnavailable, match="nn1 is down"):
        fetcher.obtain_tokens(TARGETS, "renewer", None)


def test_one_filesystem_needs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, [0.0] * 4)
    names: list[str] = []
    real = fetcher._obtain_one

    def spy(*args):  # type: ignore[no-untyped-def]
        names.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(fetcher, "_obtain_one", spy)
    assert len(fetcher.obtain_tokens(TARGETS[:1], "renewer", None)) == 2
    assert names == [threading.main_thread().name]
