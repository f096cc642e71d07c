"""Each ``spark-secrets`` command imports only the heavy packages it uses (issue 33): the parser none at
all, and hvac only where OpenBao/Vault is spoken to, Kerberos only where a login is made, and so on. A
cold command pays for every package it imports (hvac with requests was a fifth of a second of each one).

Each command runs in a fresh interpreter, with input that makes it fail with its one line (exit 2) after it
has imported what it needs: no ticket cache, and a kubeconfig and OpenBao/Vault address on a closed local
port, so nothing is contacted."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spark_secrets.testbed.daemon import free_port

ROOT = Path(__file__).resolve().parent.parent

#: Third-party packages (top-level names) worth tens of milliseconds or more to import, or optional extras.
HEAVY = frozenset({"hvac", "requests", "urllib3", "gssapi", "yaml", "kubernetes",
                   "prometheus_client", "thrift", "thrift_sasl", "kafka", "pyspark", "pyarrow", "hdfs"})
HTTP = frozenset({"requests", "urllib3"})
KERBEROS = frozenset({"gssapi"})
#: Where the kubeconfig of a submission or ``status`` is read.
KUBECONFIG = frozenset({"yaml"})
SUBMIT_ARGS = ["--", "--conf", "spark.secrets.hadoop.filesystems=http://127.0.0.1:{port}"]

#: A command's name: its failing arguments, a module of this project it must have got to (so that a
#: command failing too early cannot pass), and the heavy packages it may load.
COMMANDS: dict[str, tuple[list[str], str, frozenset[str]]] = {
    "tokens fetch": (["tokens", "fetch", "{tmp}/out.tokens", "--filesystem", "http://127.0.0.1:{port}"],
                     "spark_secrets.tokens.fetcher", KERBEROS),
    "tokens show": (["tokens", "show", "{tmp}/none.tokens"], "spark_secrets.hadoop.credentials", frozenset()),
    "tokens renew": (["tokens", "renew", "{tmp}/none.tokens"], "spark_secrets.tokens.registry", KERBEROS),
    "tokens cancel": (["tokens", "cancel", "{tmp}/none.tokens"], "spark_secrets.tokens.registry", KERBEROS),
    "conf": (["conf", *SUBMIT_ARGS], "submit_steps.submission", KERBEROS | KUBECONFIG),
    "submit": (["submit", *SUBMIT_ARGS], "submit_steps.submission", KERBEROS | KUBECONFIG),
    "render": (["render", "--format", "pod-template", *SUBMIT_ARGS], "submit_steps.render",
               KERBEROS | KUBECONFIG),
    "renewer": (["renewer", "--keytab", "{tmp}/none.keytab", "--principal", "renew"], "spark_secrets.renew.app",
                HTTP | KERBEROS | KUBECONFIG | {"prometheus_client"}),
    "status": (["status"], "spark_secrets.check.status", KUBECONFIG),
    "doctor": (["doctor", "--duration", "bogus"], "spark_secrets.check.examination", KERBEROS | KUBECONFIG),
    "secrets get": (["secrets", "get", "db-password"], "spark_secrets.jobsecrets.vault", HTTP | {"hvac"}),
    "secrets list": (["secrets", "list"], "spark_secrets.jobsecrets.vault", HTTP | {"hvac"}),
    "rbac": (["rbac", "common", "--submitter", "bad"], "spark_secrets.kube.rbac", KUBECONFIG),
}
#: Every command's ``--help``: the parser alone.
HELP = [[], ["demo"], ["rbac"], ["renewer"], ["render"], ["jar"], ["conf"], ["doctor"], ["status"], ["submit"],
        *(["secrets", action] for action in ("set", "get", "list", "delete")),
        *(["tokens", action] for action in ("fetch", "show", "renew", "cancel"))]

#: Runs ``main`` on each argument list of argv[1] (JSON) in turn; prints the exit statuses and what is loaded.
RUN = """
import contextlib, io, json, sys
from spark_secrets.cli.main import main
statuses = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            statuses.append(main(argv))
        except SystemExit as exc:
            statuses.append(exc.code)
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


