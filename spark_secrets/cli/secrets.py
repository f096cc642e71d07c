"""``spark-secrets secrets set|get|list|delete``: a team's secrets in OpenBao/Vault KV v2, VDK-style.

A value never comes from an argument (it would land in shell history and ``ps``): ``set`` reads it from
standard input (a prompt on a terminal) or ``--from-file``. ``get`` shows a secret's metadata and prints
the value only with ``--reveal``. Each command prints the ``vault:`` reference a job names it by.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.errors import ConfigError, VaultNotFound

if TYPE_CHECKING:
    from spark_secrets.jobsecrets.vault import VaultClient


def _location(args: argparse.Namespace) -> tuple[str, str]:
    """(mount, path) of NAME under --path."""
    parts = [p for p in f"{args.path or ''}/{args.name}".split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ConfigError(f"{args.name!r} under --path {args.path!r} is not a secret's path", "give NAME like db-password")
    return args.mount.strip("/"), "/".join(parts)


def _client(args: argparse.Namespace) -> VaultClient:
    """Imported here, not with the parser: hvac and requests are a fifth of a second of every command's start."""
    from spark_secrets.jobsecrets.vault import VaultClient, VaultConfig

    return VaultClient(VaultConfig.create(address=args.address, namespace=args.namespace, ca_cert=args.ca_cert))


def _read_value(args: argparse.Namespace) -> str:
    if args.from_file is not None:
        try:
            raw = Path(args.from_file).read_bytes()
        except OSError as exc:
            raise ConfigError(f"--from-file {args.from_file} cannot be read ({exc.strerror})", "give a readable file") from None
    elif sys.stdin.isatty():
        raw = getpass.getpass(f"value of {args.name} (not echoed): ").encode()
    else:
        raw = sys.stdin.buffer.read()
        raw = raw[:-1] if raw.endswith(b"\n") else raw  # `echo value |` adds one
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("the value is not UTF-8 text", "store binary data base64-encoded") from None


def cmd_set(args: argparse.Namespace) -> int:
    mount, path = _location(args)
    value = _read_value(args)  # before any network call: nothing half-done on bad input
    if not value:
        raise ConfigError("the value is empty", "pipe the value in, or give --from-file")
    client = _client(args)
    try:
        fields = dict(client.read(mount, path).data)
    except VaultNotFound:
        fields = {}
    fields[args.field] = value
    version = client.write(mount, path, fields)
    print(f"stored {mount}/{path} field {args.field} (version {version}); a job names it "
          f"vault:{mount}/{path}#{args.field}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    mount, path = _location(args)
    kv = _client(args).read(mount, path, args.version)
    if args.reveal:
        if args.field not in kv.data:
            raise ConfigError(f"{mount}/{path} has no field {args.field!r}", f"its fields are {', '.join(sorted(kv.data))}")
        sys.stdout.write(str(kv.data[args.field]))
        if sys.stdout.isatty():
            sys.stdout.write("\n")
        return 0
    print(f"{mount}/{path}  version {kv.version}")
    for name in sorted(kv.data):
        print(f"  {name}: {len(str(kv.data[name]))} characters  (vault:{mount}/{path}#{name})")
    print("(values hidden: add --reveal to print one)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    mount = args.mount.strip("/")
    path = (args.path or "").strip("/")
    names = _client(args).list(mount, path)
    for name in names:
        print(f"{path + '/' if path else ''}{name}")
    if not names:
        print(f"no secrets under {mount}/{path}", file=sys.stderr)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    mount, path = _location(args)
    _client(args).delete(mount, path)
    print(f"deleted {mount}/{path} (every version)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    secrets = sub.add_parser(
        "secrets", help="set, get, list or delete a team's secrets in OpenBao/Vault (KV v2)",
        description="A team's secrets in OpenBao/Vault, for jobs to name with spark.secrets.file.<name> or "
                    "spark.secrets.env.<VAR> = vault:<mount>/<path>#<field>. Logs in as the bao/vault CLI does: "
                    "VAULT_TOKEN or BAO_TOKEN, else ~/.vault-token.",
        epilog="example: printf %s \"$PW\" | spark-secrets secrets set db-password --path team/etl")
    ssub = secrets.add_subparsers(dest="secrets_command", metavar="ACTION", required=True, prog=secrets.prog)

    def common(p: argparse.ArgumentParser, named: bool = True) -> None:
        if named:
            p.add_argument("name", metavar="NAME", help="the secret's name (its last path part)")
        p.add_argument("--path", default="", help="the folder it is in, e.g. team/etl (default: the mount's top)")
        p.add_argument("--mount", default="secret", help="the KV v2 mount (default: secret)")
        p.add_argument("--address", help="OpenBao/Vault URL (default: VAULT_ADDR, else BAO_ADDR)")
        p.add_argument("--namespace", help="OpenBao/Vault namespace (default: VAULT_NAMESPACE)")
        p.add_argument("--ca-cert", metavar="PEM", help="CA of the server's certificate (default: VAULT_CACERT)")

    p = ssub.add_parser("set", help="store a value (from standard input or --from-file, never an argument)")
    common(p)
    p.add_argument("--field", default="value", help="the field to set; the secret's other fields are kept "
                                                    "(default: value)")
    p.add_argument("--from-file", metavar="FILE", help="read the value from FILE instead of standard input")
    p.set_defaults(func=cmd_set)

    p = ssub.add_parser("get", help="show a secret's fields and version; its value only with --reveal")
    common(p)
    p.add_argument("--field", default="value", help="the field --reveal prints (default: value)")
    p.add_argument("--version", type=int, help="an older version (default: the current one)")
    p.add_argument("--reveal", action="store_true", help="print the field's value to standard output")
    p.set_defaults(func=cmd_get)

    p = ssub.add_parser("list", help="list the secrets under --path")
    common(p, named=False)
    p.set_defaults(func=cmd_list)

    p = ssub.add_parser("delete", help="delete a secret with every version")
    common(p)
    p.set_defaults(func=cmd_delete)
