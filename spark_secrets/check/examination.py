"""The whole check-up, in the order a submission meets each part: settings, ticket, NameNodes, every
other kind of token the job needs (the Hive metastore, Kafka, any registered kind), the cluster's
RBAC, the renew service, the JVMs, the job's duration. Nothing is created, except the tokens ``probe``
obtains and cancels (one per filesystem, metastore, Kafka cluster, ...)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from spark_secrets.check.access import check_driver_account, check_owner_policy, check_pod_policy, check_submitter
from spark_secrets.check.hdfs import check_filesystem, probe
from spark_secrets.check.lifetimes import Lifetimes
from spark_secrets.check.job import check_duration, check_plugin
from spark_secrets.check.providers import check_name, check_provider
from spark_secrets.check.renewservice import check_renewer, check_service_access, read_service
from spark_secrets.check.report import FAIL, OK, WARN, Check, Report
from spark_secrets.duration import duration_text
from spark_secrets.errors import SparkSecretsError
from spark_secrets.login.kerberos import TicketCache, current_ticket_cache
from spark_secrets.kube.client import KubeClient
from spark_secrets.tokens.hdfs import HdfsProvider
from spark_secrets.tokens.provider import TokenContext
from spark_secrets.tokens.registry import providers
from submit_steps.layout import resolve
from submit_steps.settings import Settings


def examine(conf: Mapping[str, str], kube: Callable[[], KubeClient], *, probe_tokens: bool = False,
            duration: dt.timedelta | None = None, connect: bool = False,
            on_check: Callable[[Check], None] = lambda c: None) -> Report:
    """Every check for a job submitted with ``conf`` (``connect``: and for a notebook of the user's Connect
    server); ``on_check`` sees each finding as it is made."""
    report = Report()

    def add(check: Check) -> Check:
        on_check(report.add(check))
        return check

    try:
        settings = Settings(conf)
    except SparkSecretsError as exc:
        add(Check("settings", FAIL, exc.problem, exc.fix or ""))
        return report
    if not settings.filesystems:
        add(Check("settings", FAIL, "no filesystems to obtain tokens for",
                  "add --conf spark.secrets.hadoop.filesystems=hdfs://<nameservice or namenode:port>"))
    else:
        add(Check("settings", OK, f"{len(settings.filesystems)} filesystem(s), layout {settings.layout}"))

    ticket: TicketCache | None = None
    minimum = settings.min_ticket_lifetime
    try:
        ticket = current_ticket_cache(min_lifetime=minimum)
        left = int(ticket.remaining.total_seconds() * 1000)
        add(Check("ticket", OK, f"{ticket.principal}, valid for {duration_text(left)} "
                                f"(spark.secrets.ticket.minLifetime {duration_text(int(minimum.total_seconds() * 1000))})"))
    except SparkSecretsError as exc:
        add(Check("ticket", FAIL, exc.problem, exc.fix or ""))

    lifetimes: Lifetimes | None = None
    if ticket is not None:
        from spark_secrets.login.spnego import SpnegoAuth

        auth = SpnegoAuth(ticket.credentials)
        for uri in settings.filesystems:
            if add(check_filesystem(uri, settings.hadoop_conf, auth, settings.ca_bundle)).status == OK and probe_tokens:
                found, measured = probe(uri, settings.hadoop_conf, auth, settings.ca_bundle, ticket.short_name)
                add(found)
                lifetimes = lifetimes or measured
    else:
        for uri in settings.filesystems:
            add(Check(f"filesystem {uri}", WARN, "not checked without a usable ticket"))

    ctx = _context(settings, ticket)
    for provider in providers():
        if isinstance(provider, HdfsProvider):
            continue  # the filesystems' NameNodes are checked above
        try:
            targets = provider.required(settings)
        except SparkSecretsError as exc:
            add(Check(provider.check_name, FAIL, exc.problem, exc.fix or ""))
            continue
        if targets and ctx is not None:
            found, measured = check_provider(provider, targets, ctx, probe_tokens)
            add(found)
            lifetimes = _shorter(lifetimes, measured)
        elif targets:
            add(Check(check_name(provider, targets), WARN, "not checked without a usable ticket"))

    service_renews = False
    try:
        client = kube()
        target = resolve(settings, lambda: settings.layout_user or _short(ticket))
    except SparkSecretsError as exc:
        add(Check("kubernetes", FAIL, exc.problem, exc.fix or ""))
    else:
        add(check_submitter(client, target.namespace, target.fill))
        add(check_owner_policy(client, target.namespace, target.fill))
        pods = check_pod_policy(client, target.namespace, settings.layout)
        if pods is not None:
            add(pods)
        add(check_driver_account(client, target.namespace, target.service_account,
                                 target.fill or settings.secret_name, settings.layout))
        found, service = read_service(client, *settings.renew_service_lease)
        add(found)
        would_name = settings.renewer or (ticket.short_name if ticket else "you")
        renewer = add(check_renewer(would_name, settings.renewer, service))
        if service is not None and service.running:
            access = add(check_service_access(client, service, target.namespace))
            service_renews = renewer.status == OK and access.status != FAIL
        if connect:
            from spark_secrets.check.connect import check_server

            try:
                add(check_server(settings, client, settings.layout_user or _short(ticket)))
            except SparkSecretsError as exc:
                add(Check("connect server", FAIL, exc.problem, exc.fix or ""))

    if connect:
        from spark_secrets.check.connect import check_client

        add(check_client())
    effective = settings.conf
    add(check_plugin(effective.get("spark.submit.deployMode"), effective.get("spark.master", ""), settings.plugin_jar,
                     settings.refresh_enabled))
    if duration is not None:
        add(check_duration(duration, lifetimes, service_renews))
    return report


def _context(settings: Settings, ticket: TicketCache | None) -> TokenContext | None:
    """As the submission asks the providers, but with you as the renewer (who may renew and cancel)."""
    if ticket is None:
        return None
    from spark_secrets.login.spnego import SpnegoAuth

    credentials = ticket.credentials
    try:
        metastore = settings.hive_metastore
    except SparkSecretsError:
        metastore = None  # its provider's check says why
    return TokenContext(auth=lambda: SpnegoAuth(credentials), hadoop=settings.hadoop_conf, verify=settings.ca_bundle,
                        renewer=ticket.short_name, user=ticket.short_name, metastore=metastore, conf=settings.conf)


def _shorter(a: Lifetimes | None, b: Lifetimes | None) -> Lifetimes | None:
    """The lifetimes a job lives by: the shorter of each, of all its kinds of token."""
    if a is None or b is None:
        return a or b
    return Lifetimes(renew_ms=min(a.renew_ms, b.renew_ms), max_ms=min(a.max_ms, b.max_ms))


def _short(ticket: TicketCache | None) -> str:
    if ticket is None:
        raise SparkSecretsError("the layout needs your user name, and no ticket gives it",
                                "run kinit, or set spark.secrets.layout.user")
    return ticket.short_name

