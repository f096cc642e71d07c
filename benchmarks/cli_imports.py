"""Benchmark: what a cold ``spark-secrets`` command imports, and what it costs, without the test bed.

    python3 benchmarks/cli_imports.py [--rounds 7] [--checkout DIR ...] [--command NAME ...]

Each command runs in a fresh ``python3 -m spark_secrets`` of each checkout (default: this one; give two,
e.g. a ``git worktree`` of an older commit, to compare them round by round), once with ``--help`` (the
parser alone) and once with input that fails with one line after the command has imported what it uses: no
ticket cache, and a kubeconfig and OpenBao/Vault address on a closed local port, so nothing is contacted.
Printed, as medians of ``--rounds`` (the least in brackets, nearer the cost on an idle machine): the wall time;
the time of the imports beyond an empty ``python3 -c pass`` (``-X importtime``); and each third-party package
loaded, with the cumulative time of its outermost imports (what it pulls in counts too: hvac's includes
requests'). First, each dependency imported alone.
Bytecode is cached (in a scratch directory) as in an installed package, even under PYTHONDONTWRITEBYTECODE.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN = ("spark_secrets", "submit_steps")
SUBMIT_ARGS = ["--", "--conf", "spark.secrets.hadoop.filesystems=http://127.0.0.1:{port}"]

#: A command's name, then arguments that fail after its imports; ``{tmp}`` is a scratch directory.
COMMANDS: dict[str, list[str]] = {
    "tokens fetch": ["tokens", "fetch", "{tmp}/out.tokens", "--filesystem", "http://127.0.0.1:{port}"],
    "tokens show": ["tokens", "show", "{tmp}/none.tokens"],
    "tokens renew": ["tokens", "renew", "{tmp}/none.tokens"],
    "conf": ["conf", *SUBMIT_ARGS],
    "submit": ["submit", *SUBMIT_ARGS],
    "render": ["render", "--format", "pod-template", *SUBMIT_ARGS],
    "renewer": ["renewer", "--keytab", "{tmp}/none.keytab", "--principal", "renew"],
    "status": ["status"],
    "doctor": ["doctor", "--duration", "bogus"],
    "secrets get": ["secrets", "get", "db-password"],
    "rbac": ["rbac", "common", "--submitter", "bad"],
}
#: Each imported alone; the last is the standard library's HTTP client, what the token operations use.
DEPENDENCIES = ["gssapi", "requests", "urllib3", "hvac", "yaml", "prometheus_client",
                "thrift_sasl, thrift.protocol.TBinaryProtocol", "kubernetes", "http.client, ssl"]

#: Runs the command as ``-m`` does, then names the top-level packages it left in ``sys.modules``.
RUN = ("import atexit, runpy, sys\n"
       "atexit.register(lambda: print('loaded:', *sorted({m.partition('.')[0] for m in sys.modules}), file=sys.stderr))\n"
       "sys.argv[0] = 'spark-secrets'\n"
       "runpy.run_module('spark_secrets', run_name='__main__', alter_sys=True)\n")

Line = tuple[int, int, str]  # depth, cumulative µs, module


def byte_compile() -> None:
    """Compile this checkout's packages into their ``__pycache__``, as ``pip install`` compiles an installed
    package: under PYTHONDONTWRITEBYTECODE a changed module would be compiled again at every start."""
    import compileall

    for package in OWN:
        compileall.compile_dir(ROOT / package, quiet=1)


def _env(tmp: str, port: int) -> dict[str, str]:
    """Nothing of the user's found (ticket cache, kubeconfig, Vault token, Hadoop or Spark configuration)."""
    kubeconfig = Path(tmp, "kubeconfig")
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "alice"}}]}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "SPARK_", "HADOOP_", "KRB5")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=f"{tmp}/pycache", KRB5CCNAME=f"FILE:{tmp}/no-ccache", KUBECONFIG=str(kubeconfig),
               HADOOP_CONF_DIR=tmp, SPARK_CONF_DIR=tmp, HOME=tmp, VAULT_ADDR=f"http://127.0.0.1:{port}",
               VAULT_TOKEN="t0ken")
    return env


