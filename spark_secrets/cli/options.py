"""What several commands share: the program's name, the Kerberos login options and login, the CA bundle,
and the spark-submit arguments after ``--``."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.errors import ConfigError

if TYPE_CHECKING:
    from spark_secrets.login.spnego import SpnegoAuth
    from spark_secrets.tokens.kafka import KafkaCluster

PROG = "spark-secrets"

#: The collector's thresholds while a command that ends soon runs (:func:`spark_secrets.cli.main.run`): a
#: collection per 100,000 new objects, not 700. Such a command makes long-lived objects (modules, classes) and
#: little garbage, and all of it goes at exit.
SHORT_RUN_THRESHOLDS = (100_000, 50, 100)
_THRESHOLDS = gc.get_threshold()


def lasting() -> None:
    """Called first by a command that may run for long (the renew service, a submission waiting for its driver,
    ``status --watch``): the collector's own thresholds back."""
    gc.set_threshold(*_THRESHOLDS)


def auth(args: argparse.Namespace) -> SpnegoAuth:
    """A SPNEGO login: from --keytab (a private ticket cache), else the user's ticket cache."""
    from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
    from spark_secrets.login.spnego import SpnegoAuth

    if getattr(args, "keytab", None):
        if not args.principal:
            raise ConfigError("--keytab needs --principal", "name the principal whose key the keytab holds")
        ccache = Path(args.ccache or Path.home() / ".cache" / "spark-secrets" / "keytab-ccache")
        ccache.parent.mkdir(parents=True, exist_ok=True)
        return SpnegoAuth(keytab_login(args.principal, Path(args.keytab), ccache).credentials)
    return SpnegoAuth(current_ticket_cache().credentials)


def verify(args: argparse.Namespace) -> bool | str:
    """``verify=`` for HTTPS servers: --ca-bundle (which must exist), else the system's CAs."""
    bundle = getattr(args, "ca_bundle", None)
    if bundle is not None and not Path(bundle).is_file():
        raise ConfigError(f"--ca-bundle {bundle}: no such file", "give a PEM file of CA certificates")
    return bundle or True


def spark_args(args: argparse.Namespace) -> list[str]:
    """The spark-submit arguments after ``--`` (at least one)."""
    spark_args = list(args.spark_args)
    if spark_args[:1] == ["--"]:
        spark_args = spark_args[1:]
    if not spark_args:
        raise ConfigError("no spark-submit arguments", f"use: {PROG} {args.command} -- <spark-submit arguments>")
    return spark_args


def login_options(p: argparse.ArgumentParser) -> None:
    """The Kerberos login and CA options of the commands that talk to Hadoop servers."""
    g = p.add_argument_group("Kerberos login (default: your ticket cache, KRB5CCNAME honoured)")
    g.add_argument("--keytab", help="log in from this keytab instead (services)")
    g.add_argument("--principal", help="the principal in --keytab")
    g.add_argument("--ccache", help="private ticket cache for the keytab login")
    p.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust for https:// NameNodes "
                                                       "(default: the system's; REQUESTS_CA_BUNDLE honoured)")


def kafka_clusters(values: list[str] | None) -> list[KafkaCluster]:
    """The ``--kafka-cluster`` values (Kafka targets, ``kafka://host:port[,...]/<id>[?setting=value]``), parsed;
    a malformed one is one line naming the option."""
    from spark_secrets.tokens.kafka import KafkaCluster

    try:
        return [KafkaCluster.parse(value) for value in values or []]
    except ConfigError as exc:
        raise ConfigError(f"--kafka-cluster {exc.problem}", exc.fix) from None
