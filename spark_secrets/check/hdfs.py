"""Checks of each filesystem a job would read: its NameNodes (which is active), WebHDFS with the
user's SPNEGO login, and with ``--probe`` a real token, obtained, renewed and cancelled, whose
lifetimes (unknown to a client otherwise) the duration check compares with the job's."""

from __future__ import annotations

import time

from spark_secrets.transport import HttpAuth

from spark_secrets.check.lifetimes import Lifetimes, weigh
from spark_secrets.check.report import FAIL, OK, Check
from spark_secrets.duration import duration_text
from spark_secrets.errors import HdfsAuthenticationError, HdfsError, NameNodeUnavailable, SparkSecretsError
from spark_secrets.hadoop.conf import HadoopConf, resolve_filesystem
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import KMS_DELEGATION_KIND
from spark_secrets.hadoop.token import Token
from spark_secrets.tokens.provider import Shortfall, TokenContext
from spark_secrets.tokens.registry import cancel_any, for_kind, renew_any
from spark_secrets.tokens.webhdfs import WebHdfsClient

#: Seconds a NameNode has to answer a check (a submission waits longer).
TIMEOUT = 10.0


def check_filesystem(uri: str, conf: HadoopConf, auth: HttpAuth, verify: bool | str) -> Check:
    name = f"filesystem {uri}"
    try:
        target = resolve_filesystem(uri, conf)
    except SparkSecretsError as exc:
        return Check(name, FAIL, exc.problem, exc.fix or "fix spark.secrets.hadoop.filesystems or HADOOP_CONF_DIR")
    states, active = [], None
    for namenode in target.namenodes:
        client = WebHdfsClient(namenode.http_url, auth, verify=verify, timeout=TIMEOUT)
        try:
            client.call("GET", "GETFILESTATUS", {})
            state = "active"
            active = active or client.host
        except HdfsAuthenticationError as exc:
            return Check(name, FAIL, exc.problem, exc.fix or "")
        except NameNodeUnavailable as exc:
            state = "standby" if "standby" in exc.problem else "down (" + exc.problem.split(" for ")[0] + ")"
        except HdfsError as exc:
            state = f"refused ({exc.problem})"
        states.append(f"{client.host} {state}")
    if active is None:
        return Check(name, FAIL, f"no active NameNode ({'; '.join(states)})",
                     "start the NameNode (or fail over to a running one), or fix the address in "
                     "spark.secrets.hadoop.filesystems / HADOOP_CONF_DIR")
    return Check(name, OK, f"{'; '.join(states)}; WebHDFS accepts your Kerberos login (SPNEGO)")


def probe(uri: str, conf: HadoopConf, auth: HttpAuth, verify: bool | str, user: str) -> tuple[Check, Lifetimes | None]:
    """Obtain a token naming the user as renewer (so it may renew it), renew it once to learn the
    renew interval, and cancel it: nothing is left behind."""
    name = f"probe {uri}"
    kms_problems: list[Shortfall] = []
    creds = Credentials()
    try:
        target = resolve_filesystem(uri, conf)
        ctx = TokenContext(auth=lambda: auth, hadoop=conf, verify=verify, renewer=user, user=user, filesystem=target)
        for_kind("hdfs").obtain([uri], ctx, creds, shortfalls=kms_problems)
    except SparkSecretsError as exc:
        return Check(name, FAIL, f"cannot obtain a delegation token: {exc.problem}", exc.fix or ""), None
    obtained = time.monotonic()
    token = next(iter(creds))
    kms = _probe_kms([t for t in creds if t.kind == KMS_DELEGATION_KIND], ctx)
    lifetimes = weigh(name, "NameNode", token, ctx, obtained)
    if isinstance(lifetimes, Check):
        return lifetimes, None
    if kms_problems:  # jobs reading its encryption zones would fail
        return Check(name, FAIL, f"no KMS token for its encryption zones: {kms_problems[0].error.problem}",
                     kms_problems[0].error.fix or "check the KMS"), lifetimes
    if kms.startswith("✗"):
        return Check(name, FAIL, f"the KMS token {kms[2:]}", "check the KMS's renewer rules"), lifetimes
    return Check(name, OK, f"obtained, renewed and cancelled a token: it lives {duration_text(lifetimes.renew_ms)} "
                           f"after each renewal, {duration_text(lifetimes.max_ms)} at most{kms}"), lifetimes


def _probe_kms(tokens: list[Token], ctx: TokenContext) -> str:
    """Renew and cancel the KMS token(s) obtained with the filesystem's: ``""`` when there were
    none, a detail to append when all went well, ``"✗ <problem>"`` otherwise."""
    done = []
    for token in tokens:
        try:
            renew_any(token, ctx)
        except SparkSecretsError as exc:
            return f"✗ cannot be renewed: {exc.problem}"
        finally:
            try:
                cancel_any(token, ctx)
            except SparkSecretsError:
                pass
        done.append(token.service)
    return f"; and a KMS token from {', '.join(done)} (encryption zones)" if done else ""
