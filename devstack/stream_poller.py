"""Lambda's DynamoDB stream event source, locally: read the table's stream (moto's or DynamoDB
Local's) and invoke the app's `publish_changes` with Lambda-shaped events.

As Lambda does ("Using AWS Lambda with Amazon DynamoDB", Lambda Developer Guide): one batch at a
time per shard, in order; each shard polled about 4 times a second while it has nothing new, at
once while it has; up to the batch size, gathered for at most the batching window (app.py's
registration, as deployed); a shard's children only after it is read to its end; a batch whose
handler raises is retried whole, and with a partial batch response (ReportBatchItemFailures, as
both deploy paths set it) the shard resumes at the lowest sequence number reported. Nothing is
skipped: Lambda's default too (no retry cap, records kept until they age out of the stream).

GetRecords gives what Lambda passes on but `eventSourceARN`, and boto3 turns
ApproximateCreationDateTime into a datetime: Lambda hands the function a number of seconds
(and Chalice's DynamoDBRecord requires both).

A test hook, `crash_every=N`: every Nth invocation (of at least two records) dies mid-batch: the
handler publishes the batch's first 1 to n-1 records, then the invocation fails, and the whole
batch is retried, as Lambda retries a batch whose function crashed (its checkpoint did not move).
"""

from __future__ import annotations

import datetime
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import Chalice, DynamoDBEventConfig

from devstack.poller import LocalLambdaContext, PollingThread

LOG = logging.getLogger("devstack.stream_poller")

Handler = Callable[[dict[str, Any], Any], Any]
RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS = 0.2, 5.0
LOST_ITERATOR = {"TrimmedDataAccessException", "ExpiredIteratorException"}
# Lambda polls each shard "at a base rate of 4 times per second" ("Polling and batching
# streams", Lambda Developer Guide).
POLL_INTERVAL_SECONDS = 0.25
# New shards appear when one closes (its children) or the stream splits one: DescribeStream is
# called then, and at least this often, not on every poll (it cost a third of a pass).
DISCOVER_SECONDS = 1.0


def stream_event_config(app: Chalice, function_name: str = "publish_changes"
                        ) -> DynamoDBEventConfig:
    """The app's `@app.on_dynamodb_record` registration (batch size, batching window)."""
    for source in app.event_sources:
        if isinstance(source, DynamoDBEventConfig) and source.name == function_name:
            return source
    raise LookupError(f"{function_name} is not registered with @app.on_dynamodb_record")


