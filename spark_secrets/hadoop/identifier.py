"""Delegation-token identifiers (``AbstractDelegationTokenIdentifier``, Writable layout)."""

import datetime as dt
from typing import NamedTuple

from spark_secrets.errors import TokenFormatError
from spark_secrets.hadoop.writable import Reader, Writer

HDFS_DELEGATION_KIND = "HDFS_DELEGATION_TOKEN"
WEBHDFS_DELEGATION_KIND = "WEBHDFS delegation"
SWEBHDFS_DELEGATION_KIND = "SWEBHDFS delegation"
KMS_DELEGATION_KIND = "kms-dt"
HIVE_DELEGATION_KIND = "HIVE_DELEGATION_TOKEN"

#: Token kinds whose identifier is the plain AbstractDelegationTokenIdentifier layout.
DELEGATION_KINDS = frozenset({HDFS_DELEGATION_KIND, WEBHDFS_DELEGATION_KIND, SWEBHDFS_DELEGATION_KIND,
                              KMS_DELEGATION_KIND, HIVE_DELEGATION_KIND})
#: Delegation tokens that Spark stores in the same token file whose identifiers are not Hadoop's: Spark's
#: ``KafkaTokenUtil`` writes a Kafka token's id as its identifier. Only the token's server can say whose
#: it is and when it ends (:class:`spark_secrets.hadoop.token.TokenFacts`).
OPAQUE_DELEGATION_KINDS = frozenset({"KAFKA_DELEGATION_TOKEN"})


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


class DelegationTokenIdentifier(NamedTuple):
    """Who a delegation token acts for, who may renew it, and when it was issued and must end."""

    owner: str
    renewer: str
    real_user: str
    issue_date: int  # ms since the epoch
    max_date: int  # ms since the epoch; no renewal goes past it
    sequence_number: int
    master_key_id: int

    @classmethod
    def decode(cls, data: bytes) -> "DelegationTokenIdentifier":
        r = Reader(data, "delegation-token identifier")
        version = r.byte()
        if version != 0:
            raise TokenFormatError(f"unknown delegation-token identifier version {version} (expected 0)")
        ident = cls(owner=r.text(), renewer=r.text(), real_user=r.text(), issue_date=r.vlong(),
                    max_date=r.vlong(), sequence_number=r.vint(), master_key_id=r.vint())
        return ident

    def encode(self) -> bytes:
        w = Writer().byte(0).text(self.owner).text(self.renewer).text(self.real_user)
        return w.vlong(self.issue_date).vlong(self.max_date).vint(self.sequence_number).vint(
            self.master_key_id).getvalue()

    @property
    def issued(self) -> dt.datetime:
        return _utc(self.issue_date)

    @property
    def max_lifetime_end(self) -> dt.datetime:
        return _utc(self.max_date)

    @property
    def is_proxy(self) -> bool:
        return bool(self.real_user)
