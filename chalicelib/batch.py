"""Process one SQS batch: each message ends applied, rejected (recorded), or retried by SQS.

Failed messages are reported as batchItemFailures. That report only works where the event
source mapping has ReportBatchItemFailures, which `chalice deploy` cannot set: there Lambda would
delete the whole batch, failures included. So unless settings say the mapping reports failures,
the processor deletes the messages that succeeded itself and raises, and SQS redelivers the rest.
Either way no failed message is deleted.

Lambda's remaining time is checked before each message: when too little is left for one more
(store.MESSAGE_SECONDS, plus a delete call in the safe mode), the rest of the batch is failed as
above, so a slow batch comes back instead of timing out half-done.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH, Stamp, parse_command, record_stamp
from chalicelib.errors import BatchRetryError, InvalidCommandError
from chalicelib.logs import current_request_id, get_logger
from chalicelib.outcomes import Outcome
from chalicelib.settings import Settings
from chalicelib.store import CALL_SECONDS, MESSAGE_SECONDS, ItemStore, client_config

logger = get_logger("sqs_manager.batch")

SqsRecord = dict[str, Any]


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
        deadline = self._deadline(context)
        failures: list[str] = []
        for index, record in enumerate(records):
            # The first message always runs: a function timeout shorter than MESSAGE_SECONDS
            # must still make progress (the batch just comes back if it times out).
            if index and deadline is not None and deadline - time.monotonic() < MESSAGE_SECONDS:
                deferred = [r.get("messageId") for r in records[index:]]
                failures.extend(str(m) for m in deferred)
                logger.warning("deferred: too little of Lambda's time left", extra={
                    "messageIds": deferred, "remainingSeconds": round(
                        deadline - time.monotonic(), 3)})
                break
            self._handle(record, deadline, failures)
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

    def _handle(self, record: SqsRecord, deadline: float | None, failures: list[str]) -> None:
        """One message: its outcome recorded, or its messageId added to failures."""
        token = current_request_id.set(None)
        try:
            # Inside the try: a malformed record fails alone, never its batch-mates.
            stamp = record_stamp(record)
            current_request_id.set(stamp.request_id)
            outcome = self._process_one(record, stamp, deadline)
            logger.info(outcome.status, extra={
                "operation": outcome.operation, "id": outcome.id, "reason": outcome.reason,
                "duplicate": outcome.duplicate, "messageId": record["messageId"]})
        except Exception as error:  # anything unexpected is retried too, then goes to the DLQ
            failures.append(str(record.get("messageId")))
            logger.warning("retry", exc_info=not isinstance(error, BatchRetryError), extra={
                "error": f"{type(error).__name__}: {error}", "messageId": record.get("messageId"),
                "receiveCount": (record.get("attributes") or {}).get("ApproximateReceiveCount")})
        finally:
            current_request_id.reset(token)

    def _process_one(self, record: SqsRecord, stamp: Stamp, deadline: float | None) -> Outcome:
        try:
            command = parse_command(record["body"])
        except InvalidCommandError as error:
            return self.store.reject(stamp, str(error), error.operation, error.item_id)
        except (ValueError, ArithmeticError, UnicodeError, RecursionError, TypeError) as error:
            # Parsing failed in a way its checks did not foresee: the body is still the
            # request's fault, so it is rejected, not retried into the DLQ.
            return self.store.reject(stamp, f"the body cannot be read as a command: "
                                     f"{type(error).__name__}: {error}")
        return self.store.apply(command, stamp, deadline)

    def _queue_url(self, arn: str) -> str:
        if arn not in self._queue_urls:
            # arn:aws:sqs:<region>:<account>:<name>
            _, _, _, _, account, name = arn.split(":", 5)
            owner = {"QueueOwnerAWSAccountId": account} if account else {}
            self._queue_urls[arn] = self._sqs.get_queue_url(QueueName=name, **owner)["QueueUrl"]
        return self._queue_urls[arn]

    def _delete_succeeded(self, records: list[SqsRecord], failed: set[str]) -> None:
        done = [r for r in records if r["messageId"] not in failed]
        if not done:
            return
        if self._sqs is None:
            self._sqs = self._sqs_client_factory()
        queue_url = self._queue_url(done[0]["eventSourceARN"])
        for start in range(0, len(done), 10):
            chunk = done[start:start + 10]
            response = self._sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
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
