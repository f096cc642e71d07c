"""``spark-secrets tokens fetch|show|renew|cancel``: Hadoop token files (``HADOOP_TOKEN_FILE_LOCATION``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from spark_secrets.cli.options import auth as _auth
from spark_secrets.cli.options import kafka_clusters as _kafka_clusters
from spark_secrets.cli.options import login_options as _login_options
from spark_secrets.cli.options import verify as _verify
from spark_secrets.errors import ConfigError, SparkSecretsError
from spark_secrets.hadoop.credentials import PROTOBUF, WRITABLE, Credentials
from spark_secrets.hadoop.token import Token, describe_token, utc_text

if TYPE_CHECKING:
    from spark_secrets.tokens.metastore import Metastore
    from spark_secrets.tokens.provider import TokenContext


def cmd_tokens_fetch(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.fetcher import obtain_tokens

    problems: list[SparkSecretsError] = []
    creds = obtain_tokens(args.filesystem, args.renewer, _auth(args), doas=args.doas, verify=_verify(args),
                          kms_problems=problems)
    for problem in problems:  # the HDFS tokens are still written: only encryption zones need the KMS
        print(f"warning: no KMS token, so encryption zones cannot be read with this file: {problem}", file=sys.stderr)
    path = creds.save(args.output, version=args.format)
    print(f"wrote {len(creds)} tokens to {path} (format version {args.format}, mode 0600)")
    for token in creds.tokens.values():  # not describe_token: its fingerprint would load OpenSSL's hashes
        ident = token.decode_identifier()
        facts = f"owner={ident.owner} renewer={ident.renewer} max={utc_text(ident.max_date)}" if ident else ""
        print(f"  {token.kind:<22} {token.service:<24} {facts}".rstrip())
    return 0


def cmd_tokens_show(args: argparse.Namespace) -> int:
    creds = Credentials.load(args.file)
    rows = [describe_token(alias, token) for alias, token in creds.tokens.items()]
    if args.json:
        print(json.dumps({"tokens": rows, "secret_keys": sorted(creds.secret_keys)}, indent=2))
        return 0
    print(f"{args.file}: {len(rows)} token(s), {len(creds.secret_keys)} secret key(s)")
    for row in rows:
        print(f"- {row['kind']} for {row['service']} (alias {row['alias']}, id {row['id']})")
        if "owner" in row:
            real = f" via {row['real_user']}" if row.get("real_user") else ""
            print(f"    owner {row['owner']}{real}, renewer {row['renewer'] or '(none)'}, "
                  f"sequence {row['sequence_number']}, master key {row['master_key_id']}")
            print(f"    issued {row['issue_date']}, cannot live past {row['max_date']}")
    return 0


def _groups(creds: Credentials, filesystem: str | None):
    """One (NameNodes to ask, token) per distinct token identifier in ``creds``."""
    from spark_secrets.hadoop.conf import FileSystemTarget, resolve_filesystem
    from spark_secrets.tokens.namenodes import namenodes_for
    from spark_secrets.tokens.registry import for_token

    by_id: dict[bytes, list[Token]] = {}
    for token in creds:
        if token.is_delegation_token:
            by_id.setdefault(token.identifier, []).append(token)
    if not by_id:
        raise ConfigError("the token file holds no delegation tokens")
    out: list[tuple[FileSystemTarget | None, Token]] = []
    for tokens in by_id.values():
        if for_token(tokens[0]).kind != "hdfs":
            out.append((None, tokens[0]))  # a KMS token names its KMS; the metastore comes from the settings
            continue
        if filesystem is not None:
            out.append((resolve_filesystem(filesystem), tokens[0]))
            continue
        # A WebHDFS token names the HTTP address (or nameservice) directly; prefer it.
        tokens.sort(key=lambda t: "WEBHDFS" not in t.kind)
        out.append((namenodes_for(tokens[0]), tokens[0]))
    return out


def _metastore(args: argparse.Namespace) -> Metastore:
    """The metastore a Hive token goes back to: --hive-metastore-uris/--hive-principal, else hive-site.xml."""
    from spark_secrets.hadoop.conf import HadoopConf
    from spark_secrets.tokens.metastore import Metastore

    metastore = Metastore.configured(HadoopConf.load().get, args.hive_metastore_uris, args.hive_principal)
    if metastore is None:
        raise ConfigError("the file holds a Hive metastore token but no metastore is named",
                          "give --hive-metastore-uris and --hive-principal (or a hive-site.xml in HADOOP_CONF_DIR)")
    return metastore


def _each(args: argparse.Namespace, act: Callable[[Token, TokenContext], None]) -> None:
    """Hand each distinct token in the file to its kind's provider, with what that provider needs to reach it."""
    from spark_secrets.tokens.provider import TokenContext
    from spark_secrets.tokens.registry import for_token

    groups = _groups(Credentials.load(args.file), args.filesystem)
    metastore = _metastore(args) if any(for_token(t).kind == "hive" for _, t in groups) else None
    kafka = _kafka_conf(args, [t for _, t in groups if for_token(t).kind == "kafka"])
    auth = _auth(args)
    for target, token in groups:
        act(token, TokenContext(auth=lambda: auth, verify=_verify(args), metastore=metastore, filesystem=target,
                                conf=kafka))


