"""The Spark conf a ``spark-submit`` command line will run with: defaults file, properties file, flags."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from spark_secrets.errors import ConfigError

_PROPERTY = re.compile(r"^([^\s=:]+)(?:\s*[=:]\s*|\s+)(.*)$")
#: spark-submit options that take a value (SparkSubmitOptionParser); every other option is a switch.
VALUE_OPTIONS = frozenset({
    "--master", "--deploy-mode", "--class", "--name", "--jars", "--packages", "--exclude-packages",
    "--repositories", "--py-files", "--files", "--archives", "--conf", "-c", "--properties-file",
    "--driver-memory", "--driver-java-options", "--driver-library-path", "--driver-class-path",
    "--executor-memory", "--proxy-user", "--driver-cores", "--total-executor-cores", "--executor-cores",
    "--num-executors", "--principal", "--keytab", "--queue", "--kill", "--status", "--remote",
})
_FLAG_CONF = {"--name": "spark.app.name", "--master": "spark.master", "--deploy-mode": "spark.submit.deployMode"}


def read_properties(path: Path) -> dict[str, str]:
    """A Spark properties file (``key value`` or ``key=value`` lines, ``#`` comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read properties file {path}: {exc.strerror}") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = _PROPERTY.match(line)
        if match:
            out[match.group(1)] = match.group(2).strip()
        else:
            out[line] = ""
    return out


def defaults_file(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    for base in (env.get("SPARK_CONF_DIR"), env.get("SPARK_HOME") and f"{env['SPARK_HOME']}/conf"):
        if base and (Path(base) / "spark-defaults.conf").is_file():
            return Path(base) / "spark-defaults.conf"
    return None


def conf_from_submit_args(args: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The effective conf of ``spark-submit ARGS``: its properties file (or spark-defaults.conf),
    then ``--conf``, then the flags that are settings (``--name``, ``--master``, ``--deploy-mode``), which
    spark-submit prefers to a ``--conf`` of the same setting wherever each stands."""
    flags: dict[str, str] = {}
    options: dict[str, str] = {}
    properties: Path | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in VALUE_OPTIONS:
            if eq:
                value = inline
            else:
                if i + 1 >= len(args):
                    raise ConfigError(f"spark-submit option {name} has no value")
                i += 1
                value = args[i]
            if name in ("--conf", "-c"):
                key, sep, val = value.partition("=")
                if not sep:
                    raise ConfigError(f"--conf {value!r} is not key=value")
                flags[key] = val
            elif name == "--properties-file":
                properties = Path(value)
            elif name in _FLAG_CONF:
                options[_FLAG_CONF[name]] = value
        elif not arg.startswith("-"):
            break  # the application resource: everything after it belongs to the application
        i += 1
    source = properties or defaults_file(env)
    return {**(read_properties(source) if source else {}), **flags, **options}


def insert_conf_flags(args: Sequence[str], flags: Sequence[str]) -> list[str]:
    """``args`` with ``flags`` placed before the application resource (where spark-submit reads options)."""
    out = list(args)
    i = 0
    while i < len(out):
        arg = out[i]
        if not arg.startswith("-"):
            break
        if "=" not in arg and arg in VALUE_OPTIONS:
            i += 1  # skip the option's value
        i += 1
    return [*out[:i], *flags, *out[i:]]
