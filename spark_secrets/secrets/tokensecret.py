"""The token Secret's format, for its writer (the submission steps) and its reader (the renew service).

A token Secret holds one Hadoop token file under a key, labels to select it by, and annotations
that carry everything the renew service schedules with, so that it can list and watch metadata
only and read a Secret's data only when it acts on it:

* ``expiry``, ``max-date``: when the tokens lapse unless renewed, and when they cannot be renewed;
* ``expiry-estimated``: the expiry is the submission's estimate, not the token server's answer;
* ``renewed-at``: when the renew service last renewed or re-issued them;
* ``outgoing-*``, with the data key ``<key>.outgoing``: the tokens a re-issue replaced, kept alive until
  the pods can have the new ones (:mod:`spark_secrets.renew.rollover`);
* ``tokens``: the distinct tokens *without their passwords*, as Hadoop's URL-safe token strings.
  A NameNode (and KMS, and the metastore) authorizes a cancel by the caller's Kerberos identity
  (owner or renewer), never by the password, so this is all the service needs to cancel the tokens
  once the Secret is gone; identifiers are not secret (Hadoop logs them).
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from spark_secrets.hadoop.credentials import Credentials
from spark_secrets.errors import TokenFormatError, UnusableSecret
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token, TokenFacts, short_name

DOMAIN = "spark-secrets.io"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "spark-secrets"
LABEL_KIND = f"{DOMAIN}/kind"
KIND_HADOOP_TOKENS = "hadoop-delegation-tokens"
LABEL_OWNER = f"{DOMAIN}/owner"
LABEL_APP = f"{DOMAIN}/app-name"
#: On driver and executor pods: the name of the token Secret they mount.
LABEL_TOKEN_SECRET = f"{DOMAIN}/token-secret"
#: On a Secret an admin pre-created for one user (layout "precreated"): it outlives jobs, so the renew
#: service empties it when no pod uses it instead of deleting it.
LABEL_PERSISTENT = f"{DOMAIN}/persistent"
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
#: What the renew service last did to the tokens ("renewed" or "re-issued"), who it was (its
#: principal), and what it plans next ("renew 2026-12-01T10:00:00Z"), for ``spark-secrets status``.
ANNOTATION_LAST_ACTION = f"{DOMAIN}/last-action"
ANNOTATION_ACTED_BY = f"{DOMAIN}/acted-by"
ANNOTATION_NEXT_ACTION = f"{DOMAIN}/next-action"
#: The distinct delegation tokens of the file, passwords removed, space-separated URL-safe strings.
ANNOTATION_TOKENS = f"{DOMAIN}/tokens"
#: The renew service's seal (:mod:`spark_secrets.renew.seal`): an HMAC, with a key only the service holds,
#: over the Secret's identity, owner label and ``tokens``, written once the service renewed them itself.
ANNOTATION_VERIFIED = f"{DOMAIN}/verified"
#: Between the owner and the rest of a job's Secret names in a shared layout's namespace (``alice--etl-…``):
#: the submission writes it, the owner and pod policies read the owner from it.
OWNER_SEPARATOR = "--"
#: A re-issue's outgoing tokens (:mod:`spark_secrets.renew.rollover`): the pods use them until kubelet
#: projects the new file, so the service keeps them in the Secret under ``<key>.outgoing`` (a Hadoop token
#: file like the main key's) and renews them until ``outgoing-until`` (the write plus the projection bound,
#: capped at their max date). ``outgoing-tokens``: their handles, as ``tokens``; ``outgoing-expiry`` and
#: ``outgoing-renewed-at``: as ``expiry`` and ``renewed-at``; ``outgoing-verified``: the service's seal over
#: all of these, so that only outgoing tokens the service wrote itself are ever renewed or cancelled.
OUTGOING_SUFFIX = ".outgoing"
#: The max date of tokens whose identifiers say nothing (Kafka's) before their servers were asked: far off,
#: so that they are renewed (which learns it), never re-issued, at first sight.
UNKNOWN_MAX_DATE_MS = 1 << 62
ANNOTATION_OUTGOING_TOKENS = f"{DOMAIN}/outgoing-tokens"
ANNOTATION_OUTGOING_UNTIL = f"{DOMAIN}/outgoing-until"
ANNOTATION_OUTGOING_EXPIRY = f"{DOMAIN}/outgoing-expiry"
ANNOTATION_OUTGOING_RENEWED_AT = f"{DOMAIN}/outgoing-renewed-at"
ANNOTATION_OUTGOING_VERIFIED = f"{DOMAIN}/outgoing-verified"
OUTGOING_ANNOTATIONS = (ANNOTATION_OUTGOING_TOKENS, ANNOTATION_OUTGOING_UNTIL, ANNOTATION_OUTGOING_EXPIRY,
                        ANNOTATION_OUTGOING_RENEWED_AT, ANNOTATION_OUTGOING_VERIFIED)
_OUTGOING = frozenset(OUTGOING_ANNOTATIONS)  # looked for in every Secret's annotations at a restart
#: The service account of the job's driver; in controller mode it is granted ``get`` on the Secret.
ANNOTATION_SERVICE_ACCOUNT = f"{DOMAIN}/service-account"
#: The key of the token file in a token Secret unless ``spark.secrets.secret.key`` says otherwise
#: (Spark's own Kerberos step uses the same name).
DEFAULT_TOKEN_KEY = "hadoop-tokens"
#: The label selector of every token Secret.
TOKEN_SECRET_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_KIND}={KIND_HADOOP_TOKENS}"
#: What the renew service keeps current on every renewal; a released Secret loses them all.
SCHEDULE_ANNOTATIONS = (ANNOTATION_EXPIRY, ANNOTATION_MAX_DATE, ANNOTATION_EXPIRY_ESTIMATED, ANNOTATION_RENEWED_AT,
                        ANNOTATION_TOKENS, ANNOTATION_LAST_ACTION, ANNOTATION_ACTED_BY, ANNOTATION_NEXT_ACTION,
                        ANNOTATION_VERIFIED, *OUTGOING_ANNOTATIONS)


def rfc3339(ms: int) -> str:
    """Whole seconds (rounded down), for people: logs, ``status``, ``next-action``."""
    return dt.datetime.fromtimestamp(ms // 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_ms(ms: int) -> str:
    """To the millisecond (``2026-12-05T15:03:52.123Z``; a whole second as :func:`rfc3339` writes it), for the
    times decisions are made on: token servers answer in milliseconds, and whole seconds could move an
    expiry to the other side of a re-issue window's opening."""
    return f"{rfc3339(ms)[:-1]}.{ms % 1000:03d}Z" if ms % 1000 else rfc3339(ms)


