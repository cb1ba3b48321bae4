"""Process one SQS batch: each message ends applied, rejected (recorded), or retried by SQS.

Failed messages are reported as batchItemFailures. That report only works where the event
source mapping has ReportBatchItemFailures, which `chalice deploy` cannot set: there Lambda would
delete the whole batch, failures included. So unless settings say the mapping reports failures,
the processor deletes the messages that succeeded itself and raises, and SQS redelivers the rest.
Either way no failed message is deleted.

A write whose condition fails while an earlier request to its item may still be on its way
(settings.in_order_window_seconds) is not rejected yet: its visibility is set to a short,
doubling delay and it is failed like the above, so SQS brings it back after the earlier ones;
at most CONDITION_RETRIES times, below the queue's maxReceiveCount.

The first message of every item goes into one DynamoDB transaction (store.apply_together): a
batch of 10 messages to 10 items costs one DynamoDB call. If that transaction is cancelled (a
condition failed, a conflict, a throttle), none of it happened and each message runs alone, as
below. The rest run concurrently per item (a thread per item, up to settings.batch_concurrency),
the messages of one item one after another in request order.

From a FIFO queue (`.fifo`), lanes are message groups in the order SQS delivered them, and a
group stops at its first failure: that message and the group's later ones go back to SQS, as
AWS requires for FIFO batch item failures (Powertools' SqsFifoPartialProcessor does the same with
skip_group_on_error). Nothing waits for earlier requests there: FIFO already delivers in order.

Each invocation prints one CloudWatch EMF line (metrics.py): applied, rejected, superseded,
duplicate and retried counts, batch size and duration.

Lambda's remaining time is checked before each message: when too little is left for one more
(store.MESSAGE_SECONDS, plus a delete call in the safe mode), the rest of the batch is failed as
above, so a slow batch comes back instead of timing out half-done.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from chalicelib.commands import (
    REQUEST_ID,
    REQUEST_TIME_EPOCH,
    Command,
    Stamp,
    parse_command,
    record_stamp,
)
from chalicelib.errors import BatchRetryError, ConditionPendingError, InvalidCommandError
from chalicelib.logs import current_request_id, get_logger
from chalicelib.metrics import MetricsBatch
from chalicelib.outcomes import Outcome
from chalicelib.settings import FIFO_SUFFIX, Settings
from chalicelib.store import CALL_SECONDS, MESSAGE_SECONDS, ItemStore, client_config
from chalicelib.writes import SUPERSEDED_REASON

logger = get_logger("sqs_manager.batch")

SqsRecord = dict[str, Any]
# A message and its body as parsed (a command, or why it is not one).
Parsed = Command | Exception
Lane = list[tuple[SqsRecord, Parsed]]
# Receives in which a failed condition may still wait (the queue's maxReceiveCount is 5).
CONDITION_RETRIES = 3
MAX_VISIBILITY_DELAY_SECONDS = 60


class BatchProcessor:
    def __init__(self, store: ItemStore, settings: Settings,
                 sqs_client_factory: Callable[[], Any] = lambda: boto3.client(
                     "sqs", config=client_config())) -> None:
        self.store = store
        self.settings = settings
        self._sqs_client_factory = sqs_client_factory
        self._sqs: Any = None  # created on the first failure only: no cost on the common path
        self._queue_urls: dict[str, str] = {}

    def process(self, records: list[SqsRecord], context: Any = None) -> dict[str, Any]:
        """Handle a batch; `context` is Lambda's (its remaining time bounds the work)."""
        started = time.monotonic()
        deadline = self._deadline(context)
        failures: list[str] = []  # list.append is atomic: lanes share it
        metrics = _SharedMetrics(MetricsBatch.from_environ())
        try:
            lanes = _lanes(records)
            done = self._apply_together(lanes, deadline, metrics)
            lanes = [lane[1:] if index in done else lane for index, lane in enumerate(lanes)]
            lanes = [lane for lane in lanes if lane]
            workers = min(len(lanes), self.settings.batch_concurrency)
            if workers <= 1:
                for lane in lanes:
                    self._run_lane(lane, deadline, failures, metrics)
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lane") as pool:
                    for finished in [pool.submit(self._run_lane, lane, deadline, failures,
                                                 metrics) for lane in lanes]:
                        finished.result()
        finally:
            metrics.batch.retried(len(failures))
            metrics.batch.flush(len(records), (time.monotonic() - started) * 1000)
        if failures and not self.settings.report_batch_item_failures:
            self._delete_succeeded(records, set(failures))
            raise BatchRetryError(f"{len(failures)} of {len(records)} messages failed and will "
                                  f"be retried: {failures}")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

    def _deadline(self, context: Any) -> float | None:
        """When (time.monotonic()) the last message must be done, or None without a context."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return None
        # The safe mode still has to delete what succeeded after the last message.
        spare = 0 if self.settings.report_batch_item_failures else CALL_SECONDS
        return time.monotonic() + remaining() / 1000 - spare

    def _apply_together(self, lanes: list[Lane], deadline: float | None,
                        metrics: _SharedMetrics) -> set[int]:
        """The first write of every lane, in one transaction when there are several: the
        indexes of the lanes whose first message is done. Only first messages: the lanes' later
        ones must come after them, and in FIFO mode a group's too."""
        if not self.settings.combine_writes or (
                deadline is not None and deadline - time.monotonic() < CALL_SECONDS
                + MESSAGE_SECONDS):
            return set()
        firsts: list[tuple[int, SqsRecord, Command, Stamp]] = []
        items: set[str] = set()
        for index, lane in enumerate(lanes):
            record, parsed = lane[0]
            if not isinstance(parsed, Command) or parsed.operation == "read" \
                    or parsed.id in items:  # FIFO: two groups may start with one item
                continue
            try:
                stamp = record_stamp(record)
            except Exception:  # malformed: it fails on its own turn
                continue
            items.add(parsed.id)
            firsts.append((index, record, parsed, stamp))
        if len(firsts) < 2:
            return set()
        applied = self.store.apply_together([(command, stamp) for _, _, command, stamp in firsts])
        for position, outcome in applied.items():
            self._done(firsts[position][1], outcome, metrics)
        return {firsts[position][0] for position in applied}

    def _done(self, record: SqsRecord, outcome: Outcome, metrics: _SharedMetrics) -> None:
        token = current_request_id.set(outcome.request_id)
        try:
            logger.info(outcome.status, extra={
                "operation": outcome.operation, "id": outcome.id, "reason": outcome.reason,
                "duplicate": outcome.duplicate, "messageId": record["messageId"]})
            metrics.record(outcome)
        finally:
            current_request_id.reset(token)

    def _run_lane(self, lane: Lane, deadline: float | None, failures: list[str],
                  metrics: _SharedMetrics) -> None:
        """One item's messages, in request order (a FIFO message group's, in SQS's order)."""
        fifo = _is_fifo(lane[0][0])
        for index, (record, parsed) in enumerate(lane):
            # The first message always runs: a function timeout shorter than MESSAGE_SECONDS
            # must still make progress (the batch just comes back if it times out).
            if index and deadline is not None and deadline - time.monotonic() < MESSAGE_SECONDS:
                deferred = [r.get("messageId") for r, _ in lane[index:]]
                failures.extend(str(m) for m in deferred)
                logger.warning("deferred: too little of Lambda's time left", extra={
                    "messageIds": deferred, "remainingSeconds": round(
                        deadline - time.monotonic(), 3)})
                return
            if not self._handle(record, parsed, deadline, failures, metrics) and fifo:
                skipped = [str(r.get("messageId")) for r, _ in lane[index + 1:]]
                failures.extend(skipped)
                if skipped:
                    logger.warning("FIFO group stopped at its first failure",
                                   extra={"messageIds": skipped})
                return

    def _handle(self, record: SqsRecord, parsed: Parsed, deadline: float | None,
                failures: list[str], metrics: _SharedMetrics) -> bool:
        """One message: its outcome recorded (True), or its messageId added to failures."""
        token = current_request_id.set(None)
        try:
            # Inside the try: a malformed record fails alone, never its batch-mates.
            stamp = record_stamp(record)
            current_request_id.set(stamp.request_id)
            outcome = self._process_one(parsed, stamp, deadline, self._may_wait(record, stamp))
            self._done(record, outcome, metrics)
            return True
        except ConditionPendingError as pending:
            failures.append(str(record.get("messageId")))
            delay = self._delay(record)
            logger.info("waiting for earlier requests", extra={
                "reason": str(pending), "retryInSeconds": delay,
                "messageId": record.get("messageId"), "receiveCount": _receive_count(record)})
        except Exception as error:  # anything unexpected is retried too, then goes to the DLQ
            failures.append(str(record.get("messageId")))
            logger.warning("retry", exc_info=not isinstance(error, BatchRetryError), extra={
                "error": f"{type(error).__name__}: {error}", "messageId": record.get("messageId"),
                "receiveCount": (record.get("attributes") or {}).get("ApproximateReceiveCount")})
        finally:
            current_request_id.reset(token)
        return False

    def _may_wait(self, record: SqsRecord, stamp: Stamp) -> bool:
        if not record.get("receiptHandle") or _is_fifo(record):
            # Not from SQS (the debug route): it cannot come back later. FIFO: in order already.
            return False
        age_ms = time.time() * 1000 - stamp.request_time_epoch_ms
        return (age_ms < self.settings.in_order_window_seconds * 1000
                and _receive_count(record) <= CONDITION_RETRIES)

    def _delay(self, record: SqsRecord) -> int:
        """Bring the message back after a doubling delay; SQS's default (the queue's visibility
        timeout) if that fails."""
        delay = int(min(MAX_VISIBILITY_DELAY_SECONDS, self.settings.condition_retry_delay_seconds
                        * 2 ** (_receive_count(record) - 1)))
        try:
            self._sqs_client().change_message_visibility(
                QueueUrl=self._queue_url(record["eventSourceARN"]),
                ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay)
        except Exception as error:
            logger.warning("visibility change failed", extra={"error": str(error)})
        return delay

    def _sqs_client(self) -> Any:
        if self._sqs is None:
            self._sqs = self._sqs_client_factory()
        return self._sqs

    def _process_one(self, parsed: Parsed, stamp: Stamp, deadline: float | None,
                     may_wait: bool = False) -> Outcome:
        if isinstance(parsed, InvalidCommandError):
            return self.store.reject(stamp, str(parsed), parsed.operation, parsed.item_id)
        if isinstance(parsed, Exception):
            # Parsing failed in a way its checks did not foresee: the body is still the
            # request's fault, so it is rejected, not retried into the DLQ.
            return self.store.reject(stamp, f"the body cannot be read as a command: "
                                     f"{type(parsed).__name__}: {parsed}")
        return self.store.apply(parsed, stamp, deadline, may_wait)

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            # arn:aws:sqs:<region>:<account>:<name>
            _, _, _, _, account, name = arn.split(":", 5)
            owner = {"QueueOwnerAWSAccountId": account} if account else {}
            found = self._sqs_client().get_queue_url(QueueName=name, **owner)
            self._queue_urls[arn] = found["QueueUrl"]
        return self._queue_urls[arn]

    def _delete_succeeded(self, records: list[SqsRecord], failed: set[str]) -> None:
        done = [r for r in records if r["messageId"] not in failed]
        if not done:
            return
        queue_url = self._queue_url(done[0]["eventSourceARN"])
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            response = self._sqs_client().delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)])
            for failure in response.get("Failed", []):
                # Harmless: the message comes back and its request is found already handled.
                logger.warning("delete failed", extra={"failure": failure})


