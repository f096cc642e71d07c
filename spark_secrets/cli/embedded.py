"""``spark-secrets demo``: the whole flow on the embedded test bed (named so that no ``demo.py`` ships in the
wheel). The only module that imports the test bed, which ships with the source, not the wheel."""

from __future__ import annotations

import argparse

from spark_secrets.cli.options import lasting
from spark_secrets.errors import ConfigError


def cmd_demo(args: argparse.Namespace) -> int:
    lasting()
    try:
        from spark_secrets.testbed.demo import run_demo
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("spark_secrets.testbed"):
            raise
        raise ConfigError("the demo's test bed is not installed (it ships with the source, not the wheel)",
                          "git clone the project and run: make demo") from None
    return run_demo(keep=args.keep)


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="start the embedded test bed (KDC, secure HDFS, Kubernetes) and run the main flow",
                          description="Starts a local realm, a secure HDFS and a Kubernetes API server, then walks "
                                      "through the whole flow as user alice, printing each step.")
    demo.add_argument("--keep", action="store_true", help="keep the test-bed directory (logs) afterwards")
    demo.set_defaults(func=cmd_demo)
