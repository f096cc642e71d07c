"""Unit tests of the codec against the byte-level spec's worked examples, plus round-trip properties.

Cross-checks with a real JVM live in the integration tests; these pin the bytes.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spark_secrets.hadoop.credentials import PROTOBUF, WRITABLE, Credentials
from spark_secrets.errors import TokenFormatError
from spark_secrets.hadoop.identifier import DelegationTokenIdentifier
from spark_secrets.hadoop.token import Token
from spark_secrets.hadoop.writable import Reader, Writer, encode_vlong

# Spec §1 table.
VLONG_VECTORS = [
    (0, "00"), (127, "7f"), (128, "8f80"), (-1, "ff"), (-112, "90"), (-113, "8770"), (300, "8e012c"),
    (1700000000000, "8a018bcfe56800"), (1700604800000, "8a018bf3f1ec00"),
    (2**63 - 1, "887fffffffffffffff"), (-(2**63), "807fffffffffffffff"),
]

# Spec §8, worked example A (41 bytes).
IDENT_A = bytes.fromhex(
    "00" "11616c696365404558414d504c452e434f4d" "047961726e" "00"
    "8a018bcfe56800" "8a018bf3f1ec00" "2a" "07")

# Spec §9, worked example B (120 bytes).
FILE_B = bytes.fromhex("""
48 44 54 53 00 01 0d 31 30 2e 30 2e 30 2e 31 3a 38 30 32 30 29 00 11 61 6c 69 63 65 40 45 58 41
4d 50 4c 45 2e 43 4f 4d 04 79 61 72 6e 00 8a 01 8b cf e5 68 00 8a 01 8b f3 f1 ec 00 2a 07 14 07
7e c4 12 67 c9 64 92 e2 71 99 9e a0 66 c4 3b de 69 6d f4 15 48 44 46 53 5f 44 45 4c 45 47 41 54
49 4f 4e 5f 54 4f 4b 45 4e 0d 31 30 2e 30 2e 30 2e 31 3a 38 30 32 30 00""")
URL_B = ("KQARYWxpY2VARVhBTVBMRS5DT00EeWFybgCKAYvP5WgAigGL8_HsACoHFAd-xBJnyWSS4nGZnqBmxDveaW30FUhERlNf"
         "REVMRUdBVElPTl9UT0tFTg0xMC4wLjAuMTo4MDIw")
PASSWORD_B = bytes.fromhex("077ec41267c96492e271999ea066c43bde696df4")


@pytest.mark.parametrize(("value", "hexbytes"), VLONG_VECTORS)
def test_vlong_matches_spec_table(value: int, hexbytes: str) -> None:
    assert encode_vlong(value).hex() == hexbytes
    r = Reader(bytes.fromhex(hexbytes))
    assert r.vlong() == value
    assert r.remaining == 0


def test_vint_rejects_values_beyond_int32() -> None:
    with pytest.raises(TokenFormatError, match="int"):
        Reader(encode_vlong(2**31)).vint()


def test_identifier_example_a() -> None:
    assert len(IDENT_A) == 41
    ident = DelegationTokenIdentifier.decode(IDENT_A)
    assert ident == DelegationTokenIdentifier(owner="alice@EXAMPLE.COM", renewer="yarn", real_user="",
                                              issue_date=1700000000000, max_date=1700604800000,
                                              sequence_number=42, master_key_id=7)
    assert ident.encode() == IDENT_A
    assert not ident.is_proxy
    assert (ident.max_lifetime_end - ident.issued).days == 7


def test_identifier_rejects_unknown_version_naming_it() -> None:
    with pytest.raises(TokenFormatError, match="version 1"):
        DelegationTokenIdentifier.decode(b"\x01" + IDENT_A[1:])


def test_token_file_example_b_reads_and_writes_byte_for_byte() -> None:
    creds = Credentials.from_bytes(FILE_B)
    assert list(creds.tokens) == ["10.0.0.1:8020"]
    token = creds.tokens["10.0.0.1:8020"]
    assert token.kind == "HDFS_DELEGATION_TOKEN"
    assert token.service == "10.0.0.1:8020"
    assert token.identifier == IDENT_A
    assert token.password == PASSWORD_B
    assert creds.secret_keys == {}
    assert creds.to_bytes() == FILE_B
    assert creds.to_bytes(WRITABLE) == FILE_B


def test_url_string_example_b() -> None:
    token = Credentials.from_bytes(FILE_B).tokens["10.0.0.1:8020"]
    assert token.encode_url() == URL_B
    assert Token.decode_url(URL_B) == token
    # The decoder accepts the standard alphabet and padding too, as commons-codec does.
    standard = URL_B.replace("-", "+").replace("_", "/") + "=" * (-len(URL_B) % 4)
    assert Token.decode_url(standard) == token


def test_v1_prefix_example_b() -> None:
    v1 = Credentials.from_bytes(FILE_B).to_bytes(PROTOBUF)
    assert v1.startswith(bytes.fromhex("48445453 01 7a 0a 78 0a 0d") + b"10.0.0.1:8020")
    assert Credentials.from_bytes(v1) == Credentials.from_bytes(FILE_B)


@pytest.mark.parametrize("version", [2, 0x7f, 0xff])
def test_unknown_file_version_is_named(version: int) -> None:
    with pytest.raises(TokenFormatError, match=f"version {version}"):
        Credentials.from_bytes(b"HDTS" + bytes([version]) + b"\x00\x00")


@pytest.mark.parametrize("data", [b"", b"HDT", b"NOPE\x00\x00\x00", b"\x00" * 16])
def test_not_a_token_file(data: bytes) -> None:
    with pytest.raises(TokenFormatError, match="HDTS"):
        Credentials.from_bytes(data)


@pytest.mark.parametrize("cut", [5, 6, 12, 30, 70, 100, 119])
def test_truncated_files_fail_cleanly(cut: int) -> None:
    with pytest.raises(TokenFormatError):
        Credentials.from_bytes(FILE_B[:cut])
    v1 = Credentials.from_bytes(FILE_B).to_bytes(PROTOBUF)
    with pytest.raises(TokenFormatError):
        Credentials.from_bytes(v1[:cut])


def test_repr_and_errors_never_show_the_password() -> None:
    creds = Credentials.from_bytes(FILE_B)
    token = creds.tokens["10.0.0.1:8020"]
    for text in (repr(token), str(token), repr(creds)):
        assert PASSWORD_B.hex() not in text
        assert URL_B not in text
        assert "alice@EXAMPLE.COM" in text or "Credentials" in text
    assert token.fingerprint in repr(token)
    with pytest.raises(TokenFormatError) as caught:
        Token.decode_url(URL_B[:-10])
    assert PASSWORD_B.hex() not in str(caught.value)
    assert URL_B[:-10] not in str(caught.value)


def test_unknown_kinds_are_kept_opaque() -> None:
    token = Token(identifier=b"\x05opaque", password=b"pw", kind="SOME_OTHER_TOKEN", service="svc")
    assert token.decode_identifier() is None
    creds = Credentials({"svc": token})
    assert Credentials.from_bytes(creds.to_bytes()).tokens["svc"] == token


# -- properties ----------------------------------------------------------------------------------
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
blobs = st.binary(max_size=200)
tokens = st.builds(Token, identifier=blobs, password=blobs, kind=texts, service=texts)
identifiers = st.builds(DelegationTokenIdentifier, owner=texts, renewer=texts, real_user=texts,
                        issue_date=st.integers(-(2**63), 2**63 - 1), max_date=st.integers(-(2**63), 2**63 - 1),
                        sequence_number=st.integers(-(2**31), 2**31 - 1),
                        master_key_id=st.integers(-(2**31), 2**31 - 1))
credentials = st.builds(Credentials, tokens=st.dictionaries(texts, tokens, max_size=5),
                        secret_keys=st.dictionaries(texts, blobs, max_size=3))


@given(st.integers(-(2**63), 2**63 - 1))
def test_vlong_round_trip(value: int) -> None:
    data = encode_vlong(value)
    assert 1 <= len(data) <= 9
    assert Reader(data).vlong() == value


@given(identifiers)
def test_identifier_round_trip(ident: DelegationTokenIdentifier) -> None:
    assert DelegationTokenIdentifier.decode(ident.encode()) == ident


@given(tokens)
def test_token_round_trips(token: Token) -> None:
    assert Token.from_bytes(token.to_bytes()) == token
    assert Token.decode_url(token.encode_url()) == token
    assert "=" not in token.encode_url()


@given(credentials, st.sampled_from([WRITABLE, PROTOBUF]))
def test_credentials_round_trip(creds: Credentials, version: int) -> None:
    data = creds.to_bytes(version)
    assert data[:5] == b"HDTS" + bytes([version])
    assert Credentials.from_bytes(data) == creds


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_reader(data: bytes) -> None:
    for candidate in (data, b"HDTS\x00" + data, b"HDTS\x01" + data):
        try:
            Credentials.from_bytes(candidate)
        except TokenFormatError:
            pass


def test_writer_text_is_utf8_with_vint_length() -> None:
    assert Writer().text("").getvalue() == b"\x00"
    assert Writer().text("é").getvalue() == b"\x02\xc3\xa9"


def test_save_replaces_the_file_whole_with_mode_0600_and_leaves_nothing_beside_it(tmp_path: Path, monkeypatch:
                                                                                  pytest.MonkeyPatch) -> None:
    target = tmp_path / "job.tokens"
    target.write_bytes(b"old")
    target.chmod(0o644)
    creds = Credentials.from_bytes(FILE_B)
    assert creds.save(target) == target
    assert target.read_bytes() == FILE_B and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["job.tokens"]
    # A write that fails leaves the old file as it was, and no temporary file (the control: the save above).
    monkeypatch.setattr(Credentials, "to_bytes", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        creds.save(target)
    assert target.read_bytes() == FILE_B and [p.name for p in tmp_path.iterdir()] == ["job.tokens"]
