"""Process one SQS batch: each message ends applied, rejected (recorded), or retried by SQS.

The batch is split into lanes (lanes.py): one item's messages in request order, or from a FIFO
queue one message group in SQS's order. The first message of every lane goes into one DynamoDB
transaction (store.apply_together): a batch of 10 messages to 10 items costs one DynamoDB call.
If that transaction is cancelled (a condition failed, a conflict, a throttle), none of it
happened and each message runs alone. The rest run concurrently per lane (a thread per lane, up
to settings.batch_concurrency), a lane's messages one after another.

Failed messages are reported as batchItemFailures, or, where the event source mapping cannot
report them, the messages that succeeded are deleted and the batch raises (sqs.py); either way
no failed message is deleted. Before that, each one's visibility is set by why it failed, in one
ChangeMessageVisibilityBatch call (retries.py): SQS brings it back when the consumer says, not
after the queue's visibility timeout.

A write whose condition fails while an earlier request to its item may still be on its way
(settings.in_order_window_seconds) is not rejected yet: it is failed as above with a short,
doubling visibility, so SQS brings it back after the earlier ones; at most
CONDITION_RETRIES times, below the queue's maxReceiveCount. From a FIFO queue nothing waits
(FIFO already delivers in order), and a group stops at its first failure: that message and the
group's later ones go back to SQS, as AWS requires for FIFO batch item failures (Powertools'
SqsFifoPartialProcessor does the same with skip_group_on_error).

Each invocation prints one CloudWatch EMF line (metrics.py): applied, rejected, superseded,
duplicate and retried counts (retries by cause too), batch size and duration.

Lambda's remaining time is checked before each message: when too little is left for one more
(clients.MESSAGE_SECONDS, plus the visibility change, plus a delete call in the safe mode), the
rest of the batch is failed as above, so a slow batch comes back instead of timing out half-done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib.clients import CALL_SECONDS, MESSAGE_SECONDS, sqs_client
from chalicelib.commands import Command, Stamp, record_stamp
from chalicelib.errors import BatchRetryError, ConditionPendingError, RetryCause, TransientError
from chalicelib.lanes import Lane, Parsed, SqsRecord, is_fifo, lanes
from chalicelib.logs import current_request_id, get_logger
from chalicelib.metrics import MetricsBatch
from chalicelib.outcomes import Outcome
from chalicelib.retries import Retry, outage_cause, receive_count, visibilities
from chalicelib.settings import Settings
from chalicelib.sqs import SqsQueue
from chalicelib.store import ItemStore

logger = get_logger("sqs_manager.batch")

# Receives in which a failed condition may still wait (well below the queue's maxReceiveCount).
CONDITION_RETRIES = 3


class BatchProcessor:
    def __init__(self, store: ItemStore, settings: Settings,
                 sqs_client_factory: Callable[[], Any] = sqs_client) -> None:
        self.store = store
        self.settings = settings
        self.queue = SqsQueue(sqs_client_factory)

    def process(self, records: list[SqsRecord], context: Any = None) -> dict[str, Any]:
        """Handle a batch; `context` is Lambda's (its remaining time bounds the work)."""
        started = time.monotonic()
        deadline = self._deadline(context)
        retries: list[Retry] = []  # list.append is atomic: lanes share it
        metrics = _SharedMetrics(MetricsBatch.from_environ())
        try:
            batch = lanes(records)
            done = self._apply_together(batch, deadline, metrics)
            batch = [lane[1:] if index in done else lane for index, lane in enumerate(batch)]
            batch = [lane for lane in batch if lane]
            workers = min(len(batch), self.settings.batch_concurrency)
            if workers <= 1:
                for lane in batch:
                    self._run_lane(lane, deadline, retries, metrics)
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lane") as pool:
                    for finished in [pool.submit(self._run_lane, lane, deadline, retries,
                                                 metrics) for lane in batch]:
                        finished.result()
        finally:
            for retry in retries:
                metrics.batch.retried(1, retry.cause.value)
            metrics.batch.flush(len(records), (time.monotonic() - started) * 1000)
        failures = [retry.message_id for retry in retries]
        if failures:
            self._hand_back(records, retries)
        if failures and not self.settings.report_batch_item_failures:
            self.queue.delete_succeeded(records, set(failures))
            raise BatchRetryError(f"{len(failures)} of {len(records)} messages failed and will "
                                  f"be retried: {failures}")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

    def _hand_back(self, records: list[SqsRecord], retries: list[Retry]) -> None:
        """Set the visibility of every message going back to SQS, in one call (retries.py)."""
        succeeded = len(records) - len(retries)
        seconds = visibilities(retries, succeeded, self.settings.condition_retry_delay_seconds,
                               self.settings.retry_delay_scale)
        outage = outage_cause(retries, succeeded)
        if outage is not None:
            logger.warning("outage: the whole batch failed alike", extra={
                "cause": outage.value, "retryInSeconds": seconds})
        self.queue.change_visibility(records, seconds)

    def _deadline(self, context: Any) -> float | None:
        """When (time.monotonic()) the last message must be done, or None without a context."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return None
        # Kept for after the last message: the visibility change of what goes back to SQS, and
        # in the safe mode the deletion of what succeeded (one call each).
        spare = CALL_SECONDS if self.settings.report_batch_item_failures else 2 * CALL_SECONDS
        return time.monotonic() + remaining() / 1000 - spare

    def _apply_together(self, batch: list[Lane], deadline: float | None,
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
        for index, lane in enumerate(batch):
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
            logger.info(outcome.status.value, extra={
                "operation": outcome.operation, "id": outcome.id, "reason": outcome.reason,
                "duplicate": outcome.duplicate, "messageId": record["messageId"]})
            metrics.record(outcome)
        finally:
            current_request_id.reset(token)

    def _run_lane(self, lane: Lane, deadline: float | None, retries: list[Retry],
                  metrics: _SharedMetrics) -> None:
        """One item's messages, in request order (a FIFO message group's, in SQS's order)."""
        fifo = is_fifo(lane[0][0])
        for index, (record, parsed) in enumerate(lane):
            # The first message always runs: a function timeout shorter than MESSAGE_SECONDS
            # must still make progress (the batch just comes back if it times out).
            if index and deadline is not None and deadline - time.monotonic() < MESSAGE_SECONDS:
                retries.extend(Retry(r, RetryCause.DEFERRED) for r, _ in lane[index:])
                logger.warning("deferred: too little of Lambda's time left", extra={
                    "messageIds": [r.get("messageId") for r, _ in lane[index:]],
                    "remainingSeconds": round(deadline - time.monotonic(), 3)})
                return
            if not self._handle(record, parsed, deadline, retries, metrics) and fifo:
                # They come back with the failed one, after it (retries.visibilities).
                skipped = [Retry(r, RetryCause.GROUP_STOPPED, str(record.get("messageId")))
                           for r, _ in lane[index + 1:]]
                retries.extend(skipped)
                if skipped:
                    logger.warning("FIFO group stopped at its first failure",
                                   extra={"messageIds": [r.message_id for r in skipped]})
                return

    def _handle(self, record: SqsRecord, parsed: Parsed, deadline: float | None,
                retries: list[Retry], metrics: _SharedMetrics) -> bool:
        """One message: its outcome recorded (True), or it goes back to SQS (added to
        `retries`, with why)."""
        token = current_request_id.set(None)
        try:
            # Inside the try: a malformed record fails alone, never its batch-mates.
            stamp = record_stamp(record)
            current_request_id.set(stamp.request_id)
            outcome = self._process_one(parsed, stamp, deadline, self._may_wait(record, stamp))
            self._done(record, outcome, metrics)
            return True
        except ConditionPendingError as pending:
            retries.append(Retry(record, RetryCause.WAITING))
            logger.info("waiting for earlier requests", extra={
                "reason": str(pending), "messageId": record.get("messageId"),
                "receiveCount": receive_count(record)})
        except Exception as error:  # anything unexpected is retried too, then goes to the DLQ
            cause = error.cause if isinstance(error, TransientError) else RetryCause.UNEXPECTED
            retries.append(Retry(record, cause))
            logger.warning("retry", exc_info=cause is RetryCause.UNEXPECTED, extra={
                "error": f"{type(error).__name__}: {error}", "cause": cause.value,
                "messageId": record.get("messageId"), "receiveCount": receive_count(record)})
        finally:
            current_request_id.reset(token)
        return False

    def _may_wait(self, record: SqsRecord, stamp: Stamp) -> bool:
        if not record.get("receiptHandle") or is_fifo(record):
            # Not from SQS (the debug route): it cannot come back later. FIFO: in order already.
            return False
        age_ms = time.time() * 1000 - stamp.request_time_epoch_ms
        return (age_ms < self.settings.in_order_window_seconds * 1000
                and receive_count(record) <= CONDITION_RETRIES)

    def _process_one(self, parsed: Parsed, stamp: Stamp, deadline: float | None,
                     may_wait: bool = False) -> Outcome:
        if isinstance(parsed, Exception):  # the body is no command: the request's fault
            return self.store.reject(stamp, parsed)
        return self.store.apply(parsed, stamp, deadline, may_wait)


class _SharedMetrics:
    """One invocation's metrics, recorded from every lane's thread."""

    def __init__(self, batch: MetricsBatch) -> None:
        self.batch = batch
        self._lock = threading.Lock()

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.batch.record(outcome.status, duplicate=outcome.duplicate,
                              superseded=outcome.superseded)
