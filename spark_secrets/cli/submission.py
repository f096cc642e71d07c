"""``spark-secrets conf|render|submit``: the submission steps for spark-submit options, and what they give
(the --conf flags, a rendered job template, or spark-submit run with them)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.cli.options import lasting
from spark_secrets.cli.options import spark_args as _spark_args
from spark_secrets.errors import ConfigError

if TYPE_CHECKING:
    from submit_steps.spec import SubmissionSpec
    from submit_steps.submission import Submission


def _submission(spark_args: Sequence[str], kubeconfig: str | None, deploy_mode: str | None = None) -> Submission:
    from spark_secrets.kube.client import KubeClient
    from submit_steps.settings import Settings
    from submit_steps.sparkconf import conf_from_submit_args
    from submit_steps.submission import Submission

    conf = conf_from_submit_args(spark_args)
    settings = Settings(conf)
    if settings.enabled and not (settings.wants_tokens or settings.job_secrets):
        raise ConfigError("nothing to do: no filesystems or metastore to obtain tokens from, and no job secrets",
                          "add --conf spark.secrets.hadoop.filesystems=hdfs://<nameservice or namenode:port> "
                          "or --conf spark.secrets.file.<name>=<reference>")
    return Submission(conf, KubeClient.from_config(kubeconfig), deploy_mode=deploy_mode)


def _deploy_mode_note(submission: Submission) -> None:
    """``conf`` and properties cannot see the spark-submit line they end up on: say which mode they assumed."""
    from submit_steps.settings import DEPLOY_MODE

    if submission.settings.get(DEPLOY_MODE) is None:
        print("spark-secrets: no --deploy-mode given, so client mode (Spark's default): the driver uses this "
              "machine's plugin jar; give --deploy-mode cluster here too when spark-submit will run the driver "
              "in a pod", file=sys.stderr)


def cmd_conf(args: argparse.Namespace) -> int:
    import shlex

    submission = _submission(_spark_args(args), args.kubeconfig)
    _deploy_mode_note(submission)
    spec = submission.prepare()
    _spark_mounts_note(spec)
    print(shlex.join(spec.conf_flags()))
    return 0


def _spark_mounts_note(spec: SubmissionSpec) -> None:
    """Says where job-secret files keep Spark's own 0644 mounts (no pod template is written here)."""
    if spec.volumes:
        print("spark-secrets: job-secret files are Spark's own secret mounts here (mode 0644); spark-secrets "
              "submit or render --format pod-template mount them 0440 with the pods' fsGroup", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    import shlex

    import yaml

    from submit_steps.podtemplate import check_template
    from submit_steps.render import DEPLOY_MODES, render, template_conf
    from submit_steps.sparkapplication import check_application

    into = None
    if args.into is not None:
        try:
            into = yaml.safe_load(Path(args.into).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read --into {args.into}: {type(exc).__name__}",
                              "give a SparkApplication or pod template YAML file") from None
        wanted = {"spark-operator": "SparkApplication", "pod-template": "Pod"}.get(args.format)
        if wanted is None or not isinstance(into, dict) or into.get("kind") != wanted or not isinstance(
                into.get("spec") or {}, dict):
            raise ConfigError(f"--into {args.into} is not a {wanted or 'file this format merges into'}",
                              "--into takes a SparkApplication (spark-operator) or a pod template (pod-template)")
    submission = _submission(_spark_args(args), args.kubeconfig, DEPLOY_MODES[args.format])
    if DEPLOY_MODES[args.format] is None:
        _deploy_mode_note(submission)
    if into is not None and args.format == "pod-template":
        check_template(submission.settings, into, f"given with --into {args.into}")
    if into is not None and args.format == "spark-operator":
        check_application(into, submission.settings.conf.get("spark.kubernetes.namespace"), f"--into {args.into}")
    spec = submission.prepare()
    if args.format == "properties":
        _spark_mounts_note(spec)
    text = render(spec, args.format, into, f"--into {args.into}" if args.into else "")
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.format} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.format == "pod-template":
        print("use it as spark.kubernetes.driver.podTemplateFile and spark.kubernetes.executor.podTemplateFile, "
              f"with: {shlex.join(f'--conf={k}={v}' for k, v in template_conf(spec).items())}", file=sys.stderr)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    lasting()  # it waits for the driver pod to end
    spark_args = _spark_args(args)
    return _submission(spark_args, args.kubeconfig).run_spark_submit(spark_args, spark_submit=args.spark_submit)


