"""``spark-secrets``: delegation tokens for Spark on Kubernetes, from the command line.

Every failure is one line on stderr naming the problem and the fix (exit 2); no traceback,
and no token password, ever.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from spark_secrets.hadoop.credentials import PROTOBUF, WRITABLE, Credentials
from spark_secrets.errors import ConfigError, SparkSecretsError
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND, KMS_DELEGATION_KIND
from spark_secrets.hadoop.token import Token, describe_token, utc_text

if TYPE_CHECKING:
    from spark_secrets.tokens.metastore import Metastore
    from submit_steps.spec import SubmissionSpec

PROG = "spark-secrets"


# -- commands ---------------------------------------------------------------------------------------
def _auth(args: argparse.Namespace):
    from spark_secrets.login.kerberos import current_ticket_cache, keytab_login
    from spark_secrets.login.spnego import SpnegoAuth

    if getattr(args, "keytab", None):
        if not args.principal:
            raise ConfigError("--keytab needs --principal", "name the principal whose key the keytab holds")
        ccache = Path(args.ccache or Path.home() / ".cache" / "spark-secrets" / "keytab-ccache")
        ccache.parent.mkdir(parents=True, exist_ok=True)
        return SpnegoAuth(keytab_login(args.principal, Path(args.keytab), ccache).credentials)
    return SpnegoAuth(current_ticket_cache().credentials)


def cmd_tokens_fetch(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.fetcher import obtain_tokens

    problems: list[SparkSecretsError] = []
    creds = obtain_tokens(args.filesystem, args.renewer, _auth(args), doas=args.doas, verify=_verify(args),
                          kms_problems=problems)
    for problem in problems:  # the HDFS tokens are still written: only encryption zones need the KMS
        print(f"warning: no KMS token, so encryption zones cannot be read with this file: {problem}", file=sys.stderr)
    path = creds.save(args.output, version=args.format)
    print(f"wrote {len(creds)} tokens to {path} (format version {args.format}, mode 0600)")
    for alias, token in creds.tokens.items():
        d = describe_token(alias, token)
        print(f"  {d['kind']:<22} {d['service']:<24} owner={d.get('owner')} renewer={d.get('renewer')} "
              f"max={d.get('max_date')}")
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


def _verify(args: argparse.Namespace) -> bool | str:
    bundle = getattr(args, "ca_bundle", None)
    if bundle is not None and not Path(bundle).is_file():
        raise ConfigError(f"--ca-bundle {bundle}: no such file", "give a PEM file of CA certificates")
    return bundle or True


def _groups(creds: Credentials, filesystem: str | None):
    """One (NameNodes to ask, token) per distinct token identifier in ``creds``."""
    from spark_secrets.tokens.fetcher import namenodes_for
    from spark_secrets.hadoop.conf import FileSystemTarget, resolve_filesystem

    by_id: dict[bytes, list[Token]] = {}
    for token in creds:
        if token.is_delegation_token:
            by_id.setdefault(token.identifier, []).append(token)
    if not by_id:
        raise ConfigError("the token file holds no delegation tokens")
    out: list[tuple[FileSystemTarget | None, Token]] = []
    for tokens in by_id.values():
        if tokens[0].kind in (KMS_DELEGATION_KIND, HIVE_DELEGATION_KIND):
            out.append((None, tokens[0]))  # its KMS is in its service; the metastore comes from the settings
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

    conf = HadoopConf.load()
    uris = args.hive_metastore_uris or conf.get("hive.metastore.uris")
    if not uris:
        raise ConfigError("the file holds a Hive metastore token but no metastore is named",
                          "give --hive-metastore-uris and --hive-principal (or a hive-site.xml in HADOOP_CONF_DIR)")
    return Metastore.parse(uris, args.hive_principal or conf.get("hive.metastore.kerberos.principal"),
                           conf.get("hive.metastore.token.signature"))


def cmd_tokens_renew(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.fetcher import renew_token
    from spark_secrets.tokens.metastore import renew_hive_token

    groups = _groups(Credentials.load(args.file), args.filesystem)
    metastore = _metastore(args) if any(t.kind == HIVE_DELEGATION_KIND for _, t in groups) else None
    auth = _auth(args)
    for target, token in groups:
        if metastore is not None and token.kind == HIVE_DELEGATION_KIND:
            expiry = renew_hive_token(token, metastore, auth.credentials)
        else:
            expiry = renew_token(token, auth, target=target, verify=_verify(args))
        print(f"renewed {token!r}: now expires {utc_text(expiry)}")
    return 0


def cmd_tokens_cancel(args: argparse.Namespace) -> int:
    from spark_secrets.tokens.fetcher import cancel_token
    from spark_secrets.tokens.metastore import cancel_hive_token

    groups = _groups(Credentials.load(args.file), args.filesystem)
    metastore = _metastore(args) if any(t.kind == HIVE_DELEGATION_KIND for _, t in groups) else None
    auth = _auth(args)
    for target, token in groups:
        if metastore is not None and token.kind == HIVE_DELEGATION_KIND:
            cancel_hive_token(token, metastore, auth.credentials)
        else:
            cancel_token(token, auth, target=target, verify=_verify(args))
        print(f"cancelled {token!r}")
    return 0


def _submission(spark_args: Sequence[str], kubeconfig: str | None):
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
    return Submission(conf, KubeClient.from_config(kubeconfig))


def _spark_args(args: argparse.Namespace) -> list[str]:
    spark_args = list(args.spark_args)
    if spark_args[:1] == ["--"]:
        spark_args = spark_args[1:]
    if not spark_args:
        raise ConfigError("no spark-submit arguments", f"use: {PROG} {args.command} -- <spark-submit arguments>")
    return spark_args


def cmd_conf(args: argparse.Namespace) -> int:
    import shlex

    spec = _submission(_spark_args(args), args.kubeconfig).prepare()
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
    from submit_steps.render import render, template_conf

    into = None
    if args.into is not None:
        try:
            into = yaml.safe_load(Path(args.into).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read --into {args.into}: {type(exc).__name__}",
                              "give a SparkApplication or pod template YAML file") from None
        wanted = {"spark-operator": "SparkApplication", "pod-template": "Pod"}.get(args.format)
        if wanted is None or not isinstance(into, dict) or into.get("kind") != wanted:
            raise ConfigError(f"--into {args.into} is not a {wanted or 'file this format merges into'}",
                              "--into takes a SparkApplication (spark-operator) or a pod template (pod-template)")
    submission = _submission(_spark_args(args), args.kubeconfig)
    if into is not None and args.format == "pod-template":
        check_template(submission.settings, into, f"given with --into {args.into}")
    spec = submission.prepare()
    if args.format != "pod-template":
        _spark_mounts_note(spec)
    text = render(spec, args.format, into)
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
    spark_args = _spark_args(args)
    return _submission(spark_args, args.kubeconfig).run_spark_submit(spark_args, spark_submit=args.spark_submit)


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


def cmd_renewer(args: argparse.Namespace) -> int:
    import logging
    import signal

    from spark_secrets.hadoop.conf import HadoopConf
    from spark_secrets.kube.client import KubeClient
    from spark_secrets.tokens.metastore import Metastore
    from spark_secrets.renew import HealthServer, KeytabSession, Policy, RenewService
    from spark_secrets.duration import parse_duration
    from spark_secrets.renew.lease import LEASE_HEALTH, LeaderElector

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Every option is checked before the KDC or the API server is contacted.
    if not args.all_namespaces and not args.namespace:
        raise ConfigError("no namespaces to watch", "give --namespace NS (repeatable) or --all-namespaces")
    try:
        ratio = float(args.ratio)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio < 1:
        raise ConfigError(f"--ratio {args.ratio}", "use a fraction between 0 and 1, e.g. 0.75")
    reissue_before = parse_duration("--reissue-before", args.reissue_before)
    projection_bound = parse_duration("--projection-bound", args.projection_bound)
    if projection_bound.total_seconds() <= 0:
        raise ConfigError(f"--projection-bound {args.projection_bound}",
                          "use a positive duration: how long pods may use old tokens after a re-issue, e.g. 120s")
    lease_duration = parse_duration("--lease-duration", args.lease_duration).total_seconds()
    sweep_interval = parse_duration("--sweep-interval", args.sweep_interval).total_seconds()
    orphan_grace = parse_duration("--orphan-grace", args.orphan_grace)
    if args.lease and not re.fullmatch(r"([a-z0-9][-a-z0-9]*/)?[a-z0-9][-a-z0-9.]*", args.lease):
        raise ConfigError(f"--lease {args.lease!r} is not NAMESPACE/NAME", "e.g. spark-secrets-system/spark-secrets-renewer")
    if args.grant_access and "{owner}" not in args.grant_service_account and "{" in args.grant_service_account:
        raise ConfigError(f"--grant-service-account {args.grant_service_account!r}",
                          "use a name, or a pattern with {owner} such as spark-{owner}")
    host, _, port_text = args.listen.rpartition(":")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--listen {args.listen!r} has no port", "give HOST:PORT or :PORT, e.g. :8080")
    secrets_interval = parse_duration("--secrets-interval", args.secrets_interval).total_seconds()
    if args.owner_policy != "none" and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", args.owner_policy):
        raise ConfigError(f"--owner-policy {args.owner_policy!r} is not a policy name",
                          "give the name of a ValidatingAdmissionPolicy, or none")
    from spark_secrets.renew.seal import Seal

    seal = Seal.from_file(Path(args.seal_key_file)) if args.seal_key_file else Seal.from_file(Path(args.keytab),
                                                                                             "--keytab")
    vault_config = None
    if args.vault_role:
        from spark_secrets.jobsecrets.vault import VaultConfig

        options = {"address": args.vault_address, "namespace": args.vault_namespace, "caCert": args.vault_ca_cert,
                   "role": args.vault_role, "authMount": args.vault_auth_mount, "auth": "kubernetes"}
        vault_config = VaultConfig.from_settings(options.get)
        from spark_secrets.renew.rotation import role_for

        role_for(args.vault_role, "namespace", "account")  # a bad template: one line before anything is contacted
    hadoop_conf = HadoopConf.load()
    hive_uris = args.hive_metastore_uris or hadoop_conf.get("hive.metastore.uris")
    metastore = Metastore.parse(hive_uris, args.hive_principal or hadoop_conf.get("hive.metastore.kerberos.principal"),
                                hadoop_conf.get("hive.metastore.token.signature")) if hive_uris else None
    ccache = Path(args.ccache or Path.home() / ".cache" / "spark-secrets" / "renewer-ccache")
    ccache.parent.mkdir(parents=True, exist_ok=True)
    login = KeytabSession(args.principal, Path(args.keytab), ccache)
    policy = Policy(ratio=ratio, reissue_before_ms=int(reissue_before.total_seconds() * 1000),
                    projection_bound_ms=int(projection_bound.total_seconds() * 1000))
    kube = KubeClient.from_config(args.kubeconfig)
    owner_policy = None
    if args.owner_policy != "none":
        from spark_secrets.renew.admission import OwnerPolicy

        owner_policy = OwnerPolicy(kube, args.owner_policy)
    else:
        logging.getLogger("spark_secrets.renew").warning(
            "--owner-policy none: token Secrets' owner labels are not checked against their creators; any user "
            "who may create a Secret in a watched namespace can get tokens for anyone this service may impersonate")
    elector = None
    if args.lease:
        lease_ns, _, lease_name = args.lease.rpartition("/")
        elector = LeaderElector(kube, lease_ns or "spark-secrets-system", lease_name, duration=lease_duration,
                                annotations=_lease_annotations(kube, login.principal, args.namespace))
    grants = None
    if args.grant_access:
        from spark_secrets.renew.grants import AccessGrants

        grants = AccessGrants(kube, args.grant_service_account)
    rotator = None
    if vault_config is not None:
        from spark_secrets.renew.rotation import SecretRotator

        def rotator(svc: RenewService) -> SecretRotator:
            return SecretRotator(kube, vault_config, namespaces=svc.namespaces, metrics=svc.metrics, report=svc._report,
                                 interval=secrets_interval, leader=svc.leader)
    service = RenewService(kube, login, renewer=login.short_name, principal=login.principal, rotator=rotator,
                           namespaces=None if args.all_namespaces else args.namespace, policy=policy,
                           hadoop_conf=hadoop_conf, verify=_verify(args), metastore=metastore,
                           leader=(lambda: elector.is_leader) if elector else None,
                           sweep_interval=sweep_interval, orphan_grace_ms=int(orphan_grace.total_seconds() * 1000),
                           grants=grants, seal=seal, owner_policy=owner_policy)
    health = HealthServer(service.metrics, host or "0.0.0.0", int(port_text))
    if elector is not None:
        elector.annotations[LEASE_HEALTH] = f"http://{_reachable_host(host)}:{health.port}"
        elector.start()
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    print(f"spark-secrets renewer: {login.principal} watching {', '.join(args.namespace or ['all namespaces'])}; "
          f"health on :{health.port}", file=sys.stderr, flush=True)
    try:
        service.run()
    except KeyboardInterrupt:
        pass
    finally:
        if elector is not None:  # after the last action: a standby takes over at once
            elector.release()
        health.close()
    return 0


def _reachable_host(host: str) -> str:
    """The address others reach the health server at: the pod's IP (``POD_IP``, from the downward
    API) or the host's, when it listens on every address."""
    import os
    import socket

    if host not in ("", "0.0.0.0", "::"):
        return f"[{host}]" if ":" in host else host
    address = os.environ.get("POD_IP") or socket.gethostbyname(socket.gethostname())
    return f"[{address}]" if ":" in address else address