def parse_rfc3339(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 UTC time (``...Z``, seconds or milliseconds)."""
    return round(dt.datetime.fromisoformat(text).timestamp() * 1000)  # Python 3.11 reads the "Z" itself


def outgoing_key(key: str) -> str:
    """The data key of a re-issue's outgoing tokens (still a valid Secret key: ``[-._a-zA-Z0-9]+``)."""
    return key + OUTGOING_SUFFIX


# -- the writer's side ------------------------------------------------------------------------------


def distinct_tokens(tokens: Iterable[Token]) -> list[Token]:
    """One delegation token per identifier (a file holds each twice: for RPC and for WebHDFS), WebHDFS first."""
    seen: dict[bytes, Token] = {}
    for token in sorted((t for t in tokens if t.is_delegation_token), key=lambda t: "WEBHDFS" not in t.kind):
        seen.setdefault(token.identifier, token)
    return list(seen.values())


def token_handles(creds: Credentials) -> str:
    """The ``tokens`` annotation: each distinct token with an empty password."""
    return " ".join(Token(t.identifier, b"", t.kind, t.service).encode_url() for t in distinct_tokens(creds))


def handle_tokens(handles: str) -> list[Token]:
    """The tokens of a ``tokens`` annotation (passwords empty); unreadable entries are skipped."""
    tokens = []
    for text in handles.split():
        try:
            tokens.append(Token.decode_url(text))
        except (TokenFormatError, ValueError):
            continue
    return tokens


def identifiers_of(tokens: Iterable[Token]) -> tuple[DelegationTokenIdentifier, ...]:
    return tuple(i for i in (t.decode_identifier() for t in tokens if t.is_delegation_token) if i is not None)


def schedule_annotations(creds: Credentials, expiry_ms: int, *, estimated: bool = False,
                         renewed_at_ms: int | None = None, max_date_ms: int | None = None) -> dict[str, str | None]:
    """The scheduling annotations for ``creds`` (None removes one in a merge patch); the max date is
    ``max_date_ms`` when given (what the servers said of every token), else the identifiers'."""
    idents = identifiers_of(creds)
    notes: dict[str, str | None] = {ANNOTATION_EXPIRY: rfc3339_ms(expiry_ms),
                                    ANNOTATION_EXPIRY_ESTIMATED: "true" if estimated else None,
                                    ANNOTATION_RENEWED_AT: rfc3339_ms(renewed_at_ms) if renewed_at_ms else None,
                                    ANNOTATION_TOKENS: token_handles(creds)}
    if max_date_ms is None and idents:
        max_date_ms = min(i.max_date for i in idents)
    if max_date_ms is not None:
        notes[ANNOTATION_MAX_DATE] = rfc3339_ms(max_date_ms)
    return notes


def release_patch(key: str, resource_version: str) -> dict[str, Any]:
    """The merge patch that empties a pre-created Secret: no tokens (nor a re-issue's outgoing ones), no
    token-Secret label or schedule."""
    return {"data": {key: None, outgoing_key(key): None},
            "metadata": {"resourceVersion": resource_version, "labels": {LABEL_KIND: None},
                         "annotations": {name: None for name in SCHEDULE_ANNOTATIONS}}}


# -- the reader's side ------------------------------------------------------------------------------


def _interned(text: object) -> str:
    return sys.intern(str(text))  # namespaces and keys repeat across thousands of Secrets


@dataclass(slots=True)
class Outgoing:
    """A re-issue's outgoing tokens as the Secret describes them (``outgoing-*``); ``repr`` shows no secret bytes.

    Anyone who may write the Secret may write these too: only :attr:`verified` (the service's seal, set by the
    service) makes them something to renew or cancel."""

    handles: str
    until_ms: int
    expiry_ms: int
    renewed_at_ms: int
    #: The ``outgoing-verified`` annotation as written.
    seal: str = ""
    #: The ``<key>.outgoing`` token file, when the Secret's data was read (None: not read, or absent).
    credentials: Credentials | None = None
    #: Set by the renew service only: its seal holds for exactly these annotations on this Secret (and, with
    #: the data read, the file holds exactly the tokens ``handles`` names).
    verified: bool = False

    def __repr__(self) -> str:
        return f"Outgoing(until={self.until_ms}, expiry={self.expiry_ms}, verified={self.verified})"

    @property
    def data_matches_handles(self) -> bool:
        return self.credentials is not None and bool(self.handles) and token_handles(self.credentials) == self.handles

    def cancel_tokens(self) -> list[Token]:
        """The distinct tokens (from the file if read, else the handles)."""
        return distinct_tokens(self.credentials) if self.credentials is not None else handle_tokens(self.handles)

    @classmethod
    def from_annotations(cls, notes: Mapping[str, str]) -> Outgoing | None:
        """None without any ``outgoing-*`` annotation; malformed times read as 0 (no seal of the service's holds
        for them, so they are ignored and dropped rather than making the Secret unusable)."""
        if _OUTGOING.isdisjoint(notes):
            return None

        def when(name: str) -> int:
            try:
                return parse_rfc3339(notes[name]) if name in notes else 0
            except ValueError:
                return 0

        return cls(notes.get(ANNOTATION_OUTGOING_TOKENS, ""), when(ANNOTATION_OUTGOING_UNTIL),
                   when(ANNOTATION_OUTGOING_EXPIRY), when(ANNOTATION_OUTGOING_RENEWED_AT),
                   notes.get(ANNOTATION_OUTGOING_VERIFIED, ""))


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a third of the start at 100,000 Secrets
class TokenSecret:
    """What the renew service knows of one token Secret; ``repr`` shows no secret bytes.

    Built from metadata alone (:meth:`from_metadata`, ``credentials`` None) for scheduling, or with the
    token file (:meth:`from_object`) when the service acts on it.
    """

    namespace: str
    name: str
    uid: str
    resource_version: str
    key: str
    filesystems: tuple[str, ...]
    expiry_ms: int
    renewed_at_ms: int | None
    max_date_annotation_ms: int | None = None
    #: The ``tokens`` annotation: what cancelling needs once the data is gone.
    handles: str = ""
    credentials: Credentials | None = None
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
    #: The job's app name (label), for the expiry metrics by namespace and app.
    app: str = ""
    #: The ``verified`` annotation as written (anyone may have written it: see :attr:`verified`).
    seal: str = ""
    #: Set by the renew service only: the seal is its own for this Secret as it is, so the tokens named
    #: by ``handles`` were renewed by the service (genuine) for this owner label. Never read from the Secret.
    verified: bool = False
    #: A re-issue's outgoing tokens, if the Secret names any (None for nearly all: one slot per Secret).
    outgoing: Outgoing | None = None
    #: What the servers said of the tokens whose identifiers say nothing (Kafka's), by identifier. Set by the
    #: renew service from the server's answer (:meth:`learn`), never read from the Secret.
    facts: dict[bytes, TokenFacts] | None = None

    def __repr__(self) -> str:
        held = f"tokens={len(self.credentials)}" if self.credentials is not None else "metadata only"
        return f"TokenSecret({self.namespace}/{self.name}, rv={self.resource_version}, {held})"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def has_data(self) -> bool:
        return self.credentials is not None

    @property
    def identifiers(self) -> tuple[DelegationTokenIdentifier, ...]:
        return identifiers_of(self.credentials if self.credentials is not None else self.cancel_tokens())

    @property
    def max_date_ms(self) -> int:
        if self.credentials is None and self.max_date_annotation_ms is not None:
            return self.max_date_annotation_ms
        dates = [i.max_date for i in self.identifiers] + [f.max_ms for f in (self.facts or {}).values()]
        if dates:
            return min(dates)
        # Only tokens whose servers alone know their dates (Kafka's), not asked yet: the first renewal learns it.
        return self.max_date_annotation_ms or UNKNOWN_MAX_DATE_MS

    @property
    def issue_date_ms(self) -> int:
        dates = [i.issue_date for i in self.identifiers] + [f.issue_ms for f in (self.facts or {}).values()]
        return max(dates) if dates else 0

    def opaque_tokens(self) -> list[Token]:
        """The distinct tokens whose identifiers say nothing of owner or dates (Kafka's; needs the data)."""
        return [t for t in self.distinct_tokens() if not t.has_hadoop_identifier]

    def learn(self, token: Token, facts: TokenFacts) -> None:
        """What ``token``'s server said of it (the renew service only)."""
        if self.facts is None:
            self.facts = {}
        self.facts[token.identifier] = facts

    @property
    def expiry_known(self) -> bool:
        """Whether the expiry came from the token's server (a renewal or re-issue by the service)."""
        return self.renewed_at_ms is not None and not self.expiry_estimated

    def token_owners(self) -> set[str]:
        """The short names of every distinct token's owner (needs the data): what a Hadoop identifier says
        (its server checks it on renewal), and what the servers said of the others (:meth:`learn`)."""
        return ({short_name(i.owner) for i in identifiers_of(self.distinct_tokens())}
                | {f.owner for f in (self.facts or {}).values()})

    @property
    def data_matches_handles(self) -> bool:
        """Whether the token file holds exactly the tokens the ``tokens`` annotation names (needs the data)."""
        return self.credentials is not None and token_handles(self.credentials) == self.handles

    def distinct_tokens(self) -> list[Token]:
        """One token per identifier, WebHDFS first (needs the data)."""
        if self.credentials is None:
            raise UnusableSecret(f"{self.ref}: its token file was not read", "read the Secret first")
        return distinct_tokens(self.credentials)

    def cancel_tokens(self) -> list[Token]:
        """What cancelling needs: the distinct tokens (from the data if read, else the annotation)."""
        if self.credentials is not None:
            return distinct_tokens(self.credentials)
        return handle_tokens(self.handles)

    @classmethod
    def from_metadata(cls, obj: Mapping[str, Any]) -> TokenSecret:
        """From a Secret's metadata (a full object or a PartialObjectMetadata); raises :class:`UnusableSecret`
        only for malformed annotations: the data is checked when the service acts."""
        meta = obj.get("metadata") or {}
        notes = meta.get("annotations") or {}
        try:
            expiry = parse_rfc3339(notes[ANNOTATION_EXPIRY]) if ANNOTATION_EXPIRY in notes else 0
            renewed = parse_rfc3339(notes[ANNOTATION_RENEWED_AT]) if ANNOTATION_RENEWED_AT in notes else None
            max_date = parse_rfc3339(notes[ANNOTATION_MAX_DATE]) if ANNOTATION_MAX_DATE in notes else None
        except ValueError:
            ref = f"{meta.get('namespace')}/{meta.get('name')}"  # built for the message only
            raise UnusableSecret(f"token Secret {ref} has a malformed time annotation") from None
        labels = meta.get("labels") or {}
        owners = tuple((_interned(o.get("kind")), str(o.get("name")), str(o.get("uid")))
                       for o in meta.get("ownerReferences") or [])
        try:
            created = parse_rfc3339(meta["creationTimestamp"]) if meta.get("creationTimestamp") else 0
        except ValueError:
            created = 0
        return cls(_interned(meta.get("namespace")), str(meta.get("name")), str(meta.get("uid", "")),
                   str(meta.get("resourceVersion", "")), _interned(notes.get(ANNOTATION_KEY, DEFAULT_TOKEN_KEY)),
                   tuple(_interned(f) for f in notes.get(ANNOTATION_FILESYSTEMS, "").split(",") if f), expiry,
                   renewed, max_date, notes.get(ANNOTATION_TOKENS, ""),
                   owners=owners, created_ms=created, persistent=labels.get(LABEL_PERSISTENT) == "true",
                   owner_label=_interned(labels.get(LABEL_OWNER, "")),
                   service_account=notes.get(ANNOTATION_SERVICE_ACCOUNT) or None,
                   app=_interned(labels.get(LABEL_APP, "")), seal=notes.get(ANNOTATION_VERIFIED, ""),
                   outgoing=Outgoing.from_annotations(notes),
                   # no expiry annotation: nothing known, so renew at first sight as for an estimate
                   expiry_estimated=notes.get(ANNOTATION_EXPIRY_ESTIMATED) == "true" or ANNOTATION_EXPIRY not in notes)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> TokenSecret:
        """From a whole Secret (data included); raises :class:`UnusableSecret`."""
        ts = cls.from_metadata(obj)
        raw = (obj.get("data") or {}).get(ts.key)
        if raw is None:
            raise UnusableSecret(f"token Secret {ts.ref} has no key {ts.key!r}", "recreate it with spark-secrets")
        try:
            data = base64.b64decode(raw)
            creds = Credentials.from_bytes(data)
        except (TokenFormatError, ValueError) as exc:
            problem = exc.problem if isinstance(exc, TokenFormatError) else "not base64"
            raise UnusableSecret(f"token Secret {ts.ref} does not hold a Hadoop token file ({problem})") from None
        if not distinct_tokens(creds):
            raise UnusableSecret(f"token Secret {ts.ref} holds no delegation tokens")
        expiry = ts.expiry_ms or min((i.max_date for i in identifiers_of(creds)), default=0)
        outgoing = ts.outgoing
        raw_outgoing = (obj.get("data") or {}).get(outgoing_key(ts.key))
        if raw_outgoing is not None:  # unreadable: no credentials, so it matches no seal and is dropped
            outgoing = outgoing or Outgoing("", 0, 0, 0)
            try:
                outgoing.credentials = Credentials.from_bytes(base64.b64decode(raw_outgoing))
            except (TokenFormatError, ValueError):
                pass
        return replace(ts, credentials=creds, expiry_ms=expiry, file_format=data[4], outgoing=outgoing)
