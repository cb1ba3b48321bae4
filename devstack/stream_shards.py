"""One shard of a DynamoDB stream as the local stream poller (devstack/stream_poller.py) reads
it: where it is (its iterator, renewed where it was when lost), what it has read and not yet
handed to the function, and the retry counts of the batch at its head."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# The stream poller's log: a shard is read on its thread, for it.
LOG = logging.getLogger("devstack.stream_poller")

LOST_ITERATOR = {"TrimmedDataAccessException", "ExpiredIteratorException"}


@dataclass
class ShardReader:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False  # read to its end (no next iterator)
    failures: int = 0  # failed invocations since the last success (the retry delay backs off)
    position: str | None = None  # the sequence number of the last record read
    retries: int = 0  # of the batch at the head, against MaximumRetryAttempts
    invocations: int = 0  # since the head batch last moved (approximateInvokeCount)
    splits: list[int] = field(default_factory=list)  # sizes of the next batches, once bisected

    def advance(self, count: int) -> None:
        self.pending = self.pending[count:]
        if self.splits:
            self.splits[0] -= count
            if self.splits[0] <= 0:
                self.splits.pop(0)

    def settle(self) -> None:
        """The head batch is done (handled or discarded): its counts start again."""
        self.failures = self.retries = self.invocations = 0

    def get_records(self, streams: Any, stream_arn: str, limit: int) -> list[dict[str, Any]]:
        """GetRecords from where the shard was (a lost iterator renewed there)."""
        if self.iterator is None:
            self.iterator = self._new_iterator(streams, stream_arn)
        try:
            response = streams.get_records(ShardIterator=self.iterator, Limit=limit)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in LOST_ITERATOR:
                raise
            # DynamoDB Local 3.3.0 answers TrimmedDataAccessException to an iterator of an
            # idle shard once other tables are written (nothing was trimmed); an iterator also
            # expires after 15 minutes on AWS. Lambda then takes a new one where it was.
            LOG.info("shard %s: %s; reading on from %s", self.shard_id,
                     error.response["Error"]["Code"], self.position or "its start")
            self.iterator = self._new_iterator(streams, stream_arn)
            response = streams.get_records(ShardIterator=self.iterator, Limit=limit)
        self.iterator = response.get("NextShardIterator")
        self.closed = self.iterator is None
        records: list[dict[str, Any]] = response.get("Records", [])
        if records:
            self.position = records[-1]["dynamodb"]["SequenceNumber"]
        return records

    def _new_iterator(self, streams: Any, stream_arn: str) -> str:
        """An iterator right after the last record read (from the shard's start before any)."""
        where: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        if self.position is not None:
            where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                     "SequenceNumber": self.position}
        try:
            found = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=self.shard_id,
                                               **where)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TrimmedDataAccessException":
                raise
            LOG.error("shard %s: records after %s were trimmed before they were read: their "
                      "changes are not published", self.shard_id, self.position)
            found = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=self.shard_id,
                                               ShardIteratorType="TRIM_HORIZON")
        iterator: str = found["ShardIterator"]
        return iterator
