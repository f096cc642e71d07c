"""``spark-secrets connect``: start, or find, your own Spark Connect server and print its ``sc://`` address."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from spark_secrets.cli.options import lasting
from spark_secrets.cli.options import spark_args as _spark_args


def cmd_connect(args: argparse.Namespace) -> int:
    from submit_steps.connectserver import ConnectServers
    from submit_steps.sparkconf import conf_from_submit_args

    lasting()  # it may wait minutes for the server's pod

    conf = conf_from_submit_args(_spark_args(args))
    servers = ConnectServers(conf, kubeconfig=args.kubeconfig)
    user = servers.user()
    server = servers.find(user) or servers.start(user)
    if args.token_file:
        path = Path(args.token_file)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
        with os.fdopen(fd, "w") as out:
            out.write(server.token)
        print(f"spark-secrets: the server's bearer token is in {path} (0600)", file=sys.stderr)
    print(server.url)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    connect = sub.add_parser(
        "connect", help="start (or find) your own Spark Connect server on Kubernetes and print its sc:// address",
        description="Finds your live Spark Connect server in spark.kubernetes.namespace, or starts one: a "
                    "cluster-mode Spark application whose driver pod runs Spark's Connect service, with the job's "
                    "token Secret (kept alive by the renew service while the server runs, queries or not), the "
                    "refresher plugin and the job's secrets. No JVM runs here. The server accepts only calls with "
                    "its bearer token, kept in a Secret of the server's and never in the address; it stops after "
                    "spark.secrets.connect.idleTimeout (default 30min) without a call or running work. From Python, "
                    "submit_steps.notebook.connect() returns a session directly.",
        epilog="example: spark-secrets connect --token-file ~/.spark-connect-token -- --master k8s://https://api:6443 "
               "--conf spark.kubernetes.namespace=alice --conf spark.kubernetes.container.image=my-spark:4.3 "
               "--conf spark.secrets.hadoop.filesystems=hdfs://prod")
    connect.add_argument("--token-file", metavar="FILE",
                         help="write the server's bearer token to FILE (mode 0600), for a client of your own")
    connect.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    connect.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-OPTIONS")
    connect.set_defaults(func=cmd_connect)
