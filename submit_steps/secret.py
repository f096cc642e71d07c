"""Step 2: the per-job token Secret: a readable unique name, labels to find it, dates to act on."""

from __future__ import annotations

import re
import secrets as random

from spark_secrets.login.kerberos import short_name
from spark_secrets.errors import ConfigError
from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.hadoop.conf import HadoopConf
from spark_secrets.tokens.registry import providers
from submit_steps.context import JobContext
from submit_steps.settings import TOKEN_SECRET_SUFFIX, Settings, name_base
from spark_secrets.secrets.tokensecret import (ANNOTATION_FILESYSTEMS, ANNOTATION_KEY, ANNOTATION_PRINCIPAL,
                                       ANNOTATION_RENEWER, ANNOTATION_SERVICE_ACCOUNT, KIND_HADOOP_TOKENS, LABEL_APP,
                                       LABEL_KIND, LABEL_MANAGED_BY, LABEL_OWNER, LABEL_TOKEN_SECRET, MANAGED_BY,
                                       identifiers_of,
                                       schedule_annotations)
from submit_steps.spec import SECRET_MAX_BYTES, SecretPlan, SubmissionSpec
from submit_steps.step import SubmitStep

SUFFIX = TOKEN_SECRET_SUFFIX
#: The NameNode's own setting (milliseconds), read from the client's HADOOP_CONF_DIR when present there.
RENEW_INTERVAL_KEY = "dfs.namenode.delegation.token.renew-interval"
DEFAULT_RENEW_INTERVAL_MS = 86_400_000  # Hadoop's default: one day


def estimated_renew_interval_ms(settings: Settings, hadoop_conf: HadoopConf) -> int:
    """The interval the first expiry annotation is estimated with: the NameNode's setting when the
    client's Hadoop configuration has it, else ``spark.secrets.renewInterval``, else one day. Only an
    estimate: the renew service learns the real expiry by renewing at first sight."""
    raw = hadoop_conf.get(RENEW_INTERVAL_KEY, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{RENEW_INTERVAL_KEY}={raw!r} in {hadoop_conf.source} is not a number of milliseconds",
                              "fix it there, or remove it and set spark.secrets.renewInterval") from None
        if value > 0:
            return value
    if settings.renew_interval is not None:
        return int(settings.renew_interval.total_seconds() * 1000)
    return DEFAULT_RENEW_INTERVAL_MS


def label_value(text: str) -> str:
    """``text`` made a valid label value: at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return cleaned.strip("-_.") or "unknown"


def secret_name_for(app_name: str, token: str | None = None) -> str:
    """``<app name, DNS-safe>-<8 random hex>-hadoop-tokens``, at most 253 characters."""
    return f"{name_base(app_name)}-{token or random.token_hex(4)}{SUFFIX}"


class TokenSecretStep(SubmitStep):
    """Puts the token file into a Secret plan (created later, by the submission)."""

    def __init__(self, context: JobContext | Settings, hadoop_conf: HadoopConf | None = None) -> None:
        super().__init__(context)
        self.name = self.context.token_secret_name  # shares its stem with the job-secrets Secret's
        self._hadoop_conf = hadoop_conf

    @property
    def enabled(self) -> bool:
        return self.settings.wants_tokens

    def _targets(self, creds: Credentials) -> tuple[str, ...]:
        """What the renew service re-issues from: each kind's targets whose tokens are here (a kind that
        failed and was left out is not re-issued either)."""
        kinds = {token.kind for token in creds}
        return tuple(target for provider in providers() if kinds & set(provider.token_kinds)
                     for target in provider.required(self.settings))

    def apply(self, spec: SubmissionSpec) -> SubmissionSpec:
        if not self.enabled or spec.credentials is None:
            return spec
        creds = spec.credentials
        data = creds.to_bytes(self.settings.token_file_format)
        if len(data) > SECRET_MAX_BYTES - 1024:
            raise ConfigError(f"the token file is {len(data)} bytes, too large for a Kubernetes Secret (1 MiB)",
                              "obtain tokens from fewer NameNodes per job")
        known = identifiers_of(creds)
        owner = spec.principal or (known[0].owner if known else "unknown")
        annotations: dict[str, str] = {
            ANNOTATION_PRINCIPAL: owner,
            ANNOTATION_FILESYSTEMS: ",".join(self._targets(creds)),
            ANNOTATION_KEY: self.settings.secret_key,
        }
        if known:
            hadoop_conf = self._hadoop_conf if self._hadoop_conf is not None else self.settings.hadoop_conf
            interval_ms = estimated_renew_interval_ms(self.settings, hadoop_conf)
            annotations[ANNOTATION_RENEWER] = known[0].renewer
            expiry = min(min(i.issue_date + interval_ms, i.max_date) for i in known)
            annotations.update({k: v for k, v in schedule_annotations(creds, expiry, estimated=True).items()
                                if v is not None})
        target = spec.target
        if target is not None and target.service_account:
            annotations[ANNOTATION_SERVICE_ACCOUNT] = target.service_account
        name = target.fill if target and target.fill else (target.secret_prefix if target else "") + self.name
        plan = SecretPlan(
            name=name,
            namespace=target.namespace if target else self.context.namespace, data={self.settings.secret_key: data},
            fill=bool(target and target.fill),
            driver_selector=f"{LABEL_TOKEN_SECRET}={name}",
            labels={LABEL_MANAGED_BY: MANAGED_BY, LABEL_KIND: KIND_HADOOP_TOKENS,
                    LABEL_OWNER: label_value(short_name(owner)),
                    LABEL_APP: label_value(self.settings.app_name)},
            annotations=annotations)
        return spec.add_secret(plan).add_note(f"token Secret {plan.namespace}/{plan.name} "
                                              f"(key {self.settings.secret_key}, {len(data)} bytes)")
