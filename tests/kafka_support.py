"""A Kafka broker's delegation-token manager behind the client's :class:`Channel` seam, for unit tests:
it answers the four token requests as Kafka does (owner, renewers, expiry, error codes), no socket."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

from spark_secrets.errors import KafkaUnavailable
from spark_secrets.tokens.kafkaclient import BrokerSettings

NOW = 1_795_000_000_000
DAY = 86_400_000
#: A Kafka 3.9 broker's versions of the four requests (and SASL, ApiVersions).
VERSIONS = {38: (1, 3), 39: (1, 2), 40: (1, 2), 41: (1, 3), 17: (0, 1), 18: (0, 4), 36: (0, 2)}


class FakeKafka:
    def __init__(self, versions: dict[int, tuple[int, int]] | None = None, caller: str = "User:spark-renewer") -> None:
        self.versions = dict(versions or VERSIONS)
        self.caller = caller
        self.tokens: dict[bytes, dict[str, Any]] = {}
        self.calls: list[tuple[str, ...]] = []
        self.down: set[str] = set()
        self.fail: dict[int, int] = {}  # api key -> the error code to answer with
        #: Told (op, server) of each obtain, renew and cancel, as the other kinds' fakes record them.
        self.record: Callable[[str, str], None] = lambda op, server: None

    def connect(self, settings: BrokerSettings, server: str, credentials: object) -> FakeChannel:
        if server in self.down:
            raise KafkaUnavailable(f"cannot connect to Kafka broker {server} (Connection refused)")
        return FakeChannel(self, server, settings)


class FakeChannel:
    def __init__(self, broker: FakeKafka, server: str, settings: BrokerSettings) -> None:
        self.broker, self.server, self.settings = broker, server, settings
        self.versions = broker.versions

    def close(self) -> None:
        pass

    def roundtrip(self, frame: bytes) -> bytes:
        from spark_secrets.tokens import kafkamessages as m

        key, version, correlation = struct.unpack(">hhi", frame[4:12])
        name = {38: "CreateDelegationToken", 39: "RenewDelegationToken", 40: "ExpireDelegationToken",
                41: "DescribeDelegationToken"}[key]
        request = getattr(m, name + "Request").decode(frame[4:], version=version, header=True)
        fields = self.answer(key, request) if key not in self.broker.fail else {"error_code": self.broker.fail[key]}
        response = getattr(m, name + "Response")(version=version, **fields)
        response.with_header(correlation_id=correlation)
        return bytes(response.encode(header=True))

    def answer(self, key: int, request: Any) -> dict[str, Any]:
        b = self.broker
        if key == 38:
            owner = (f"{request.owner_principal_type}:{request.owner_principal_name}" if request.owner_principal_name
                     else b.caller)
            token_id = f"tok-{len(b.tokens) + 1}"
            hmac = hashlib.sha256(token_id.encode()).digest()
            renewers = [f"{r.principal_type}:{r.principal_name}" for r in request.renewers]
            b.tokens[hmac] = dict(token_id=token_id, owner=owner, renewers=renewers, expiry=NOW + DAY,
                                  max=NOW + 7 * DAY)
            b.calls.append(("create", self.server, owner, ",".join(renewers)))
            b.record("obtain", self.server)
            kind, _, name = owner.partition(":")
            rkind, _, rname = b.caller.partition(":")
            return dict(error_code=0, principal_type=kind, principal_name=name, token_requester_principal_type=rkind,
                        token_requester_principal_name=rname, issue_timestamp_ms=NOW, expiry_timestamp_ms=NOW + DAY,
                        max_timestamp_ms=NOW + 7 * DAY, token_id=token_id, hmac=hmac, throttle_time_ms=0)
        if key in (39, 40):
            token = b.tokens.get(bytes(request.hmac))
            if token is None:
                return dict(error_code=62, expiry_timestamp_ms=-1, throttle_time_ms=0)
            if b.caller != token["owner"] and b.caller not in token["renewers"]:
                return dict(error_code=63, expiry_timestamp_ms=-1, throttle_time_ms=0)
            if key == 40:
                del b.tokens[bytes(request.hmac)]
                b.calls.append(("expire", self.server, token["token_id"]))
                b.record("cancel", self.server)
                return dict(error_code=0, expiry_timestamp_ms=NOW, throttle_time_ms=0)
            token["expiry"] = min(token["max"], NOW + DAY)  # now + the renew period (the clock stands still)
            b.calls.append(("renew", self.server, token["token_id"]))
            b.record("renew", self.server)
            return dict(error_code=0, expiry_timestamp_ms=token["expiry"], throttle_time_ms=0)
        described = m_described(b)
        b.calls.append(("describe", self.server))
        return dict(error_code=0, tokens=described, throttle_time_ms=0)


def m_described(broker: FakeKafka) -> list[Any]:
    from spark_secrets.tokens import kafkamessages as m

    cls = m.DescribeDelegationTokenResponse.DescribedDelegationToken
    out = []
    for hmac, t in broker.tokens.items():
        kind, _, name = t["owner"].partition(":")
        renewers = [cls.DescribedDelegationTokenRenewer(principal_type=r.partition(":")[0],
                                                        principal_name=r.partition(":")[2]) for r in t["renewers"]]
        out.append(cls(principal_type=kind, principal_name=name, token_requester_principal_type="User",
                       token_requester_principal_name="x", issue_timestamp=NOW, expiry_timestamp=t["expiry"],
                       max_timestamp=t["max"], token_id=t["token_id"], hmac=hmac, renewers=renewers))
    return out
