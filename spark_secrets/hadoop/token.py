"""Hadoop ``Token``: identifier, password, kind, service; Writable and URL-string forms.

The password (and so the URL string and the Writable bytes) is secret: ``repr`` and ``str``
show only kind, service and the decoded identifier.
"""

import base64
import datetime as dt
import binascii
from typing import NamedTuple

from spark_secrets.errors import TokenFormatError
from spark_secrets.hadoop.identifier import DELEGATION_KINDS, OPAQUE_DELEGATION_KINDS, DelegationTokenIdentifier
from spark_secrets.hadoop.writable import Reader, Writer


class Token(NamedTuple):
    """Immutable, compared and hashed by its four fields; :meth:`__repr__` leaves out the identifier and password."""

    identifier: bytes
    password: bytes
    kind: str
    service: str

    # -- Writable form -----------------------------------------------------------------------------
    def write(self, w: Writer) -> Writer:
        return w.vbytes(self.identifier).vbytes(self.password).text(self.kind).text(self.service)

    @classmethod
    def read(cls, r: Reader) -> "Token":
        return cls(identifier=r.vbytes(), password=r.vbytes(), kind=r.text(), service=r.text())

    def to_bytes(self) -> bytes:
        return self.write(Writer()).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Token":
        r = Reader(data, "token")
        token = cls.read(r)
        if r.remaining:
            raise TokenFormatError(f"malformed token: {r.remaining} bytes after the service field")
        return token

    # -- URL-string form (Token.encodeToUrlString / decodeFromUrlString) -----------------------------
    def encode_url(self) -> str:
        """URL-safe base64 without padding or line breaks, as commons-codec ``Base64(0, null, true)``."""
        return base64.urlsafe_b64encode(self.to_bytes()).rstrip(b"=").decode("ascii")

    @classmethod
    def decode_url(cls, text: str) -> "Token":
        """Accepts both base64 alphabets, with or without padding, as Hadoop does."""
        cleaned = "".join(text.split()).rstrip("=").replace("+", "-").replace("/", "_")
        try:
            raw = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
        except (binascii.Error, ValueError):
            raise TokenFormatError("token URL string is not base64") from None
        return cls.from_bytes(raw)

    # -- meaning -----------------------------------------------------------------------------------
    @property
    def is_delegation_token(self) -> bool:
        """A token some server renews and cancels (Hadoop's kinds, and Spark's Kafka tokens)."""
        return self.kind in DELEGATION_KINDS or self.kind in OPAQUE_DELEGATION_KINDS

    @property
    def has_hadoop_identifier(self) -> bool:
        """Whether the identifier is Hadoop's (owner, renewer, dates); else only its server knows them."""
        return self.kind in DELEGATION_KINDS

    def decode_identifier(self) -> DelegationTokenIdentifier | None:
        """The decoded identifier for Hadoop's delegation-token kinds; ``None`` for kinds kept opaque."""
        if not self.has_hadoop_identifier:
            return None
        return DelegationTokenIdentifier.decode(self.identifier)

    def with_service(self, service: str, kind: str | None = None) -> "Token":
        """The same identifier and password under another service (and kind)."""
        return self._replace(service=service, kind=kind if kind is not None else self.kind)

    @property
    def fingerprint(self) -> str:
        """A short, non-secret handle for logs: a hash of the identifier (never of the password)."""
        import hashlib  # here: OpenSSL's hash module is 3 ms of a cold fetch, which prints no fingerprint

        return hashlib.sha256(self.identifier).hexdigest()[:12]

    def __repr__(self) -> str:
        ident = ""
        try:
            decoded = self.decode_identifier()
        except TokenFormatError:
            decoded = None
        if decoded is not None:
            ident = f", owner={decoded.owner!r}, renewer={decoded.renewer!r}, seq={decoded.sequence_number}"
        return f"Token(kind={self.kind!r}, service={self.service!r}{ident}, id={self.fingerprint})"


class TokenFacts(NamedTuple):
    """Whose a token is and when it ends, as its server says: for Hadoop's kinds the identifier (which the
    server checks against the password on every renewal), for others (Kafka) the server's own answer."""

    #: The owner's short name (``alice``), as Hadoop compares owners.
    owner: str
    issue_ms: int
    max_ms: int

    @classmethod
    def of_identifier(cls, token: Token) -> "TokenFacts | None":
        ident = token.decode_identifier()
        if ident is None:
            return None
        return cls(short_name(ident.owner), ident.issue_date, ident.max_date)


def short_name(principal: str) -> str:
    """``alice/host@REALM`` or Kafka's ``User:alice`` → ``alice`` (what HDFS compares; the owner label holds it)."""
    name = principal.split(":", 1)[1] if principal.startswith("User:") else principal
    return name.split("@")[0].split("/")[0]


def utc_text(ms: int) -> str:
    """Milliseconds since the epoch as people read them in ``show`` output and logs."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_token(alias: str, token: Token) -> dict[str, object]:
    """The non-secret facts about a token, for ``show`` and logs."""
    out: dict[str, object] = {"alias": alias, "kind": token.kind, "service": token.service, "id": token.fingerprint}
    ident = token.decode_identifier()
    if ident is not None:
        out.update(owner=ident.owner, renewer=ident.renewer, real_user=ident.real_user or None,
                   issue_date=utc_text(ident.issue_date), max_date=utc_text(ident.max_date),
                   sequence_number=ident.sequence_number, master_key_id=ident.master_key_id)
    return out