def add_render_parser(sub: argparse._SubParsersAction) -> None:
    render = sub.add_parser(
        "render", help="obtain tokens, create the token Secret, render a properties file, SparkApplication or pod template",
        description="Runs the submission steps like 'conf' and renders what a job template needs to use the "
                    "token Secret: 'properties' (spark-defaults.conf lines or a --properties-file), "
                    "'spark-operator' (a SparkApplication with the conf in spec.sparkConf; --into merges it into "
                    "yours), or 'pod-template' (a pod template that mounts the Secret; the conf still needed "
                    "beside it goes to stderr). Only references to the Secret are rendered.",
        epilog="example: spark-secrets render --format spark-operator --into app.yaml -- --name etl "
               "--conf spark.kubernetes.namespace=alice --conf spark.secrets.hadoop.filesystems=hdfs://prod-ns")
    render.add_argument("--format", required=True, choices=["properties", "spark-operator", "pod-template"])
    render.add_argument("--into", metavar="YAML",
                        help="spark-operator: merge into this SparkApplication file; pod-template: into this "
                             "pod template (its first container gets the mount and the variable)")
    render.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    render.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    render.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-OPTIONS")
    render.set_defaults(func=cmd_render)


def add_conf_parser(sub: argparse._SubParsersAction) -> None:
    conf = sub.add_parser(
        "conf", help="obtain tokens, create the job's token Secret, print the --conf flags for spark-submit",
        description="Runs the submission steps for the spark-submit options given (--conf, --name, "
                    "--properties-file; spark-defaults.conf is read too): obtains delegation tokens from your "
                    "ticket cache, creates the per-job token Secret, and prints the --conf flags to add to an "
                    "unchanged spark-submit command. Progress goes to stderr, flags to stdout.",
        epilog="example: spark-submit $(spark-secrets conf -- --name etl --conf spark.kubernetes.namespace=alice "
               "--conf spark.secrets.hadoop.filesystems=http://nn:9870) --master k8s://... app.py")
    conf.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-OPTIONS")
    conf.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    conf.set_defaults(func=cmd_conf)


def add_submit_parser(sub: argparse._SubParsersAction) -> None:
    submit = sub.add_parser(
        "submit", help="run spark-submit with the token Secret wired in, clean up on failure, and exit with the "
                   "driver's outcome in cluster mode",
        description="Runs the submission steps, then spark-submit with the added flags. The Secret is "
                    "attached to the driver pod (deleted with it) as soon as the pod exists, and deleted "
                    "if the submission fails or, in client mode, when the job ends. Exits with spark-submit's "
                    "status, except in cluster mode when spark-submit waits for the app "
                    "(spark.kubernetes.submission.waitAppCompletion, default true): then with the driver's "
                    "outcome, 0 if its pod Succeeded, else its container's exit code (1 if none), with the "
                    "pod's last log lines on stderr; spark-submit's 0 if the pod cannot be read.",
        epilog="example: spark-secrets submit -- --master k8s://https://api:6443 --deploy-mode cluster "
               "--conf spark.secrets.hadoop.filesystems=http://nn:9870 local:///opt/app.py")
    submit.add_argument("--spark-submit", default="spark-submit", help="the spark-submit to run (default: on PATH)")
    submit.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    submit.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-ARGS")
    submit.set_defaults(func=cmd_submit)
