"""The ``spark-secrets`` argument parser: one subcommand per command module, in the order ``--help`` lists them.

A command's module is imported only when that command is run (or when the whole list is shown): a cold
``tokens fetch`` need not pay for the renew service's, OpenBao's or the submission's imports.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from spark_secrets.cli.options import PROG

#: ``(command, module in spark_secrets.cli, the function that adds its parser)``, in ``--help``'s order.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "embedded", "add_parser"),
    ("rbac", "rbac", "add_rbac_parser"),
    ("renewer", "renewer", "add_parser"),
    ("render", "submission", "add_render_parser"),
    ("jar", "rbac", "add_jar_parser"),
    ("conf", "submission", "add_conf_parser"),
    ("connect", "connect", "add_parser"),
    ("doctor", "check", "add_doctor_parser"),
    ("status", "check", "add_status_parser"),
    ("submit", "submission", "add_submit_parser"),
    ("secrets", "secrets", "add_parser"),
    ("tokens", "tokens", "add_parser"),
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, only the command it names (every command when it names none,
    e.g. ``--help`` or a misspelt command, so that the message lists them all)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kerberized HDFS delegation tokens for Apache Spark on Kubernetes: fetch them from "
                    "your ticket cache, ship them to jobs in Kubernetes Secrets, keep them alive.")
    # prog given, as argparse would find it: otherwise it lays out a usage line at every start to find it.
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, prog=PROG)
    first = next(iter(argv), None) if argv is not None else None
    named = [entry for entry in COMMANDS if entry[0] == first]
    for _, module, adder in named or COMMANDS:
        getattr(importlib.import_module(f"spark_secrets.cli.{module}"), adder)(sub)
    return parser
