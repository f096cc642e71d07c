"""A metadata watch's events decoded without ``managedFields`` (:mod:`spark_secrets.kube.metadata`): the same
event as ``json.loads`` gives, less that field, whatever a Secret's writer put in its labels and annotations."""

from __future__ import annotations

import json
from typing import Any

import pytest

from spark_secrets.kube.metadata import decode_metadata_event

FIELDS = [{"manager": "spark-secrets", "operation": "Update", "apiVersion": "v1", "time": "2026-12-06T06:00:00Z",
           "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:a": {}}}}}]


def _line(annotations: dict[str, str], managed: list[dict[str, Any]] | None = FIELDS, kind: str = "ADDED") -> bytes:
    """An event as the API server writes it: ObjectMeta in Go's field order, managedFields last."""
    meta: dict[str, Any] = {"name": "job-1-hadoop-tokens", "namespace": "alice", "uid": "u-1", "resourceVersion": "7",
                            "creationTimestamp": "2026-12-06T06:00:00Z", "labels": {"spark-secrets.io/owner": "alice"},
                            "annotations": annotations}
    if managed is not None:
        meta["managedFields"] = managed
    obj = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode()


def _expected(line: bytes) -> dict[str, Any]:
    event = json.loads(line)
    event["object"]["metadata"].pop("managedFields", None)
    return event  # type: ignore[no-any-return]


@pytest.mark.parametrize("annotations", [
    {"a": "1"},
    {"a": ',"managedFields":[{"manager":"me"}]}}}'},  # the field's text inside a value: its quotes escaped
    {"a": 'x]}}}', "b": '"managedFields":['},
    {},
])
def test_an_event_decodes_as_json_loads_less_managed_fields(annotations: dict[str, str]) -> None:
    line = _line(annotations)
    assert decode_metadata_event(line) == _expected(line)
    assert "managedFields" not in decode_metadata_event(line)["object"]["metadata"]


def test_a_writers_text_that_looks_like_the_field_is_kept_whole() -> None:
    """The annotation holds the field's name and an ending like the line's own, last in the event if the field
    were absent. Control: the bytes really are in the line (escaped), so a cut that ignored the escaping would
    have cut the annotation."""
    value = 'x","managedFields":[]}}}'
    line = _line({"a": value}, managed=None)
    assert b'managedFields\\":[' in line and line.endswith(b"}}}")
    assert decode_metadata_event(line)["object"]["metadata"]["annotations"] == {"a": value}
    assert decode_metadata_event(line) == json.loads(line)


@pytest.mark.parametrize("line", [
    _line({"a": "1"}, managed=None),
    json.dumps({"type": "BOOKMARK", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                               "metadata": {"resourceVersion": "9", "annotations": {
                                                   "k8s.io/initial-events-end": "true"}}}}).encode(),
    json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}).encode(),
    _line({"a": "1"}) + b" ",  # another ending: decoded whole
])
def test_other_events_decode_whole(line: bytes) -> None:
    assert decode_metadata_event(line) == (_expected(line) if b"PartialObjectMetadata" in line else json.loads(line))


def test_a_line_malformed_outside_the_field_is_refused_as_json_loads_refuses_it() -> None:
    """The dropped field's own bytes are not read at all (nothing here would read them)."""
    with pytest.raises(ValueError):
        decode_metadata_event(b'{"type":"ADDED","object":{"metadata":{"x":1,,"managedFields":[{}]}}}')
    assert decode_metadata_event(b'{"type":"ADDED","object":{"metadata":{"x":1,"managedFields":[}]}}}') == {
        "type": "ADDED", "object": {"metadata": {"x": 1}}}
