"""Checks of the job itself: the token refresher in its JVMs, and its expected duration against what
the tokens and the renew service allow."""

from __future__ import annotations

import datetime as dt

from spark_secrets.check.lifetimes import Lifetimes
from spark_secrets.check.report import FAIL, OK, WARN, Check
from spark_secrets.duration import duration_text
from submit_steps.context import DEFAULT_DEPLOY_MODE


def check_plugin(deploy_mode: str | None, master: str, plugin_jar: str | None, refresh: bool) -> Check:
    """``deploy_mode`` unset is Spark's default, client: the answer the submission steps act on too."""
    name = "token refresher"
    deploy_mode = deploy_mode or DEFAULT_DEPLOY_MODE
    if plugin_jar == "none" or not refresh:
        return Check(name, WARN, "turned off: driver and executors keep the tokens they start with",
                     "unset spark.secrets.plugin.jar=none / spark.secrets.refresh.enabled=false for jobs that run "
                     "longer than a token lives")
    if master.startswith("local") or deploy_mode != "cluster":
        where = "in the driver here" if plugin_jar is None else f"here and {plugin_jar} in the executor images"
        if plugin_jar is None and not master.startswith("local"):
            return Check(name, WARN, "client mode without spark.secrets.plugin.jar: the driver here refreshes its "
                                     "tokens, executors in pods do not",
                         "--conf spark.secrets.plugin.jar=local:///<the jar's path in your image>")
        return Check(name, OK, f"the plugin jar is loaded {where}")
    if plugin_jar is None:
        return Check(name, FAIL, "cluster mode without spark.secrets.plugin.jar: driver and executors would not re-read "
                                 "the token file, and the job loses HDFS at the first expiry",
                     "--conf spark.secrets.plugin.jar=local:///<the jar's path in your image> (spark-secrets jar "
                     "prints the file to copy in)")
    return Check(name, OK, f"driver and executors load {plugin_jar} from the image")


def check_duration(duration: dt.timedelta, lifetimes: Lifetimes | None, service_renews: bool) -> Check:
    name = "duration"
    wanted = duration_text(int(duration.total_seconds() * 1000))
    if lifetimes is None:
        return Check(name, WARN, f"a {wanted} job: the tokens' lifetimes are unknown without a probe",
                     "add --probe (obtains, renews and cancels one token)")
    renew, most = duration_text(lifetimes.renew_ms), duration_text(lifetimes.max_ms)
    ms = duration.total_seconds() * 1000
    if service_renews:
        return Check(name, OK, f"a {wanted} job: the renew service renews its tokens (each lives {renew}) and "
                               f"re-issues them before their {most} maximum")
    if ms > lifetimes.renew_ms:
        return Check(name, FAIL, f"a {wanted} job outlives its tokens ({renew} without renewal) and nothing renews "
                                 "them", "run the renew service and set spark.secrets.renewer to its principal")
    return Check(name, OK, f"a {wanted} job ends before its tokens expire ({renew})")