def _kafka_conf(args: argparse.Namespace, tokens: list[Token]) -> dict[str, str]:
    """The brokers of each Kafka token's cluster, from --kafka-cluster (a Kafka token names only its cluster)."""
    from spark_secrets.tokens.kafka import cluster_of, conf_of_targets

    targets = args.kafka_cluster or []
    named = {cluster.cluster for cluster in _kafka_clusters(targets)}
    for token in tokens:
        cluster = cluster_of(token)
        if cluster not in named:
            raise ConfigError(f"the file holds a Kafka token of cluster {cluster}, but no --kafka-cluster names its "
                              "brokers", f"give --kafka-cluster kafka://HOST:PORT/{cluster}")
    return conf_of_targets(targets)


def cmd_tokens_renew(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.registry import renew_any

    def renew(token: Token, ctx: TokenContext) -> None:
        print(f"renewed {token!r}: now expires {utc_text(renew_any(token, ctx))}")

    _each(args, renew)
    return 0


def cmd_tokens_cancel(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.registry import cancel_any

    def cancel(token: Token, ctx: TokenContext) -> None:
        cancel_any(token, ctx)
        print(f"cancelled {token!r}")

    _each(args, cancel)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    tokens = sub.add_parser("tokens", help="fetch, show, renew or cancel HDFS delegation tokens",
                            description="Work with Hadoop token files (the HADOOP_TOKEN_FILE_LOCATION format).")
    tsub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True, prog=tokens.prog)

    fetch = tsub.add_parser("fetch", help="obtain delegation tokens over WebHDFS (SPNEGO) into a token file")
    fetch.add_argument("output", type=Path, help="token file to write (mode 0600)")
    fetch.add_argument("--filesystem", "--namenode", dest="filesystem", action="append", required=True, metavar="FS",
                       help="filesystem to obtain a token for (repeatable): hdfs://<nameservice> (HA, NameNodes from "
                            "HADOOP_CONF_DIR, standbys skipped), hdfs://host:port, webhdfs://, swebhdfs://, or a "
                            "NameNode's WebHDFS address such as http://nn.example.com:9870")
    fetch.add_argument("--renewer", help="who may renew the tokens: the renew service's principal or short name "
                                         "(default: yourself)")
    fetch.add_argument("--doas", metavar="USER", help="obtain tokens owned by USER (needs proxy-user rights)")
    fetch.add_argument("--format", type=int, choices=[WRITABLE, PROTOBUF], default=WRITABLE,
                       help="token file format: 0 = Writable (Hadoop 2 and 3; default), 1 = protobuf (Hadoop 3)")
    _login_options(fetch)
    fetch.set_defaults(func=cmd_tokens_fetch)

    show = tsub.add_parser("show", help="print the tokens in a token file (never their passwords)")
    show.add_argument("file", type=Path)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_tokens_show)

    for name, func, helptext in (("renew", cmd_tokens_renew, "extend the tokens' expiry (as their renewer)"),
                                 ("cancel", cmd_tokens_cancel, "make the servers (NameNode, KMS, metastore, Kafka) "
                                                               "forget the tokens")):
        p = tsub.add_parser(name, help=helptext)
        p.add_argument("file", type=Path)
        p.add_argument("--filesystem", "--namenode", dest="filesystem", metavar="FS",
                       help="where the HDFS tokens were issued, in any --filesystem form of 'fetch' (default: from "
                            "the tokens' service, with HADOOP_CONF_DIR for nameservices; a KMS token's service "
                            "names its KMS)")
        p.add_argument("--hive-metastore-uris", metavar="URIS",
                       help="where a Hive metastore token goes (default: hive.metastore.uris from hive-site.xml)")
        p.add_argument("--hive-principal", metavar="PRINCIPAL",
                       help="that metastore's principal (default: hive.metastore.kerberos.principal)")
        p.add_argument("--kafka-cluster", action="append", metavar="kafka://HOST:PORT[,...]/ID[?KEY=VALUE]",
                       help="the brokers of a Kafka token's cluster (repeatable; the form `spark-secrets status` "
                            "shows; a query for security.protocol and sasl.kerberos.service.name when not "
                            "SASL_SSL and kafka)")
        _login_options(p)
        p.set_defaults(func=func)