def _isolated(tmp_path: Path, port: int) -> dict[str, str]:
    """An environment where no ticket cache, Hadoop or Spark configuration, or token of the user running the tests
    is found, and the kubeconfig and OpenBao/Vault address name a closed local ``port``."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "alice"}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "SPARK_", "HADOOP_", "KRB5"))}
    env.update(HOME=str(tmp_path), KRB5CCNAME=f"FILE:{tmp_path}/no-ccache", KUBECONFIG=str(kubeconfig),
               HADOOP_CONF_DIR=str(tmp_path), SPARK_CONF_DIR=str(tmp_path), VAULT_ADDR=f"http://127.0.0.1:{port}",
               VAULT_TOKEN="t0ken")
    return env


def _run(argvs: list[list[str]], tmp_path: Path) -> tuple[list[int], set[str], str]:
    """Exit statuses, loaded modules and stderr of the commands run in one fresh interpreter (:func:`_isolated`)."""
    port = free_port()
    env = _isolated(tmp_path, port)
    argvs = [[a.format(tmp=tmp_path, port=port) for a in argv] for argv in argvs]
    out = subprocess.run([sys.executable, "-c", RUN, json.dumps(argvs)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    return report["statuses"], set(report["modules"]), out.stderr


def _heavy(modules: set[str]) -> set[str]:
    return {m.partition(".")[0] for m in modules} & HEAVY


def test_the_parser_imports_no_heavy_package(tmp_path: Path) -> None:
    statuses, modules, _ = _run([[*argv, "--help"] for argv in HELP], tmp_path)
    assert statuses == [0] * len(HELP)
    assert _heavy(modules) == set()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_imports_only_what_it_uses(command: str, tmp_path: Path) -> None:
    argv, reached, uses = COMMANDS[command]
    statuses, modules, stderr = _run([argv], tmp_path)
    lines = stderr.strip().splitlines()
    assert statuses == [2] and lines[-1].startswith("spark-secrets: error: ") and "Traceback" not in stderr, stderr
    assert reached in modules, f"{command} failed before it got to {reached}: {stderr}"
    assert _heavy(modules) - uses == set()


def test_the_check_sees_a_needless_import(tmp_path: Path) -> None:
    """Control: a package loaded beside a command is seen (and OpenBao/Vault commands do load hvac)."""
    statuses, modules, _ = _run([["tokens", "show", "--help"], ["secrets", "list"]], tmp_path)
    assert statuses == [0, 2]
    assert _heavy(modules) - COMMANDS["tokens show"][2] == {"hvac", "requests", "urllib3"}


#: Modules of this project a cold ``tokens fetch`` of an HDFS filesystem has no use for: other commands',
#: and the clients of the token kinds it does not obtain (Kafka's, the metastore's).
NOT_FOR_A_FETCH = ("spark_secrets.cli.renewer", "spark_secrets.cli.submission", "spark_secrets.cli.secrets",
                   "spark_secrets.cli.check", "spark_secrets.cli.connect", "spark_secrets.cli.rbac",
                   "spark_secrets.tokens.registry", "spark_secrets.tokens.kafka", "spark_secrets.tokens.metastore",
                   "spark_secrets.renew")


def test_a_fetch_loads_no_other_command_nor_token_kind(tmp_path: Path) -> None:
    """Control: ``tokens renew`` (a token of any kind) does load every kind's client through the registry."""
    statuses, fetch, _ = _run([COMMANDS["tokens fetch"][0]], tmp_path)
    assert statuses == [2] and COMMANDS["tokens fetch"][1] in fetch
    assert {m for m in fetch if m.startswith(NOT_FOR_A_FETCH)} == set()
    statuses, renew, _ = _run([COMMANDS["tokens renew"][0]], tmp_path)
    assert statuses == [2]
    assert {"spark_secrets.tokens.registry", "spark_secrets.tokens.kafka"} <= renew


def test_one_commands_parser_is_the_whole_parsers_part() -> None:
    """``build_parser(argv)`` adds only the command argv names: the same subparser as in the whole parser,
    which lists every command of :data:`~spark_secrets.cli.parser.COMMANDS` in that order."""
    from spark_secrets.cli.parser import COMMANDS as ORDER
    from spark_secrets.cli.parser import build_parser

    def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(action.choices)

    whole = commands(build_parser())
    assert list(whole) == [name for name, _, _ in ORDER]
    for name, sub in whole.items():
        alone = commands(build_parser([name, "--help"]))
        assert list(alone) == [name] and alone[name].format_help() == sub.format_help()
    assert list(commands(build_parser(["--help"]))) == list(whole)
    assert list(commands(build_parser(["tokns"]))) == list(whole)  # a misspelt command: the message lists all


