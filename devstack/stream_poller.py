"""Lambda's DynamoDB stream event source, locally: read the table's stream (moto's or DynamoDB
Local's) and invoke the app's `publish_changes` with Lambda-shaped events.

As Lambda does ("Using AWS Lambda with Amazon DynamoDB", Lambda Developer Guide): one batch at a
time per shard, in order; each shard polled about 4 times a second while it has nothing new, at
once while it has; up to the batch size, gathered for at most the batching window (app.py's
registration, as deployed); a shard's children only after it is read to its end; with a partial
batch response (ReportBatchItemFailures) the shard resumes at the lowest sequence number
reported: with bisect on too, "the batch is bisected at the returned sequence number and Lambda
retries only the remaining records" ("Configuring partial batch response with DynamoDB and
Lambda", "Bisecting a batch"), which is the same. The mapping's failure settings
(devstack/stream_failures.py, read from infra as both deploy paths set them) apply as on AWS: a
batch whose function fails is retried, split in two with BisectBatchOnFunctionError (a split
costs no retry); after the retry cap, or for records older than the maximum age, the batch's
shard and sequence numbers go to the on-failure queue and the shard reads on. Retries back off
locally (0.2 s doubling to 5 s).

Records are handed over as Lambda shapes them (devstack/stream_events.py); each shard is read by
its ShardReader (devstack/stream_shards.py).

A test hook, `crash_every=N`: every Nth invocation (of at least two records) dies mid-batch: the
handler publishes the batch's first 1 to n-1 records, then the invocation fails, and the batch
is retried (split in two), as Lambda retries a batch whose function crashed (its checkpoint did
not move).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devstack.lambda_events import LocalLambdaContext
from devstack.poller import PollingThread
from devstack.stream_events import lambda_stream_record
from devstack.stream_failures import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    OnFailure,
    StreamFailureSettings,
    invocation_record,
)
from devstack.stream_shards import ShardReader

LOG = logging.getLogger("devstack.stream_poller")

Handler = Callable[[dict[str, Any], Any], Any]
RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS = 0.2, 5.0
# Lambda polls each shard "at a base rate of 4 times per second" ("Polling and batching
# streams", Lambda Developer Guide).
POLL_INTERVAL_SECONDS = 0.25
# New shards appear when one closes (its children) or the stream splits one: DescribeStream is
# called then, and at least this often, not on every poll (it cost a third of a pass).
DISCOVER_SECONDS = 1.0


class StreamPoller(PollingThread):
    """One thread reading every shard of one stream, like Lambda's event source mapping."""

    STOP_SECONDS = 10.0

    def __init__(self, streams: Any, stream_arn: str, handler: Handler, region: str,
                 batch_size: int = 100, batching_window: float = 0,
                 function_name: str = "publish_changes", function_timeout: float = 60.0,
                 poll_interval: float = POLL_INTERVAL_SECONDS,
                 name: str = "stream-poller", crash_every: int = 0,
                 failure: StreamFailureSettings | None = None,
                 on_failure: OnFailure | None = None,
                 retry_delay: float = RETRY_DELAY_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
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
        self.failure = failure or StreamFailureSettings()
        self.on_failure = on_failure
        self.retry_delay = retry_delay
        self.clock = clock  # for records' age (tests set it: creation times are whole seconds)
        self.function_arn = (f"arn:aws:lambda:{region}:{stream_arn.split(':')[4]}:function:"
                             f"{function_name}")
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
        now = self.clock()
        expired = 0
        while expired < min(len(shard.pending), self.batch_size) and self.failure.too_old(
                shard.pending[expired], now):
            expired += 1
        if expired:
            self._discard(shard, shard.pending[:expired], RECORD_AGE_EXCEEDED, False)
            shard.splits.clear()
            return expired
        batch = shard.pending[:shard.splits[0] if shard.splits else self.batch_size]
        shard.invocations += 1
        failed = self._invoke(batch)
        if failed is None:
            shard.advance(len(batch))
            shard.settle()
            return len(batch)
        resume_at, function_error = failed
        shard.failures += 1
        if function_error and self.failure.bisect_on_function_error and len(batch) > 1:
            half = len(batch) // 2
            shard.splits[:1] = [half, len(batch) - half]  # not a retry (see stream_failures)
        else:
            # Records past the checkpoint failed once; the same batch once more.
            shard.retries = 1 if resume_at else shard.retries + 1
            shard.advance(resume_at)
            if self.failure.retries_exhausted(shard.retries):
                self._discard(shard, batch[resume_at:], RETRY_ATTEMPTS_EXHAUSTED, function_error)
                return len(batch)
        self._stop.wait(min(MAX_RETRY_DELAY_SECONDS,
                            self.retry_delay * 2 ** (shard.failures - 1)))
        return resume_at

    def _discard(self, shard: ShardReader, records: list[dict[str, Any]], condition: str,
                 function_error: bool) -> None:
        """Send the records' invocation record to the on-failure destination; read on."""
        record = invocation_record(records, shard.shard_id, self.function_arn, condition,
                                   shard.invocations, function_error, time.time())
        info = record["DDBStreamBatchInfo"]
        if self.on_failure is None:
            LOG.error("%s: no on-failure destination: records %s to %s discarded", condition,
                      info["startSequenceNumber"], info["endSequenceNumber"])
        else:
            self.on_failure(record)
            LOG.error("%s: records %s to %s of shard %s sent to the on-failure destination",
                      condition, info["startSequenceNumber"], info["endSequenceNumber"],
                      shard.shard_id)
        shard.advance(len(records))
        shard.settle()

    def _gather(self, shard: ShardReader) -> list[dict[str, Any]]:
        """Up to a batch: what the shard has, then (with a batching window) what comes before
        the window ends, read every poll interval."""
        records = shard.get_records(self.streams, self.stream_arn, self.batch_size)
        deadline = time.monotonic() + self.batching_window
        while records and len(records) < self.batch_size and not shard.closed \
                and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            records.extend(shard.get_records(self.streams, self.stream_arn,
                                             self.batch_size - len(records)))
        return records

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[int, bool] | None:
        """None if the batch succeeded, else the position to resume from and whether the
        function failed (raised, or crashed) rather than reported failures."""
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
            return 0, True
        try:
            result = self.handler({"Records": batch}, context)
        except Exception as error:
            LOG.warning("%s raised %s: %s; its batch of %d is retried", self.function_name,
                        type(error).__name__, error, len(batch))
            return 0, True
        if not self.failure.report_batch_item_failures:
            return None  # Lambda reads a partial batch response only with the setting
        failures = (result or {}).get("batchItemFailures") or [] if isinstance(
            result, dict) else []
        if not failures:
            return None
        positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
        reported = [positions.get(str(f.get("itemIdentifier"))) for f in failures]
        if any(p is None for p in reported):
            LOG.warning("a reported failure names no record of the batch: all of it is retried")
            return 0, False
        resume_at = min(p for p in reported if p is not None)
        LOG.warning("%s reported a failure: the shard resumes at record %d of %d",
                    self.function_name, resume_at + 1, len(batch))
        return resume_at, False
