"""Hadoop ``Writable`` primitives: VInt/VLong (``WritableUtils``) and ``Text``, big-endian throughout."""

from __future__ import annotations

from spark_secrets.errors import TokenFormatError

TEXT_MAX_LEN = 1 << 20  # Text.DEFAULT_MAX_LEN, used when reading identifier fields
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1


def encode_vlong(value: int) -> bytes:
    """``WritableUtils.writeVLong``: one byte for -112..127, else a length byte and 1-8 bytes."""
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{value} does not fit in a Java long")
    if -112 <= value <= 127:
        return (value & 0xFF).to_bytes(1, "big")
    length = -112
    if value < 0:
        value = ~value
        length = -120
    data = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return ((length - len(data)) & 0xFF).to_bytes(1, "big") + data


class Reader:
    """Reads Writable fields from bytes, with errors that say where the data went wrong."""

    def __init__(self, data: bytes, what: str = "data") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.what = what

    def _fail(self, problem: str) -> TokenFormatError:
        return TokenFormatError(f"malformed {self.what}: {problem} at byte {self.pos}")

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self._fail(f"needs {n} bytes, {self.remaining} left")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def byte(self) -> int:
        return self.raw(1)[0]

    def vlong(self) -> int:
        first = int.from_bytes(self.raw(1), "big", signed=True)
        if first >= -112:
            return first
        negative = first < -120
        n = -(first + 120) if negative else -(first + 112)
        value = int.from_bytes(self.raw(n), "big")
        return ~value if negative else value

    def vint(self) -> int:
        start = self.pos
        value = self.vlong()
        if not INT_MIN <= value <= INT_MAX:
            self.pos = start
            raise self._fail("value too long to fit in integer")
        return value

    def vbytes(self, limit: int = 64 << 20) -> bytes:
        """A VInt length, then that many bytes."""
        n = self.vint()
        if n < 0 or n > limit:
            raise self._fail(f"length {n} out of range")
        return self.raw(n)

    def text(self, limit: int = TEXT_MAX_LEN) -> str:
        raw = self.vbytes(limit)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._fail("Text is not valid UTF-8") from None


class Writer:
    """Builds Writable bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def raw(self, data: bytes) -> Writer:
        self.buf += data
        return self

    def byte(self, value: int) -> Writer:
        self.buf.append(value & 0xFF)
        return self

    def vlong(self, value: int) -> Writer:
        self.buf += encode_vlong(value)
        return self

    def vint(self, value: int) -> Writer:
        if not INT_MIN <= value <= INT_MAX:
            raise ValueError(f"{value} does not fit in a Java int")
        return self.vlong(value)

    def vbytes(self, data: bytes) -> Writer:
        return self.vint(len(data)).raw(data)

    def text(self, value: str) -> Writer:
        return self.vbytes(value.encode("utf-8"))

    def getvalue(self) -> bytes:
        return bytes(self.buf)
