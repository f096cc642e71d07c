"""Durations as people write them (``90s``, ``30min``, ``12h``, ``7d``), read and written in one place
for the settings, the command line and the renew service's messages."""

from __future__ import annotations

import datetime as dt
import re

from spark_secrets.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(key: str, text: str) -> dt.timedelta:
    """``text`` (a number with an optional unit; seconds by default) for the setting or flag ``key``."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{key}={text!r} is not a duration", "write it like 90s, 30min, 12h or 7d")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def duration_text(ms: int) -> str:
    """``ms`` rounded to the largest unit that keeps it a whole number above 1: 20s, 36h, 7d."""
    seconds = round(ms / 1000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 2 * size or (seconds >= size and seconds % size == 0):
            return f"{round(seconds / size)}{unit}"
    return f"{seconds}s"