def _lease_annotations(kube, principal: str, namespaces: Sequence[str] | None) -> dict[str, str]:
    """Who the service is, for its Lease (read by ``spark-secrets doctor``)."""
    from spark_secrets.renew.lease import LEASE_GROUPS, LEASE_NAMESPACES, LEASE_PRINCIPAL, LEASE_USER

    notes = {LEASE_PRINCIPAL: principal, LEASE_NAMESPACES: ",".join(namespaces or ["*"])}
    try:
        user, groups = kube.whoami()
        notes.update({LEASE_USER: user, LEASE_GROUPS: ",".join(groups)})
    except SparkSecretsError as exc:  # an API server before 1.28: doctor then cannot check its access
        print(f"spark-secrets renewer: cannot tell its Kubernetes identity ({exc.problem})", file=sys.stderr)
    return notes


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


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from spark_secrets.testbed.demo import run_demo
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("spark_secrets.testbed"):
            raise
        raise ConfigError("the demo's test bed is not installed (it ships with the source, not the wheel)",
                          "git clone the project and run: make demo") from None
    return run_demo(keep=args.keep)


# -- parser ---------------------------------------------------------------------------------------------
def _login_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Kerberos login (default: your ticket cache, KRB5CCNAME honoured)")
    g.add_argument("--keytab", help="log in from this keytab instead (services)")
    g.add_argument("--principal", help="the principal in --keytab")
    g.add_argument("--ccache", help="private ticket cache for the keytab login")
    p.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust for https:// NameNodes "
                                                       "(default: the system's; REQUESTS_CA_BUNDLE honoured)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kerberized HDFS delegation tokens for Apache Spark on Kubernetes: fetch them from "
                    "your ticket cache, ship them to jobs in Kubernetes Secrets, keep them alive.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="start the embedded test bed (KDC, secure HDFS, Kubernetes) and run the main flow",
                          description="Starts a local realm, a secure HDFS and a Kubernetes API server, then walks "
                                      "through the whole flow as user alice, printing each step.")
    demo.add_argument("--keep", action="store_true", help="keep the test-bed directory (logs) afterwards")
    demo.set_defaults(func=cmd_demo)

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

    renewer = sub.add_parser(
        "renewer", help="run the renew service: keep token Secrets alive, re-issue before max lifetime, cancel at end",
        description="Logs in from its own keytab, lists and watches token Secrets (label "
                    "app.kubernetes.io/managed-by=spark-secrets) and renews each token at --ratio of its remaining "
                    "lifetime, obtains new tokens for the owner (as a proxy user) --reissue-before its max date, "
                    "writes them into the Secret, and cancels the tokens of deleted Secrets. Serves /healthz, "
                    "/readyz and /metrics on --listen. NameNodes of nameservices come from HADOOP_CONF_DIR.")
    renewer.add_argument("--keytab", required=True, help="the service's keytab")
    renewer.add_argument("--principal", required=True, help="the principal in --keytab (a proxy user on HDFS)")
    renewer.add_argument("--ccache", help="private ticket cache (default ~/.cache/spark-secrets/renewer-ccache)")
    renewer.add_argument("--namespace", "-n", action="append", help="namespace to watch (repeatable)")
    renewer.add_argument("--all-namespaces", action="store_true", help="watch every namespace (needs a ClusterRole)")
    renewer.add_argument("--ratio", default="0.75", help="renew after this fraction of the remaining lifetime")
    renewer.add_argument("--reissue-before", default="1h", help="obtain new tokens this long before their max date")
    renewer.add_argument("--projection-bound", default="120s",
                         help="after a re-issue, keep renewing the old tokens for this long, since pods use them until "
                              "kubelet projects the new file and the plugin reloads it (default 120s: kubelet's 60 s "
                              "sync period, its cache and jitter, and the plugin's reaction)")
    renewer.add_argument("--lease", metavar="NAMESPACE/NAME",
                         help="with several replicas: only the holder of this coordination.k8s.io Lease acts")
    renewer.add_argument("--lease-duration", default="15s", help="how long a silent leader keeps the lease")
    renewer.add_argument("--sweep-interval", default="30s",
                         help="how often to check which pods use the token Secrets: give owner-less ones to the "
                              "driver pod that mounts them, clean up unused ones (0 = never; default 30s)")
    renewer.add_argument("--orphan-grace", default="10min",
                         help="delete a token Secret no pod has used for this long (pre-created ones are emptied "
                              "instead; default 10min)")
    renewer.add_argument("--grant-access", action="store_true",
                         help="controller mode: give each token Secret's job service account get on exactly that "
                              "Secret (a Role and RoleBinding owned by the Secret)")
    renewer.add_argument("--grant-service-account", default="spark-{owner}", metavar="PATTERN",
                         help="the job service account granted get ({owner} = the Secret's owner label, which "
                              "admission binds to its creator; default spark-{owner})")
    renewer.add_argument("--seal-key-file", metavar="FILE",
                         help="key that seals what the service verified on each Secret (default: derived from "
                              "--keytab; every replica needs the same)")
    renewer.add_argument("--owner-policy", default="spark-secrets-token-owner", metavar="NAME",
                         help="the ValidatingAdmissionPolicy that binds token Secrets' owners to their creators; "
                              "Secrets it does not cover are refused (none: do not check, unsafe)")
    renewer.add_argument("--listen", default=":8080", help="address for /healthz, /readyz, /metrics (default :8080)")
    renewer.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)")
    renewer.add_argument("--ca-bundle", metavar="PEM", help="CA certificates for https:// NameNodes")
    renewer.add_argument("--hive-metastore-uris", metavar="URIS",
                         help="the Kerberized Hive metastore whose tokens it renews and cancels (comma-separated "
                              "thrift://host:port; default: hive.metastore.uris from hive-site.xml in HADOOP_CONF_DIR)")
    renewer.add_argument("--hive-principal", metavar="PRINCIPAL",
                         help="that metastore's Kerberos principal, _HOST = each URI's host (default: "
                              "hive.metastore.kerberos.principal from hive-site.xml)")
    vault = renewer.add_argument_group(
        "job secrets (rotation of vault: references without a pinned version; off without --vault-role)")
    vault.add_argument("--vault-role", metavar="ROLE",
                       help="OpenBao/Vault Kubernetes auth role the service logs in with *as each job's driver service "
                            "account* (a TokenRequest per job), so that account's policies decide what it may read; "
                            "{namespace} and {account} in it choose a role per account (e.g. jobs-{account})")
    vault.add_argument("--vault-address", metavar="URL", help="OpenBao/Vault address (default: VAULT_ADDR, else BAO_ADDR)")
    vault.add_argument("--vault-auth-mount", metavar="PATH", help="the Kubernetes auth mount (default: kubernetes)")
    vault.add_argument("--vault-namespace", metavar="NS", help="OpenBao/Vault namespace (default: VAULT_NAMESPACE)")
    vault.add_argument("--vault-ca-cert", metavar="PEM", help="CA of OpenBao/Vault's certificate (default: VAULT_CACERT)")
    vault.add_argument("--secrets-interval", default="30s",
                       help="how often the KV versions of running jobs' secrets are checked (default 30s)")
    renewer.set_defaults(func=cmd_renewer)

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

    jar = sub.add_parser(
        "jar", help="print the path of the JVM refresher plugin's jar (for --jars / spark.jars)",
        description="Prints the path of the Spark plugin jar that re-reads the mounted token file in the driver "
                    "and executors. Enable it with spark.plugins=io.sparksecrets.plugin.TokenRefreshPlugin. "
                    "For cluster mode, copy the jar into the image and give its local:// path.",
        epilog="example: spark-submit $(spark-secrets jar --conf) ... ; COPY it to /opt/spark/jars/ in an image")
    jar.add_argument("--conf", action="store_true", help="print spark-submit flags (--jars and spark.plugins) instead")
    jar.set_defaults(func=cmd_jar)

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

    doctor = sub.add_parser(
        "doctor", help="check, before submitting, everything a job's HDFS and metastore access depends on",
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
                        help="also obtain, renew and cancel a token per filesystem and metastore (learns lifetimes)")
    doctor.add_argument("--duration", metavar="D", help="how long the job will run (90min, 12h, 3d)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    doctor.add_argument("spark_args", nargs=argparse.REMAINDER, metavar="-- SPARK-SUBMIT-OPTIONS")
    doctor.set_defaults(func=cmd_doctor)

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

    from spark_secrets.cli.secrets import add_parser as add_secrets_parser
    add_secrets_parser(sub)

    tokens = sub.add_parser("tokens", help="fetch, show, renew or cancel HDFS delegation tokens",
                            description="Work with Hadoop token files (the HADOOP_TOKEN_FILE_LOCATION format).")
    tsub = tokens.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)

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
                                 ("cancel", cmd_tokens_cancel, "make the servers (NameNode, KMS, metastore) "
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
        _login_options(p)
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if getattr(args, "command", None) in ("conf", "submit", "render", "doctor"):
            parser.error(f"put spark-submit options after '--': {PROG} {args.command} [options] -- {' '.join(unknown)}")
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except SparkSecretsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
