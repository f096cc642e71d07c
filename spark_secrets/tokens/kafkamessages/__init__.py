"""Kafka's delegation-token requests and responses (api keys 38-41) as kafka-python ``ApiMessage``
classes: each reads its wire format from the JSON description of the same name beside this file.

The descriptions were written for this project from the Kafka protocol (field order, types and
versions of Apache Kafka's message definitions of the same names); ``tests/test_kafka_unit.py``
checks every one against bytes built by hand. Importing this package needs kafka-python (the
``kafka`` extra): :mod:`spark_secrets.tokens.kafkaproto` imports it on first use.
"""

from __future__ import annotations

from typing import Any

from kafka.protocol.api_message import ApiMessage


def _message(name: str, doc: str = "") -> Any:
    """``class <name>(ApiMessage, load_json=<this package>)``: kafka-python reads ``<name>.json`` here.
    (Made by calling the metaclass, as the class statement would, since type checkers take the class
    keyword ``load_json`` for one of ``object.__init_subclass__``.)"""
    attrs = {"__module__": __name__, "__qualname__": name, "__doc__": doc or f"Kafka's {name}."}
    return type(ApiMessage)(name, (ApiMessage,), attrs, load_json=__name__)


CreateDelegationTokenRequest = _message(
    "CreateDelegationTokenRequest", "Version 3 (Kafka 3.3, KIP-373) names an owner other than the caller.")
CreateDelegationTokenResponse = _message("CreateDelegationTokenResponse")
RenewDelegationTokenRequest = _message(
    "RenewDelegationTokenRequest", "A period <= 0 asks for the brokers' renew period.")
RenewDelegationTokenResponse = _message("RenewDelegationTokenResponse")
ExpireDelegationTokenRequest = _message(
    "ExpireDelegationTokenRequest", "A negative period expires the token at once (the brokers forget it).")
ExpireDelegationTokenResponse = _message("ExpireDelegationTokenResponse")
DescribeDelegationTokenRequest = _message(
    "DescribeDelegationTokenRequest", "Owners ``None``: every token the caller may describe.")
DescribeDelegationTokenResponse = _message("DescribeDelegationTokenResponse")
