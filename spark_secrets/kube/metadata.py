"""Decoding a metadata watch's events without their ``managedFields``, which nothing here reads.

An API server cannot be asked to leave ``managedFields`` out, and they are about half of a token Secret's
``PartialObjectMetadata`` event: at a start, half of the renew service's JSON decoding. The server writes
``ObjectMeta`` in its Go field order, where ``managedFields`` is the last field, and an event's object ends
with its metadata, so the array runs to the line's last ``]}}}``. A ``,"managedFields":[`` outside a JSON
string can only be the field itself (inside a string its quotes would be escaped, and keys of labels and
annotations have no quotes), so cutting from there and closing the three objects gives the same event
without the field. Anything else (no such field, another ending, a line the cut does not decode) is decoded
whole, so the cut can lose nothing but the field (whose bytes are then not read at all).
"""

from __future__ import annotations

import json
from typing import Any

_FIELD = b',"managedFields":['
_END = b"]}}}"


def decode_metadata_event(line: bytes) -> dict[str, Any]:
    """One watch event of ``PartialObjectMetadata``, as ``json.loads`` gives it less ``metadata.managedFields``."""
    at = line.rfind(_FIELD)
    if at > 0 and line.endswith(_END):
        try:
            event = json.loads(line[:at] + b"}}}")
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("object"), dict):
            return event
    event = json.loads(line)
    if isinstance(event, dict):
        ((event.get("object") or {}).get("metadata") or {}).pop("managedFields", None)
    return event