def lambda_stream_record(record: dict[str, Any], stream_arn: str, region: str
                         ) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        stream["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    elif created is None:
        stream["ApproximateCreationDateTime"] = float(int(time.time()))
    return {**record, "awsRegion": region, "eventSourceARN": stream_arn, "dynamodb": stream}


@dataclass
class ShardReader:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False  # read to its end (no next iterator)
    failures: int = 0
    position: str | None = None  # the sequence number of the last record read


class StreamPoller(PollingThread):
    """One thread reading every shard of one stream, like Lambda's event source mapping."""

    STOP_SECONDS = 10.0

    def __init__(self, streams: Any, stream_arn: str, handler: Handler, region: str,
                 batch_size: int = 100, batching_window: float = 0,
                 function_name: str = "publish_changes", function_timeout: float = 60.0,
                 poll_interval: float = POLL_INTERVAL_SECONDS,
                 name: str = "stream-poller", crash_every: int = 0) -> None:
        self.streams = streams
        self.stream_arn = stream_arn
        self.handler = handler
        self.region = region
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.function_name = function_name
        self.function_timeout = function_timeout
        self.poll_interval = poll_interval
        self.shards: dict[str, ShardReader] = {}
        self._discovered_at: float | None = None
        self._closed_seen = 0  # closed shards at the last DescribeStream
        self.invocations = 0
        self.crash_every, self.crashes = crash_every, 0
        self._crash_rng = random.Random(crash_every)
        super().__init__(name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except (BotoCoreError, ClientError) as error:
                LOG.warning("stream read failed (retried): %s", error)
                handled = 0
            if not handled:
                self._stop.wait(self.poll_interval)

    def poll_once(self) -> int:
        """One pass over the readable shards; the number of records handled."""
        self._discover()
        handled = 0
        for shard in list(self.shards.values()):
            if self._stop.is_set():
                break
            parent = self.shards.get(shard.parent_id or "")
            if parent is not None and not (parent.closed and not parent.pending):
                continue  # a child waits for its parent, as Lambda reads them
            handled += self._read(shard)
        return handled

    def _discover(self) -> None:
        now, closed = time.monotonic(), sum(s.closed for s in self.shards.values())
        if self._discovered_at is not None and now - self._discovered_at < DISCOVER_SECONDS \
                and closed == self._closed_seen:
            return
        self._discovered_at, self._closed_seen = now, closed
        described = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in described.get("Shards", []):
            if shard["ShardId"] not in self.shards:
                self.shards[shard["ShardId"]] = ShardReader(shard["ShardId"],
                                                            shard.get("ParentShardId"))

    def _read(self, shard: ShardReader) -> int:
        if shard.closed and not shard.pending:
            return 0
        if not shard.pending:
            shard.pending = [lambda_stream_record(r, self.stream_arn, self.region)
                             for r in self._gather(shard)]
        if not shard.pending:
            return 0
        batch = shard.pending[:self.batch_size]
        resume_at = self._invoke(batch)
        if resume_at is None:
            shard.pending = shard.pending[len(batch):]
            shard.failures = 0
            return len(batch)
        shard.pending = shard.pending[resume_at:]
        shard.failures += 1
        self._stop.wait(min(MAX_RETRY_DELAY_SECONDS,
                            RETRY_DELAY_SECONDS * 2 ** (shard.failures - 1)))
        return resume_at

    def _gather(self, shard: ShardReader) -> list[dict[str, Any]]:
        """Up to a batch: what the shard has, then (with a batching window) what comes before
        the window ends, read every poll interval."""
        records = self._get_records(shard, self.batch_size)
        deadline = time.monotonic() + self.batching_window
        while records and len(records) < self.batch_size and not shard.closed \
                and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            records.extend(self._get_records(shard, self.batch_size - len(records)))
        return records

    def _get_records(self, shard: ShardReader, limit: int) -> list[dict[str, Any]]:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        try:
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=limit)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in LOST_ITERATOR:
                raise
            # DynamoDB Local 3.3.0 answers TrimmedDataAccessException to an iterator of an
            # idle shard once other tables are written (nothing was trimmed); an iterator also
            # expires after 15 minutes on AWS. Lambda then takes a new one where it was.
            LOG.info("shard %s: %s; reading on from %s", shard.shard_id,
                     error.response["Error"]["Code"], shard.position or "its start")
            shard.iterator = self._iterator(shard)
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=limit)
        shard.iterator = response.get("NextShardIterator")
        shard.closed = shard.iterator is None
        records: list[dict[str, Any]] = response.get("Records", [])
        if records:
            shard.position = records[-1]["dynamodb"]["SequenceNumber"]
        return records

    def _iterator(self, shard: ShardReader) -> str:
        """An iterator right after the last record read (from the shard's start before any)."""
        where: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
        if shard.position is not None:
            where = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                     "SequenceNumber": shard.position}
        try:
            found = self.streams.get_shard_iterator(StreamArn=self.stream_arn,
                                                    ShardId=shard.shard_id, **where)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TrimmedDataAccessException":
                raise
            LOG.error("shard %s: records after %s were trimmed before they were read: their "
                      "changes are not published", shard.shard_id, shard.position)
            found = self.streams.get_shard_iterator(StreamArn=self.stream_arn,
                                                    ShardId=shard.shard_id,
                                                    ShardIteratorType="TRIM_HORIZON")
        iterator: str = found["ShardIterator"]
        return iterator

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """None if the batch succeeded, else the position to resume from."""
        self.invocations += 1
        context = LocalLambdaContext(self.function_name, self.function_timeout, self.region,
                                     self.stream_arn.split(":")[4])
        if self.crash_every and len(batch) > 1 and (
                self.invocations // self.crash_every > self.crashes):
            self.crashes += 1
            done = self._crash_rng.randint(1, len(batch) - 1)
            try:
                self.handler({"Records": batch[:done]}, context)
            except Exception as error:
                LOG.debug("crashing invocation raised: %s", error)
            LOG.warning("stream crash #%d (test hook): %s died after %d of %d records; the "
                        "batch is retried", self.crashes, self.function_name, done, len(batch))
            return 0
        try:
            result = self.handler({"Records": batch}, context)
        except Exception as error:
            LOG.warning("%s raised %s: %s; its batch of %d is retried", self.function_name,
                        type(error).__name__, error, len(batch))
            return 0
        failures = (result or {}).get("batchItemFailures") or [] if isinstance(
            result, dict) else []
        if not failures:
            return None
        positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
        reported = [positions.get(str(f.get("itemIdentifier"))) for f in failures]
        if any(p is None for p in reported):
            LOG.warning("a reported failure names no record of the batch: all of it is retried")
            return 0
        resume_at = min(p for p in reported if p is not None)
        LOG.warning("%s reported a failure: the shard resumes at record %d of %d",
                    self.function_name, resume_at + 1, len(batch))
        return resume_at