def single_message_event(body: str, settings: Settings,
                         region: str = "us-west-2") -> dict[str, Any]:
    """A Lambda SQS event of one message, as if API Gateway had just enqueued body."""
    now_ms = int(time.time() * 1000)
    request_id = str(uuid.uuid4())
    return {"Records": [{
        "messageId": request_id,
        "receiptHandle": "",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(now_ms)},
        "messageAttributes": {
            REQUEST_ID: {"stringValue": request_id, "dataType": "String",
                         "stringListValues": [], "binaryListValues": []},
            REQUEST_TIME_EPOCH: {"stringValue": str(now_ms), "dataType": "Number",
                                 "stringListValues": [], "binaryListValues": []},
        },
        "eventSource": "aws:sqs",
        # No account: the function's own (what get_queue_url assumes without an owner).
        "eventSourceARN": f"arn:aws:sqs:{region}::{settings.queue_name}",
        "awsRegion": region,
    }]}


class _SharedMetrics:
    """One invocation's metrics, recorded from every lane's thread."""

    def __init__(self, batch: MetricsBatch) -> None:
        self.batch = batch
        self._lock = threading.Lock()

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.batch.record(outcome.status, duplicate=outcome.duplicate,
                              superseded=(outcome.reason or "").startswith(SUPERSEDED_REASON))


