"""The ``spark-secrets`` argument parser: one subcommand per command module, in the order ``--help`` lists them."""

from __future__ import annotations

import argparse

from spark_secrets.cli import check, connect, embedded, rbac, renewer, secrets, submission, tokens
from spark_secrets.cli.options import PROG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kerberized HDFS delegation tokens for Apache Spark on Kubernetes: fetch them from "
                    "your ticket cache, ship them to jobs in Kubernetes Secrets, keep them alive.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (embedded.add_parser, rbac.add_rbac_parser, renewer.add_parser, submission.add_render_parser,
                rbac.add_jar_parser, submission.add_conf_parser, connect.add_parser, check.add_doctor_parser,
                check.add_status_parser,
                submission.add_submit_parser, secrets.add_parser, tokens.add_parser):
        add(sub)
    return parser
