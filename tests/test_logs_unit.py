"""spark_secrets.logs: the fetch path's loggers leave logging unimported until a record could go somewhere, and
are the standard loggers once it is imported (issue 33)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from spark_secrets.logs import get_logger

#: In a fresh interpreter: an INFO record, then whether logging got imported, then a warning.
FRESH = """
import sys
from spark_secrets.logs import get_logger
log = get_logger("spark_secrets.tokens.hdfs")
log.info("obtained a delegation token for %s", "hdfs://nn")
print("logging" in sys.modules)
log.warning("no KMS token from %s", "kms://http@kms:9600/kms")
print("logging" in sys.modules)
"""


def test_an_info_record_loads_nothing_where_logging_was_never_imported() -> None:
    """Nothing could have configured logging, so the record would be dropped; a warning still reaches logging's
    last-resort handler on stderr, as the standard logger's would (the control)."""
    out = subprocess.run([sys.executable, "-S", "-c", FRESH], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
    assert out.stderr == "no KMS token from kms://http@kms:9600/kms\n"


def test_once_logging_is_loaded_the_records_are_the_standard_loggers(caplog: pytest.LogCaptureFixture) -> None:
    """Levels, names, arguments and the caller's file, function and line, as logging.getLogger's would be."""
    log = get_logger("spark_secrets.tokens.kms")
    with caplog.at_level(logging.INFO, logger="spark_secrets.tokens.kms"):
        log.debug("not at INFO %s", 1)
        line = sys._getframe().f_lineno + 1
        log.info("obtained a KMS delegation token from %s", "kms://http@kms:9600/kms")
        log.error("refused: %s", "bad")
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("spark_secrets.tokens.kms", "INFO", "obtained a KMS delegation token from kms://http@kms:9600/kms"),
        ("spark_secrets.tokens.kms", "ERROR", "refused: bad")]
    first = caplog.records[0]
    assert (first.filename, first.funcName, first.lineno) == (
        "test_logs_unit.py", "test_once_logging_is_loaded_the_records_are_the_standard_loggers", line)
    assert "logging imported on first use" in repr(log)
