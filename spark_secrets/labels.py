"""The labels and annotations that mark a token Secret, shared by the submission steps (which
write them) and the renew service (which selects on them and keeps them current)."""

from __future__ import annotations

import datetime as dt

DOMAIN = "spark-secrets.io"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "spark-secrets"
LABEL_KIND = f"{DOMAIN}/kind"
KIND_HADOOP_TOKENS = "hadoop-delegation-tokens"
LABEL_OWNER = f"{DOMAIN}/owner"
LABEL_APP = f"{DOMAIN}/app-name"
LABEL_TOKEN_SECRET = f"{DOMAIN}/token-secret"
ANNOTATION_PRINCIPAL = f"{DOMAIN}/principal"
ANNOTATION_RENEWER = f"{DOMAIN}/renewer"
ANNOTATION_FILESYSTEMS = f"{DOMAIN}/filesystems"
ANNOTATION_EXPIRY = f"{DOMAIN}/expiry"
#: Set by the submission: the expiry annotation is its estimate (issue date + a configured interval),
#: not what the NameNode said. The renew service renews such tokens at first sight, learns the real
#: expiry and removes this mark; until then the estimate is only for display and warnings.
ANNOTATION_EXPIRY_ESTIMATED = f"{DOMAIN}/expiry-estimated"
ANNOTATION_MAX_DATE = f"{DOMAIN}/max-date"
ANNOTATION_KEY = f"{DOMAIN}/token-file-key"
#: When the renew service last renewed or re-issued the tokens.
ANNOTATION_RENEWED_AT = f"{DOMAIN}/renewed-at"
#: On a Secret an admin pre-created for one user (layout "precreated"): it outlives jobs, so the renew
#: service empties it when no pod uses it instead of deleting it.
LABEL_PERSISTENT = f"{DOMAIN}/persistent"
#: The service account of the job's driver; in controller mode it is granted ``get`` on the Secret.
ANNOTATION_SERVICE_ACCOUNT = f"{DOMAIN}/service-account"
#: The key of the token file in a token Secret unless ``spark.secrets.secret.key`` says otherwise
#: (Spark's own Kerberos step uses the same name).
DEFAULT_TOKEN_KEY = "hadoop-tokens"
#: The label selector of every token Secret.
TOKEN_SECRET_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_KIND}={KIND_HADOOP_TOKENS}"


def rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time (``...Z``, seconds or milliseconds)."""
    stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(stamp.timestamp() * 1000)