#: What the standard library would add to a cold fetch of an ``http://`` filesystem, which does without it
#: (issue 33): http.client's header parsing (email), TLS, dataclasses, tempfile, the IDNA codec, and logging while
#: nothing has configured it (spark_secrets.logs).
STDLIB_NOT_FOR_A_FETCH = frozenset({"http.client", "email", "ssl", "dataclasses", "tempfile", "encodings.idna",
                                    "logging"})


def test_a_fetch_loads_no_http_client_tls_nor_dataclasses(tmp_path: Path) -> None:
    """Modules the interpreter had before any command ran (site's hooks may load tempfile) do not count.
    Controls: ``secrets list`` (requests) loads http.client, email, TLS and logging; ``status`` loads dataclasses."""
    _, before, _ = _run([], tmp_path)
    statuses, fetch, _ = _run([COMMANDS["tokens fetch"][0]], tmp_path)
    assert statuses == [2] and "spark_secrets.transport" in fetch  # it got as far as connecting
    assert STDLIB_NOT_FOR_A_FETCH & (fetch - before) == set()
    statuses, others, _ = _run([COMMANDS["secrets list"][0], COMMANDS["status"][0]], tmp_path)
    assert statuses == [2, 2]
    assert {"http.client", "email", "ssl", "dataclasses", "logging"} <= others - before


#: Runs the console script's ``run`` on argv[1] (JSON); at exit, prints the collector's thresholds and how many
#: objects were frozen; or, with argv[2] "main", calls ``main`` as a test or a notebook would.
GC_RUN = """
import atexit, gc, json, sys
atexit.register(lambda: print(json.dumps({"thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()})))
from spark_secrets.cli.main import main, run
mode = sys.argv[2]
sys.argv = ["spark-secrets", *json.loads(sys.argv[1])]
sys.exit(main()) if mode == "main" else run()
"""


@pytest.mark.parametrize("argv, lasting", [(["tokens", "show", "{tmp}/none.tokens"], False),
                                           (["status", "--watch", "0.5"], False),  # refused before it waits
                                           (["status", "--watch", "5"], True),
                                           (["renewer", "--keytab", "{tmp}/none.keytab", "--principal", "renew"], True),
                                           (["submit", *SUBMIT_ARGS], True)])
def test_the_console_script_tunes_the_collector_for_a_command_that_ends(
        argv: list[str], lasting: bool, tmp_path: Path) -> None:
    """A command that ends soon runs with the collector waiting for 100,000 objects and freezes all of them at
    the end (cold-start time, issue 33); a command that may run for hours gets the collector's own thresholds."""
    import gc

    from spark_secrets.cli.options import SHORT_RUN_THRESHOLDS

    port = free_port()
    env = _isolated(tmp_path, port)
    argv = [a.format(tmp=tmp_path, port=port) for a in argv]

    def report(mode: str) -> dict[str, list[int] | int]:
        out = subprocess.run([sys.executable, "-c", GC_RUN, json.dumps(argv), mode], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        return json.loads(out.stdout.splitlines()[-1])

    ran = report("run")
    assert ran["thresholds"] == list(gc.get_threshold() if lasting else SHORT_RUN_THRESHOLDS), ran
    assert ran["frozen"] > 10_000, ran  # every object, the modules' included
    # Control: main() as a test or a notebook calls it leaves the collector as it was.
    called = report("main")
    assert called == {"thresholds": list(gc.get_threshold()), "frozen": 0}, called


def test_no_named_tuple_under_postponed_annotations() -> None:
    """Under ``from __future__ import annotations`` a field's type is a string, and typing.NamedTuple compiles each
    into a ForwardRef as the class is made: 1.2 ms for the identifier's seven fields, against 0.3 ms without."""
    import re

    defining = {str(path.relative_to(ROOT)): text for path in sorted((ROOT / "spark_secrets").rglob("*.py"))
                if re.search(r"^class \w+\((typing\.)?NamedTuple\)", text := path.read_text(), re.M)}
    assert [name for name, text in defining.items() if "from __future__ import annotations" in text] == []
    # Control: the search finds the modules that define named tuples (those of the fetch path: seven).
    assert len(defining) >= 7
