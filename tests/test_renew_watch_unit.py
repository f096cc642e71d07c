"""The renew service's watch thread: the events it hands the main loop for a streaming list, the paged
list it falls back to where the API server has none, and its relists (a fake client, no test bed)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from spark_secrets.errors import KubernetesInvalid
from spark_secrets.renew.metrics import Metrics
from spark_secrets.renew.watch import INITIAL_EVENTS_END, SecretEvent, SecretWatch


def _obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}}


def _end(rv: str, marked: bool = True) -> dict[str, Any]:
    notes = {INITIAL_EVENTS_END: "true"} if marked else {}
    return {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": rv, "annotations": notes}}}


class _Kube:
    """Answers each watch request with the next script; records what was asked."""

    def __init__(self, watches: list[list[dict[str, Any]] | Exception], pages: list[list[dict[str, Any]]] | None = None,
                 list_rv: str = "50") -> None:
        self.watches, self.pages, self.list_rv = watches, pages or [], list_rv
        self.asked: list[tuple[str, str | None]] = []
        self.done = threading.Event()

    def watch_secret_metadata(self, namespace: str | None, selector: str, resource_version: str | None,
                              timeout_seconds: int) -> Iterator[dict[str, Any]]:
        self.asked.append(("watch", resource_version))
        if not self.watches:
            self.done.set()
            threading.Event().wait(0.05)
            return
        script = self.watches.pop(0)
        if isinstance(script, Exception):
            raise script
        yield from script

    def list_secret_metadata(self, namespace: str | None, selector: str, on_page: Any, page: int = 500) -> str:
        self.asked.append(("list", None))
        for items in self.pages:
            on_page(items)
        return self.list_rv


def _run(kube: _Kube, page: int = 2) -> tuple[list[tuple[str, list[str]]], SecretWatch]:
    """The events handed over until the script ends, each taken in as the main loop does."""
    events: queue.Queue[SecretEvent] = queue.Queue()
    watch = SecretWatch(kube, "ns", events, Metrics(), page=page, stream_page=page)  # type: ignore[arg-type]
    watch.start()
    seen = []
    while not (kube.done.is_set() and events.empty()):
        try:
            event = events.get(timeout=0.01)
        except queue.Empty:
            continue
        seen.append((event.kind, [o["metadata"].get("name", "") for o in event.objects]))
        event.taken()
    watch.stop()
    return seen, watch


def test_a_list_hands_over_two_pages_at_most_until_the_main_loop_takes_one_in() -> None:
    """Decoded pages waiting in the queue are memory: the third waits until one is taken in. Control: a page
    not taken in within ``page_wait`` is handed over anyway (a busy main loop never stalls a list)."""
    for page_wait, expected in ((30.0, 2), (0.2, 3)):
        kube = _Kube([[{"type": "ADDED", "object": _obj(n, str(i))} for i, n in enumerate("abcdef")] + [_end("60")]])
        events: queue.Queue[SecretEvent] = queue.Queue()
        watch = SecretWatch(kube, "ns", events, Metrics(), stream_page=2, page_wait=page_wait)  # type: ignore[arg-type]
        watch.start()
        threading.Event().wait(0.5)
        pages = [e for e in list(events.queue) if e.kind == "PAGE"]
        assert len(pages) == expected, (page_wait, pages)
        for event in pages:
            event.taken()
        assert kube.done.wait(10)
        watch.stop()
        assert [e.kind for e in list(events.queue)][-1] == "SYNC"


def test_the_watch_drops_managed_fields_and_keeps_the_rest() -> None:
    obj = _obj("a", "1")
    obj["metadata"].update(managedFields=[{"manager": "kubectl", "fieldsV1": {"f:data": {}}}], labels={"x": "y"})
    kube = _Kube([[{"type": "ADDED", "object": obj}, _end("2")]])
    seen, _ = _run(kube)
    assert seen[1] == ("PAGE", ["a"])
    assert obj["metadata"] == {"namespace": "ns", "name": "a", "resourceVersion": "1", "labels": {"x": "y"}}


def test_a_streaming_list_becomes_pages_then_sync_then_the_watch_goes_on_from_the_bookmark() -> None:
    kube = _Kube([[{"type": "ADDED", "object": _obj(n, str(i))} for i, n in enumerate("abcde")]
                  + [_end("60"), {"type": "MODIFIED", "object": _obj("a", "61")}]])
    seen, watch = _run(kube)
    assert seen == [("LISTING", []), ("PAGE", ["a", "b"]), ("PAGE", ["c", "d"]), ("PAGE", ["e"]), ("SYNC", []),
                    ("MODIFIED", ["a"])]
    assert kube.asked[:2] == [("watch", None), ("watch", "61")]  # one request listed; the next resumes
    assert watch.streaming and watch.metrics.relists == 1


def test_without_streaming_lists_the_watch_lists_in_pages_once_and_for_good() -> None:
    refusal = KubernetesInvalid("cannot watch Secrets in ns: HTTP 422 sendInitialEvents is forbidden for watch")
    kube = _Kube([refusal, [{"type": "ADDED", "object": _obj("z", "51")}], [_end("52", marked=False)]],
                 pages=[[_obj("a", "1"), _obj("b", "2")], [_obj("c", "3")]])
    seen, watch = _run(kube)
    assert seen == [("LISTING", []), ("PAGE", ["a", "b"]), ("PAGE", ["c"]), ("SYNC", []), ("ADDED", ["z"])]
    assert kube.asked[:4] == [("watch", None), ("list", None), ("watch", "50"), ("watch", "51")]
    assert not watch.streaming


def test_a_stream_cut_before_its_end_lists_again_and_syncs_only_on_the_marked_bookmark() -> None:
    kube = _Kube([[{"type": "ADDED", "object": _obj("a", "1")}, _end("5", marked=False)],  # cut off
                  [{"type": "ADDED", "object": _obj("a", "1")}, _end("7")],
                  [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}],  # 410: list again
                  [_end("9")]])
    seen, _ = _run(kube, page=500)
    assert seen == [("LISTING", []), ("LISTING", []), ("PAGE", ["a"]), ("SYNC", []), ("LISTING", []), ("SYNC", [])]
    assert kube.asked[:4] == [("watch", None), ("watch", None), ("watch", "7"), ("watch", None)]
