"""The labels and annotations of a user's Connect server's driver pod, shared by what starts it
(``submit_steps.connectpod``), its program (:mod:`.server`) and ``spark-secrets status``."""

from __future__ import annotations

from spark_secrets.secrets.tokensecret import DOMAIN

#: Whose server it is (the user's Kerberos short name); anyone may write a label, so it only finds candidates.
LABEL_CONNECT_USER = f"{DOMAIN}/connect-user"
#: The Secret holding the server's bearer token (believed only when the pod owns that Secret).
ANNOTATION_TOKEN_SECRET = f"{DOMAIN}/connect-token-secret"
#: Seconds without activity after which the server stops.
ANNOTATION_IDLE_TIMEOUT = f"{DOMAIN}/connect-idle-timeout"
#: When the server was last active (RFC 3339), written by its program at most every :data:`ACTIVITY_WRITE_S`
#: seconds and when it turns idle or busy.
ANNOTATION_LAST_ACTIVITY = f"{DOMAIN}/connect-last-activity"
ACTIVITY_WRITE_S = 30
