"""A typed setting (:class:`Setting`) and the parsers the catalogue's settings share.

A setting knows its key, its default, its README line and how to turn text into a checked value, so
that the whole conf can be validated by walking the registry rather than by a hand-kept list.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from spark_secrets.duration import parse_duration
from spark_secrets.errors import ConfigError

T = TypeVar("T")
#: Turns a setting's text (its default when unset; None without one) into its value, or raises ConfigError.
Parser = Callable[[str, "str | None"], T]

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One ``spark.secrets.*`` setting. ``eager``: checked when the settings are made (a setting that
    reads files the job may not need, such as ``hive-site.xml``, is checked when first used)."""

    key: str
    default: str | None
    doc: str
    parse: Parser[T]
    group: str
    eager: bool = True
    #: Spark's own setting read when this one is unset (e.g. ``spark.kerberos.access.hadoopFileSystems``).
    fallback: str | None = None

    @property
    def pattern(self) -> bool:
        """Whether the key names a family (``spark.secrets.file.<name>``) rather than one setting."""
        return self.key.endswith(">")

    def raw(self, conf: Mapping[str, str]) -> str | None:
        """The text in ``conf``, else the default (an empty value counts as unset)."""
        for key in (self.key, self.fallback):
            value = conf.get(key) if key else None
            if value not in (None, ""):
                return value
        return self.default

    def read(self, conf: Mapping[str, str]) -> T:
        return self.parse(self.key, self.raw(conf))


def text(key: str, value: str | None) -> str | None:
    return value


def required(parse: Callable[[str, str], T]) -> Parser[T]:
    """``parse`` for a setting whose default is in the catalogue, so it always has a value."""
    def parsed(key: str, value: str | None) -> T:
        assert value is not None, f"{key} has no default"
        return parse(key, value)
    return parsed


def optional(parse: Callable[[str, str], T]) -> Parser[T | None]:
    """``parse`` for a setting without a default: None when unset."""
    def parsed(key: str, value: str | None) -> T | None:
        return None if value is None else parse(key, value)
    return parsed


def boolean(key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{key}={value!r} is not a boolean", "use true or false")
    return lowered == "true"


def duration(key: str, value: str) -> dt.timedelta:
    return parse_duration(key, value)


def one_of(*choices: str, what: str) -> Callable[[str, str], str]:
    def parsed(key: str, value: str) -> str:
        value = value.strip()
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not {what}", f"use one of {', '.join(choices)}")
        return value
    return parsed


def listed(key: str, value: str | None) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(s.strip() for s in (value or "").split(",") if s.strip())


def fraction(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1:
        raise ConfigError(f"{key}={value!r}", "use a fraction between 0 and 1, e.g. 0.75")
    return number


def no_check(key: str, value: str | None) -> None:
    """For a family of settings checked where they are parsed together (the job's secrets)."""
    return None
