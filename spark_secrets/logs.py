"""Loggers for the modules a cold ``tokens fetch`` runs, which import :mod:`logging` only once a record could go
somewhere (logging with the traceback module it imports is 4 ms of a 70 ms fetch).

Until something has imported logging, nothing can have configured it: the root logger is at WARNING without a
handler, so a DEBUG or INFO record would be dropped, and those calls return at once. A warning or error always goes
to logging, whose last-resort handler prints it, as it would print the standard logger's. Once logging is loaded
(by the renew service, an application, a test's ``caplog``), every call is the standard logger's, which names the
caller's module and line as its own would.
"""

import sys
from typing import Any


class Logger:
    """The subset of :class:`logging.Logger` those modules use, by name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<Logger {self.name} (logging imported on first use)>"

    def _log(self, level: str, msg: str, args: tuple[Any, ...]) -> None:
        import logging

        getattr(logging.getLogger(self.name), level)(msg, *args, stacklevel=3)

    def debug(self, msg: str, *args: Any) -> None:
        if "logging" in sys.modules:
            self._log("debug", msg, args)

    def info(self, msg: str, *args: Any) -> None:
        if "logging" in sys.modules:
            self._log("info", msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._log("warning", msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._log("error", msg, args)


def get_logger(name: str) -> Logger:
    """Like :func:`logging.getLogger` for a module's ``__name__``."""
    return Logger(name)
