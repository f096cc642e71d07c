"""Hadoop ``Credentials`` token-storage files (magic ``HDTS``), format version 0 and 1.

Version 0 is the Writable layout that Hadoop 3 writes by default and Hadoop 2 can read; version 1
is the protobuf ``CredentialsProto`` that Hadoop 3 also reads. Both are read; version 0 is written
unless asked otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from spark_secrets.errors import TokenFormatError
from spark_secrets.hadoop.token import Token
from spark_secrets.hadoop.writable import Reader, Writer

MAGIC = b"HDTS"
WRITABLE = 0
PROTOBUF = 1
FORMATS = (WRITABLE, PROTOBUF)


class Credentials:
    """Tokens and secret keys by alias, as ``org.apache.hadoop.security.Credentials``; equal when both are."""

    __slots__ = ("tokens", "secret_keys")
    __hash__ = None  # type: ignore[assignment]  # changes, so not a key

    def __init__(self, tokens: dict[str, Token] | None = None, secret_keys: dict[str, bytes] | None = None) -> None:
        self.tokens: dict[str, Token] = tokens if tokens is not None else {}
        self.secret_keys: dict[str, bytes] = secret_keys if secret_keys is not None else {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return self.tokens == other.tokens and self.secret_keys == other.secret_keys

    def __repr__(self) -> str:
        return f"Credentials(tokens={list(self.tokens.values())!r}, secret_keys={sorted(self.secret_keys)!r})"

    def add(self, token: Token, alias: str | None = None) -> None:
        """Add under ``alias`` (default: the token's service, as Hadoop's issuers do)."""
        self.tokens[alias if alias is not None else token.service] = token

    def __iter__(self) -> Iterator[Token]:
        return iter(self.tokens.values())

    def __len__(self) -> int:
        return len(self.tokens)

    # -- bytes -------------------------------------------------------------------------------------
    def to_bytes(self, version: int = WRITABLE) -> bytes:
        if version == WRITABLE:
            w = Writer().raw(MAGIC).byte(WRITABLE).vint(len(self.tokens))
            for alias, token in self.tokens.items():
                token.write(w.text(alias))
            w.vint(len(self.secret_keys))
            for alias, secret in self.secret_keys.items():
                w.text(alias).vbytes(secret)
            return w.getvalue()
        if version == PROTOBUF:
            body = b"".join(_pb_field(1, _pb_kv(alias, token=t)) for alias, t in self.tokens.items())
            body += b"".join(_pb_field(2, _pb_kv(alias, secret=s)) for alias, s in self.secret_keys.items())
            return MAGIC + bytes([PROTOBUF]) + _varint(len(body)) + body
        raise ValueError(f"token-storage format version must be 0 or 1, not {version}")

    @classmethod
    def from_bytes(cls, data: bytes) -> Credentials:
        if len(data) < 5 or data[:4] != MAGIC:
            raise TokenFormatError("not a Hadoop token file (no HDTS magic at the start)")
        version = data[4]
        if version == WRITABLE:
            return cls._read_writable(Reader(data[5:], "token file"))
        if version == PROTOBUF:
            return cls._read_protobuf(data[5:])
        raise TokenFormatError(f"unknown token-file format version {version} (this reads versions 0 and 1)")

    @classmethod
    def _read_writable(cls, r: Reader) -> Credentials:
        creds = cls()
        for _ in range(_count(r.vint(), "token")):
            alias = r.text()
            creds.tokens[alias] = Token.read(r)
        for _ in range(_count(r.vint(), "secret key")):
            alias = r.text()
            creds.secret_keys[alias] = r.vbytes()
        return creds

    @classmethod
    def _read_protobuf(cls, data: bytes) -> Credentials:
        length, pos = _read_varint(data, 0)
        if pos + length > len(data):
            raise TokenFormatError("malformed token file: protobuf message shorter than its length prefix")
        creds = cls()
        for number, value in _pb_fields(data[pos:pos + length]):
            if number not in (1, 2) or not isinstance(value, bytes):
                continue  # unknown fields are skipped, as protobuf does
            kv = dict(_pb_fields(value))
            alias = kv.get(1)
            if not isinstance(alias, bytes):
                raise TokenFormatError("malformed token file: credential entry without an alias")
            if number == 1 and isinstance(kv.get(2), bytes):
                creds.tokens[alias.decode()] = _pb_token(kv[2])  # type: ignore[arg-type]
            elif number == 2:
                secret = kv.get(3, b"")
                creds.secret_keys[alias.decode()] = secret if isinstance(secret, bytes) else b""
        return creds

    # -- files -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise TokenFormatError(f"token file {path} does not exist") from None
        except OSError as exc:
            raise TokenFormatError(f"cannot read token file {path}: {exc.strerror}") from None
        return cls.from_bytes(data)

    def save(self, path: str | os.PathLike[str], version: int = WRITABLE) -> Path:
        """Write atomically (temp file + rename) with mode 0600."""
        target = Path(path)
        fd, tmp = _new_file(target)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self.to_bytes(version))
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def _new_file(target: Path) -> tuple[int, Path]:
    """A file beside ``target`` that this call created (``O_EXCL``: never a file or link already there), under an
    unguessable name, as ``tempfile.mkstemp`` makes; that module loads shutil and random, 3 ms of a cold fetch."""
    while True:
        tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), tmp
        except FileExistsError:
            continue


def _count(n: int, what: str) -> int:
    if n < 0:
        raise TokenFormatError(f"malformed token file: negative {what} count")
    return n


# -- minimal protobuf (proto2 wire format: varints and length-delimited fields only) ----------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise TokenFormatError("malformed token file: truncated protobuf varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _pb_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _pb_fields(data: bytes) -> Iterator[tuple[int, bytes | int]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire == 2:
            n, pos = _read_varint(data, pos)
            if pos + n > len(data):
                raise TokenFormatError("malformed token file: truncated protobuf field")
            yield number, data[pos:pos + n]
            pos += n
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise TokenFormatError(f"malformed token file: unsupported protobuf wire type {wire}")


def _pb_kv(alias: str, token: Token | None = None, secret: bytes | None = None) -> bytes:
    out = _pb_field(1, alias.encode())
    if token is not None:
        out += _pb_field(2, b"".join((_pb_field(1, token.identifier), _pb_field(2, token.password),
                                      _pb_field(3, token.kind.encode()), _pb_field(4, token.service.encode()))))
    if secret is not None:
        out += _pb_field(3, secret)
    return out


def _pb_token(data: bytes) -> Token:
    fields = {n: v for n, v in _pb_fields(data) if isinstance(v, bytes)}
    missing = [name for n, name in ((1, "identifier"), (2, "password"), (3, "kind"), (4, "service"))
               if n not in fields]
    if missing:
        raise TokenFormatError(f"malformed token file: protobuf token lacks required {', '.join(missing)}")
    return Token(identifier=fields[1], password=fields[2], kind=fields[3].decode(), service=fields[4].decode())
