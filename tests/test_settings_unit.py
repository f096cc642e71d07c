"""The settings: validated up front, parsed once, every one documented."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spark_secrets.errors import ConfigError
from submit_steps.builder import StepBuilder
from submit_steps.settings import Settings, settings_table

from steps_support import BASE


@pytest.mark.parametrize(("key", "value", "message"), [
    ("spark.secrets.hadoop.filesystems", "s3a://bucket", "not a filesystem Hadoop issues tokens for"),
    ("spark.secrets.hadoop.caBundle", "/no/such/ca.pem", "is not a file"),
    ("spark.secrets.ticket.minLifetime", "soon", "not a duration"),
    ("spark.secrets.tokenFile.format", "2", "use 0"),
    ("spark.secrets.plugin.jar", "hdfs://nn/plugin.jar", "not a path inside the images"),
    ("spark.secrets.refresh.ratio", "1.5", "fraction between 0 and 1"),
    ("spark.secrets.refresh.pollInterval", "often", "not a duration"),
    ("spark.secrets.secret.name", "Not_Valid", "not a valid Kubernetes name"),
    ("spark.secrets.enabled", "yes", "not a boolean"),
    ("spark.secrets.nope", "1", "unknown setting spark.secrets.nope"),
    ("spark.secrets.steps", "no.such.Step", "not an importable SubmitStep"),
])
def test_bad_settings_fail_up_front(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StepBuilder({**BASE, key: value})


def test_settings_table_lists_every_setting() -> None:
    table = settings_table()
    assert "`spark.secrets.hadoop.filesystems`" in table and "`spark.secrets.renewer`" in table


def test_durations() -> None:
    s = Settings({"spark.secrets.ticket.minLifetime": "90min", "spark.secrets.renewInterval": "2h"})
    assert s.min_ticket_lifetime == dt.timedelta(minutes=90)
    assert s.renew_interval == dt.timedelta(hours=2)


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert settings_table() in readme


def test_settings_are_parsed_once_and_kept() -> None:
    settings = Settings(dict(BASE))
    assert settings.filesystems is settings.filesystems  # the same parsed tuple, not a new parse per read
    assert settings.renew_interval is None and settings.min_ticket_lifetime == dt.timedelta(minutes=5)


def test_every_setting_is_typed_grouped_and_validated_by_walking_the_registry() -> None:
    from submit_steps.settings import SETTINGS
    from submit_steps.settings import catalog

    assert {s.group for s in SETTINGS} >= {"tokens", "secret", "plugin", "job secrets", "renew", "vault", "layout"}
    assert catalog.REFRESH_MAX_BACKOFF.read({}) == dt.timedelta(seconds=60)  # typed: a timedelta, not text
    for setting in SETTINGS:  # each eager setting with a bad value fails when the settings are made
        if setting.eager and not setting.pattern and setting.key not in ("spark.secrets.steps",):
            try:
                setting.read({setting.key: "\u00a7 bad"})
            except ConfigError:
                with pytest.raises(ConfigError):
                    Settings({setting.key: "\u00a7 bad"})