def _lanes(records: list[SqsRecord]) -> list[Lane]:
    """The batch as one lane per item (in request order); a message that is no command, or
    whose record is malformed, gets a lane of its own."""
    lanes: dict[str, Lane] = {}
    for number, record in enumerate(records):
        parsed = _parse(record)
        group = (record.get("attributes") or {}).get("MessageGroupId")
        if _is_fifo(record) and isinstance(group, str):
            key = f"group:{group}"  # SQS's order within the group is the order to keep
        elif isinstance(parsed, Command):
            key = f"item:{parsed.id}"
        else:
            key = f"message:{number}"
        lanes.setdefault(key, []).append((record, parsed))
    return [lane if key.startswith("group:") else
            sorted(lane, key=lambda entry: _sort_stamp(entry[0]))
            for key, lane in lanes.items()]


def _is_fifo(record: SqsRecord) -> bool:
    return str(record.get("eventSourceARN", "")).endswith(FIFO_SUFFIX)


def _parse(record: SqsRecord) -> Parsed:
    try:
        return parse_command(record["body"])
    except (InvalidCommandError, ValueError, ArithmeticError, UnicodeError, RecursionError,
            TypeError, KeyError) as error:
        return error


def _sort_stamp(record: SqsRecord) -> Stamp:
    try:
        return record_stamp(record)
    except Exception:  # a malformed record fails on its own turn, not here
        return Stamp(0, "")


def _receive_count(record: SqsRecord) -> int:
    count = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(count) if str(count).isdigit() else 1
