"""``spark-secrets``: delegation tokens for Spark on Kubernetes, from the command line.

Every failure is one line on stderr naming the problem and the fix (exit 2); no traceback,
and no token password, ever. The commands live a module per group beside this one; the parser is
:mod:`.parser`'s.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import NoReturn

from spark_secrets.cli.options import PROG, SHORT_RUN_THRESHOLDS
from spark_secrets.cli.parser import build_parser
from spark_secrets.errors import SparkSecretsError

__all__ = ["build_parser", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if getattr(args, "command", None) in ("conf", "submit", "render", "doctor", "connect"):
            parser.error(f"put spark-submit options after '--': {PROG} {args.command} [options] -- {' '.join(unknown)}")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except SparkSecretsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The ``spark-secrets`` console script: :func:`main` with the collector tuned for a process that ends.

    A cold ``tokens fetch`` would run 35 collections while it imports, and the interpreter's shutdown traverses
    every object again. Here the collector waits (:data:`~spark_secrets.cli.options.SHORT_RUN_THRESHOLDS`,
    undone by :func:`~spark_secrets.cli.options.lasting`), and at the end every object is frozen, which the
    shutdown's collections skip. Objects are still freed as their last reference goes, and the commands close
    their files themselves."""
    gc.set_threshold(*SHORT_RUN_THRESHOLDS)
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
