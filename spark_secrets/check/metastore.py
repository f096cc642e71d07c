"""The check of the Hive metastore a job would get a token from: a Kerberos (SASL GSSAPI) login that
changes nothing, and with ``--probe`` a real token, obtained, renewed and cancelled, whose lifetimes
the duration check weighs with the filesystems'."""

from __future__ import annotations

import time

import gssapi

from spark_secrets.check.lifetimes import Lifetimes, weigh
from spark_secrets.check.report import FAIL, OK, Check
from spark_secrets.duration import duration_text
from spark_secrets.errors import SparkSecretsError
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.identifier import HIVE_DELEGATION_KIND
from spark_secrets.login.spnego import SpnegoAuth
from spark_secrets.tokens.metastore import Metastore, metastore_version
from spark_secrets.tokens.provider import TokenContext
from spark_secrets.tokens.registry import for_kind


def check_metastore(metastore: Metastore, credentials: gssapi.Credentials, user: str,
                    probe: bool) -> tuple[Check, Lifetimes | None]:
    """``user`` names itself as the probe token's renewer, so it may renew and cancel it."""
    name = f"metastore {','.join(metastore.uris)}"
    try:
        version = metastore_version(metastore, credentials)
    except SparkSecretsError as exc:
        return Check(name, FAIL, exc.problem, exc.fix or "check spark.secrets.hive.metastoreUris"), None
    server = f"Hive metastore {version}".rstrip() + " accepts your Kerberos login"
    if not probe:
        return Check(name, OK, server), None
    ctx = TokenContext(auth=lambda: SpnegoAuth(credentials), renewer=user, user=user, metastore=metastore)
    try:
        creds = Credentials()
        for_kind("hive").obtain(metastore.uris, ctx, creds)
        token = next(t for t in creds if t.kind == HIVE_DELEGATION_KIND)
        obtained = time.monotonic()
    except SparkSecretsError as exc:
        return Check(name, FAIL, f"{server}, but gives no delegation token: {exc.problem}",
                     exc.fix or "check metastore.sasl.enabled and its token store"), None
    lifetimes = weigh(name, "metastore", token, ctx, obtained)
    if isinstance(lifetimes, Check):
        return lifetimes, None
    return Check(name, OK, f"{server}; obtained, renewed and cancelled a token: it lives "
                           f"{duration_text(lifetimes.renew_ms)} after each renewal, "
                           f"{duration_text(lifetimes.max_ms)} at most"), lifetimes

