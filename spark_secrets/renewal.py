"""When to renew and when to re-issue the tokens in a token Secret (pure: no I/O, injectable clock).

Renewal extends a token's expiry on the NameNode but never past its max date; before the max date
the renew service must obtain a new token for the owner. Times are milliseconds since the epoch.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spark_secrets.credentials import Credentials
from spark_secrets.errors import SparkSecretsError, TokenFormatError
from spark_secrets.identifier import DelegationTokenIdentifier
from spark_secrets.labels import (ANNOTATION_EXPIRY, ANNOTATION_EXPIRY_ESTIMATED, ANNOTATION_FILESYSTEMS,
                                  ANNOTATION_KEY, ANNOTATION_RENEWED_AT, ANNOTATION_SERVICE_ACCOUNT,
                                  DEFAULT_TOKEN_KEY, LABEL_OWNER, LABEL_PERSISTENT, parse_rfc3339)
from spark_secrets.token import Token

RENEW = "renew"
REISSUE = "reissue"


class UnusableSecret(SparkSecretsError):
    """A token Secret the renew service cannot work with (no key, unparsable file, no DTs)."""


@dataclass(frozen=True)
class TokenSecret:
    """What the renew service needs from one token Secret; ``repr`` shows no secret bytes."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    key: str
    credentials: Credentials
    identifiers: tuple[DelegationTokenIdentifier, ...]
    filesystems: tuple[str, ...]
    expiry_ms: int
    renewed_at_ms: int | None
    #: ``(kind, name, uid)`` of each owner reference.
    owners: tuple[tuple[str, str, str], ...] = ()
    created_ms: int = 0
    persistent: bool = False
    owner_label: str = ""
    service_account: str | None = None
    #: The expiry is the submission's estimate, not an answer from the token's server.
    expiry_estimated: bool = False
    #: The token-file format the submission chose (0 Writable, 1 protobuf); re-issues keep it.
    file_format: int = 0

    def __repr__(self) -> str:
        return f"TokenSecret({self.namespace}/{self.name}, rv={self.resource_version}, tokens={len(self.credentials)})"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def max_date_ms(self) -> int:
        return min(i.max_date for i in self.identifiers)

    @property
    def issue_date_ms(self) -> int:
        return max(i.issue_date for i in self.identifiers)

    @property
    def expiry_known(self) -> bool:
        """Whether the expiry came from the token's server (a renewal or re-issue by the service)."""
        return self.renewed_at_ms is not None and not self.expiry_estimated

    @property
    def owner(self) -> str:
        """The tokens' owner as a short name (the ``doas`` user for re-issue)."""
        return self.identifiers[0].owner.split("@")[0].split("/")[0]

    def distinct_tokens(self) -> list[Token]:
        """One token per identifier (the file holds each twice: for RPC and for WebHDFS), WebHDFS first."""
        seen: dict[bytes, Token] = {}
        for token in sorted((t for t in self.credentials if t.is_delegation_token), key=lambda t: "WEBHDFS" not in t.kind):
            seen.setdefault(token.identifier, token)
        return list(seen.values())

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> TokenSecret:
        """From a Secret as the API server returns it (a dict); raises :class:`UnusableSecret`."""
        meta = obj.get("metadata") or {}
        ref = f"{meta.get('namespace')}/{meta.get('name')}"
        notes = meta.get("annotations") or {}
        key = notes.get(ANNOTATION_KEY, DEFAULT_TOKEN_KEY)
        raw = (obj.get("data") or {}).get(key)
        if raw is None:
            raise UnusableSecret(f"token Secret {ref} has no key {key!r}", "recreate it with spark-secrets")
        try:
            data = base64.b64decode(raw)
            creds = Credentials.from_bytes(data)
        except (TokenFormatError, ValueError) as exc:
            problem = exc.problem if isinstance(exc, TokenFormatError) else "not base64"
            raise UnusableSecret(f"token Secret {ref} does not hold a Hadoop token file ({problem})") from None
        idents = tuple(i for i in (t.decode_identifier() for t in creds if t.is_delegation_token) if i is not None)
        if not idents:
            raise UnusableSecret(f"token Secret {ref} holds no delegation tokens")
        try:
            expiry = parse_rfc3339(notes[ANNOTATION_EXPIRY]) if ANNOTATION_EXPIRY in notes else min(
                i.max_date for i in idents)
            renewed = parse_rfc3339(notes[ANNOTATION_RENEWED_AT]) if ANNOTATION_RENEWED_AT in notes else None
        except ValueError:
            raise UnusableSecret(f"token Secret {ref} has a malformed time annotation") from None
        filesystems = tuple(f for f in notes.get(ANNOTATION_FILESYSTEMS, "").split(",") if f)
        labels = meta.get("labels") or {}
        owners = tuple((str(o.get("kind")), str(o.get("name")), str(o.get("uid")))
                       for o in meta.get("ownerReferences") or [])
        try:
            created = parse_rfc3339(meta["creationTimestamp"]) if meta.get("creationTimestamp") else 0
        except ValueError:
            created = 0
        return cls(str(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid", "")),
                   str(meta.get("resourceVersion", "")), key, creds, idents, filesystems, expiry, renewed,
                   owners=owners, created_ms=created, persistent=labels.get(LABEL_PERSISTENT) == "true",
                   owner_label=str(labels.get(LABEL_OWNER, "")),
                   service_account=notes.get(ANNOTATION_SERVICE_ACCOUNT) or None,
                   expiry_estimated=notes.get(ANNOTATION_EXPIRY_ESTIMATED) == "true", file_format=data[4])


@dataclass(frozen=True)
class Policy:
    """Renew at ``ratio`` of the time left since the last renewal; re-issue ``reissue_before_ms``
    before the max date; spread actions by up to ``jitter`` of their lead time."""

    ratio: float = 0.75
    reissue_before_ms: int = 3_600_000
    jitter: float = 0.05

    def next_action(self, ts: TokenSecret, now_ms: int, rng: random.Random | None = None) -> tuple[str, int]:
        """``(RENEW | REISSUE, due time)``; a due time in the past means now.

        A token whose expiry the service has not learnt from its server is renewed at first sight, as
        YARN's ResourceManager does at submission: the submission's expiry is a guess, and a NameNode
        whose renew interval is shorter than the guess would let the token lapse before a renewal
        scheduled from it.
        """
        reissue_at = ts.max_date_ms - self.reissue_before_ms
        if not ts.expiry_known:
            return (REISSUE if reissue_at <= now_ms else RENEW), now_ms
        base = ts.renewed_at_ms or ts.issue_date_ms
        renew_at = base + int(self.ratio * (ts.expiry_ms - base))
        if ts.expiry_ms <= now_ms or reissue_at <= now_ms:
            return REISSUE, now_ms  # expired (renewing is no use), or inside the re-issue window
        if ts.expiry_ms >= reissue_at or renew_at >= reissue_at:
            return REISSUE, reissue_at  # no renewal needed before the window opens
        lead = max(0, renew_at - now_ms)
        spread = int(lead * self.jitter * (rng or random).random())
        return RENEW, renew_at - spread
