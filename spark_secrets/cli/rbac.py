"""``spark-secrets rbac|jar``: what an admin installs: the RBAC manifests of a layout, the JVM plugin's jar."""

from __future__ import annotations

import argparse
import re
import sys

from spark_secrets.cli.options import PROG
from spark_secrets.errors import ConfigError


def rbac_yaml(args: argparse.Namespace) -> str:
    """The manifests ``spark-secrets rbac`` prints, headed by the command that makes them."""
    import shlex

    import yaml

    from spark_secrets.kube import rbac

    submitters = []
    for text in args.submitter or ():
        who, sep, owners = text.partition("=")
        names = [o.strip() for o in owners.split(",") if o.strip()]
        if not sep or not who.strip() or not names or any(not re.fullmatch(r"[A-Za-z0-9_.*-]+", o) for o in names):
            raise ConfigError(f"--submitter {text!r} is not USER=OWNER[,OWNER...]",
                              "e.g. --submitter system:serviceaccount:airflow:worker=alice,bob")
        submitters.append((who.strip(), names))
    if submitters and args.layout != "common":
        raise ConfigError("--submitter belongs to the common manifests", "use it with: spark-secrets rbac common")
    if args.layout == "common":
        manifests = rbac.common(renewer_namespace=args.renewer_namespace, submitters=submitters)
    else:
        manifests = rbac.layout(args.layout, users=args.user or (), group_name=args.group, namespace=args.namespace,
                                renewer_namespace=args.renewer_namespace)
    argv = ["rbac", args.layout, *(f"--user={u}" for u in args.user or ())]
    argv += [f"--{k}={v}" for k, v in (("group", args.group), ("namespace", args.namespace)) if v]
    argv += [f"--submitter={text}" for text in args.submitter or ()]
    if args.renewer_namespace != rbac.RENEWER_NAMESPACE:
        argv.append(f"--renewer-namespace={args.renewer_namespace}")
    header = f"# {PROG} {shlex.join(argv)}\n# {len(manifests)} objects; apply with kubectl apply -f\n"
    return header + yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True, default_flow_style=None,
                                       width=120)


def cmd_rbac(args: argparse.Namespace) -> int:
    print(rbac_yaml(args), end="")
    return 0


def cmd_jar(args: argparse.Namespace) -> int:
    from spark_secrets.plugin.jar import PLUGIN_CLASS, PluginError, jar_path

    try:
        jar = jar_path(build_if_missing=False)
    except PluginError:
        print("building the plugin jar from the installed sources (once) ...", file=sys.stderr, flush=True)
        jar = jar_path()
    if args.conf:
        print(f"--jars {jar} --conf spark.plugins={PLUGIN_CLASS}")
    else:
        print(jar)
    return 0


def add_rbac_parser(sub: argparse._SubParsersAction) -> None:
    rbac = sub.add_parser(
        "rbac", help="print the RBAC manifests of an access-control layout for token Secrets",
        description="Prints Kubernetes manifests (YAML) so that a job owner's token Secrets are readable only by "
                    "that owner's pods and the renew service, and the renew keytab only by the renew service. "
                    "Apply 'common' once (the renew service's namespace, account, keytab and lease access, and "
                    "the ClusterRoles), then one layout per group of users. See conf/rbac/README.md.",
        epilog="layouts: namespace-per-user (spark-<user> per --user); group (spark-<group>, members share "
               "tokens); precreated (one namespace per --group, a Secret hadoop-tokens-<user> per --user, "
               "restricted by resourceNames); controller (shared --namespace, the renew service with --grant-access "
               "grants each job's spark-<user> account get on its own Secret)")
    rbac.add_argument("layout", choices=("common", "namespace-per-user", "group", "precreated", "controller"))
    rbac.add_argument("--user", action="append", help="a user (Kubernetes user name = Kerberos short name); repeatable")
    rbac.add_argument("--group", help="the Kubernetes group of the users (group, precreated)")
    rbac.add_argument("--submitter", action="append", metavar="USER=OWNER[,OWNER...]",
                      help="common: a Kubernetes user or service account that may create token Secrets for these "
                           "owners (e.g. an Airflow worker; * for anyone); repeatable")
    rbac.add_argument("--namespace", help="the namespace (controller; overrides spark-<group> for group layouts)")
    rbac.add_argument("--renewer-namespace", default="spark-secrets-system",
                      help="where the renew service runs (default spark-secrets-system)")
    rbac.set_defaults(func=cmd_rbac)


def add_jar_parser(sub: argparse._SubParsersAction) -> None:
    jar = sub.add_parser(
        "jar", help="print the path of the JVM refresher plugin's jar (for --jars / spark.jars)",
        description="Prints the path of the Spark plugin jar that re-reads the mounted token file in the driver "
                    "and executors. Enable it with spark.plugins=io.sparksecrets.plugin.TokenRefreshPlugin. "
                    "For cluster mode, copy the jar into the image and give its local:// path.",
        epilog="example: spark-submit $(spark-secrets jar --conf) ... ; COPY it to /opt/spark/jars/ in an image")
    jar.add_argument("--conf", action="store_true", help="print spark-submit flags (--jars and spark.plugins) instead")
    jar.set_defaults(func=cmd_jar)