def import_lines(argv: list[str], env: dict[str, str]) -> tuple[list[Line], set[str]]:
    """Each ``-X importtime`` line (failed optional imports too), and the top-level packages loaded when
    ``argv`` (``-m spark_secrets ...`` or ``-c ...``) exits."""
    if argv[:2] == ["-m", "spark_secrets"]:
        argv = ["-c", RUN, *argv[2:]]
    err = _python(["-X", "importtime", *argv], env).stderr
    lines, loaded = [], set()
    for line in err.splitlines():
        if line.startswith("loaded:"):
            loaded = set(line.split()[1:])
        elif line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            lines.append(((len(name) - len(name.lstrip()) - 1) // 2, int(cumulative), name.strip()))
    return lines, loaded


def summary(lines: list[Line], loaded: set[str], baseline: set[str]) -> tuple[float, dict[str, float]]:
    """Milliseconds of the imports not in the baseline, and of each third-party package loaded: the cumulative
    times of its outermost modules."""
    total = sum(us for depth, us, name in lines if depth == 0 and name not in baseline) / 1000
    imported = {name.partition(".")[0] for _, _, name in lines}  # not cython_runtime, which no import makes
    third = (loaded & imported) - baseline - set(sys.stdlib_module_names) - set(OWN)
    cost = {name: 0.0 for name in third if not name.startswith("_")}
    ancestors: list[tuple[int, str]] = []  # importtime prints a module after what it imported: walk back
    for depth, us, name in reversed(lines):
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        top = name.partition(".")[0]
        if top in cost and all(a.partition(".")[0] != top for _, a in ancestors):
            cost[top] += us / 1000
        ancestors.append((depth, name))
    return total, cost


def _python(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """In the scratch directory: ``-m`` and ``-c`` put the working directory first on the path, where a
    checkout's package would hide the one of PYTHONPATH."""
    return subprocess.run([sys.executable, *argv], env=env, cwd=env["HOME"], capture_output=True, text=True)


def wall_ms(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    _python(argv, env)
    return (time.perf_counter() - began) * 1000


class Sample:
    """One argument list's rounds: wall times, import totals and per-package times."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.imports: list[float] = []
        self.packages: dict[str, list[float]] = {}

    def add(self, argv: list[str], env: dict[str, str], baseline: set[str]) -> None:
        self.wall.append(wall_ms(argv, env))
        total, cost = summary(*import_lines(argv, env), baseline)
        self.imports.append(total)
        for name, ms in cost.items():
            self.packages.setdefault(name, []).append(ms)

    def row(self) -> str:
        packages = {name: statistics.median(ms) for name, ms in self.packages.items()}
        text = ", ".join(f"{p} {ms:.0f}" for p, ms in sorted(packages.items(), key=lambda kv: -kv[1]) if ms >= 0.5)
        wall, imports = (f"{statistics.median(ms):.0f} ({min(ms):.0f})" for ms in (self.wall, self.imports))
        return f"{wall:>11} {imports:>11}  {text or '-'}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dependencies(env: dict[str, str], baseline: set[str], rounds: int) -> Iterable[str]:
    for stmt in DEPENDENCIES:
        import_lines(["-c", f"import {stmt}"], env)  # fills the bytecode cache
        totals = [summary(*import_lines(["-c", f"import {stmt}"], env), baseline)[0] for _ in range(rounds)]
        yield f"{stmt}: {statistics.median(totals):.0f} ({min(totals):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--checkout", action="append", type=Path, help="a source tree to measure (repeatable)")
    parser.add_argument("--command", action="append", choices=list(COMMANDS), help="only these (repeatable)")
    options = parser.parse_args()
    rounds, checkouts = options.rounds, options.checkout or [ROOT]
    with tempfile.TemporaryDirectory() as tmp:
        port = _closed_port()
        envs = {c: {**_env(tmp, port), "PYTHONPATH": str(c.resolve())} for c in checkouts}
        env = envs[checkouts[0]]
        empty = Sample()
        wall_ms(["-c", "pass"], env)
        baseline = {name for *_, name in import_lines(["-c", "pass"], env)[0]}
        for _ in range(rounds):
            empty.add(["-c", "pass"], env, baseline)
        print(f"python3 -c pass: {statistics.median(empty.wall):.0f} ms (min {min(empty.wall):.0f}); medians of {rounds} "
              "rounds, and the least in brackets", flush=True)
        print(f"each dependency imported alone (ms): {'; '.join(dependencies(env, baseline, rounds))}", flush=True)
        print(f"\n{'command':<22} {'checkout':<24} {'wall ms':>11} {'import ms':>11}  third-party packages (ms)")
        for name in options.command or COMMANDS:
            args = COMMANDS[name]
            failing = [a.format(tmp=tmp, port=port) for a in args]
            cut = 2 if name.split()[0] in ("tokens", "secrets") else 1
            for label, argv in ((f"{name} --help", [*failing[:cut], "--help"]), (name, failing)):
                argv = ["-m", "spark_secrets", *argv]
                samples = {c: Sample() for c in checkouts}
                for c in checkouts:
                    wall_ms(argv, envs[c])  # fills the bytecode cache
                for _ in range(rounds):  # round by round, so that a busy moment weighs on every checkout
                    for c in checkouts:
                        samples[c].add(argv, envs[c], baseline)
                for c in checkouts:
                    print(f"{label:<22} {str(c)[-24:]:<24} {samples[c].row()}", flush=True)


if __name__ == "__main__":
    main()
