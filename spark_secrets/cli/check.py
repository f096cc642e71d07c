"""``spark-secrets doctor|status``: what a job depends on, checked before it runs, and running jobs' tokens."""

from __future__ import annotations

import argparse
import json

from spark_secrets.cli.options import lasting
from spark_secrets.errors import ConfigError


def cmd_doctor(args: argparse.Namespace) -> int:
    from spark_secrets.check import examine
    from spark_secrets.duration import parse_duration
    from spark_secrets.kube.client import KubeClient
    from submit_steps.sparkconf import conf_from_submit_args

    duration = parse_duration("--duration", args.duration) if args.duration else None
    spark_args = list(args.spark_args)
    conf = conf_from_submit_args(spark_args[1:] if spark_args[:1] == ["--"] else spark_args)
    quiet = args.json
    report = examine(conf, lambda: KubeClient.from_config(args.kubeconfig), probe_tokens=args.probe, duration=duration,
                     connect=args.connect,
                     on_check=lambda check: None if quiet else print(check.line(), flush=True))
    print(report.to_json() if args.json else report.summary())
    return report.exit_status


def cmd_status(args: argparse.Namespace) -> int:
    import datetime as dt
    import time

    from spark_secrets.kube.client import KubeClient
    from spark_secrets.check.status import job_statuses

    if args.watch is not None and args.watch < 1:
        raise ConfigError(f"--watch {args.watch}", "give an interval of 1 second or more")
    if args.watch is not None:
        lasting()
    kube = KubeClient.from_config(args.kubeconfig)
    namespace = None if args.all_namespaces else (args.namespace or kube.namespace)
    shown = None
    while True:
        jobs = job_statuses(kube, namespace, args.name)
        if args.json:
            text = json.dumps([j.as_dict() for j in jobs], indent=2)
        else:
            text = "\n".join(line for j in jobs for line in j.lines()) or f"no token Secrets in {namespace or 'any namespace'}"
        if text != shown:
            if args.watch is not None and not args.json:
                print(f"-- {dt.datetime.now(dt.timezone.utc).strftime('%H:%M:%S')}Z")
            print(text, flush=True)
            shown = text
        if args.watch is None:
            return 0
        time.sleep(args.watch)


def add_doctor_parser(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="check, before submitting, everything a job's HDFS, metastore and Kafka access depends on",
        description="Runs, for the spark-submit options given, every check the submission and the running job "
                    "depend on, creating nothing: your ticket and its lifetime, each filesystem's NameNodes (which "
                    "is active) and WebHDFS login, the Hive metastore's Kerberos login when the job names one, "
                    "your and the driver account's RBAC, the renew service (running, its principal against the "
                    "tokens' renewer, its access to the namespace), the token refresher "
                    "in cluster mode, and with --duration the job's length against the tokens' lifetimes. One line "
                    "per check: ✔ fine, ! worth knowing, ✗ would fail (with the fix). Exit status 0 when nothing "
                    "would fail, 1 otherwise.",
        epilog="example: spark-secrets doctor --probe --duration 3d -- --deploy-mode cluster "
               "--conf spark.kubernetes.namespace=alice --conf spark.secrets.hadoop.filesystems=hdfs://prod-ns")
    doctor.add_argument("--probe", action="store_true",
                        help="also obtain, renew and cancel a token per filesystem, metastore and Kafka cluster "
                             "(learns lifetimes)")
    doctor.add_argument("--connect", action="store_true",
                        help="also check this machine as a notebook of your Spark Connect server: pyspark's Connect "
                             "client installed, and your running server (if any) reachable where connect() looks")
    doctor.add_argument("--duration", metavar="D", help="how long the job will run (90min, 12h, 3d)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    doctor.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-OPTIONS")
    doctor.set_defaults(func=cmd_doctor)


def add_status_parser(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status", help="show running jobs' tokens: expiry, next and last renewal, pods, Events",
        description="For each token Secret (of one job, by Secret or app name, or all in the namespace): each "
                    "token's kind, service, owner, renewer and dates, when the tokens expire, what the renew service "
                    "does next and did last (and which principal did it), the pods that mount the Secret and "
                    "whether they run, and the Events about it. Reads only the Secrets' metadata: the tokens "
                    "themselves never reach this command.",
        epilog="example: spark-secrets status etl -n spark-alice --watch 10")
    status.add_argument("name", nargs="?", help="a token Secret's name or a job's app name (default: all)")
    status.add_argument("--namespace", "-n", help="namespace (default: the kubeconfig's)")
    status.add_argument("--all-namespaces", "--all", "-A", action="store_true", help="every namespace you may list")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", "-w", type=float, nargs="?", const=5.0, metavar="SECONDS",
                        help="keep going, printing again whenever something changes (every 5 s by default)")
    status.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    status.set_defaults(func=cmd_status)
