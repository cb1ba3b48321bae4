"""Process one SQS batch: each message ends applied, rejected (recorded), or retried by SQS.

Failed messages are reported as batchItemFailures. That report only works where the event
source mapping has ReportBatchItemFailures, which `chalice deploy` cannot set: there Lambda would
delete the whole batch, failures included. So unless settings say the mapping reports failures,
the processor deletes the messages that succeeded itself and raises, and SQS redelivers the rest.
Either way no failed message is deleted.
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
from chalicelib.settings import Settings
from chalicelib.store import ItemStore, Outcome

logger = get_logger("sqs_manager.batch")

SqsRecord = dict[str, Any]


class BatchProcessor:
    def __init__(self, store: ItemStore, settings: Settings,
                 sqs_client_factory: Callable[[], Any] = lambda: boto3.client("sqs")) -> None:
        self.store = store
        self.settings = settings
        self._sqs_client_factory = sqs_client_factory
        self._sqs: Any = None  # created on the first failure only: no cost on the common path
        self._queue_urls: dict[str, str] = {}

    def process(self, records: list[SqsRecord]) -> dict[str, Any]:
        failures: list[str] = []
        for record in records:
            stamp = record_stamp(record)
            token = current_request_id.set(stamp.request_id)
            try:
                outcome = self._process_one(record, stamp)
                logger.info(outcome.status, extra={
                    "operation": outcome.operation, "id": outcome.id, "reason": outcome.reason,
                    "duplicate": outcome.duplicate, "messageId": record["messageId"]})
            except Exception as error:  # anything unexpected is retried too, then goes to the DLQ
                failures.append(record["messageId"])
                logger.warning("retry", exc_info=not isinstance(error, BatchRetryError), extra={
                    "error": f"{type(error).__name__}: {error}", "messageId": record["messageId"],
                    "receiveCount": (record.get("attributes") or {}).get(
                        "ApproximateReceiveCount")})
            finally:
                current_request_id.reset(token)
        if failures and not self.settings.report_batch_item_failures:
            self._delete_succeeded(records, set(failures))
            raise BatchRetryError(f"{len(failures)} of {len(records)} messages failed and will "
                                  f"be retried: {failures}")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}

    def _process_one(self, record: SqsRecord, stamp: Stamp) -> Outcome:
        try:
            command = parse_command(record["body"])
        except InvalidCommandError as error:
            return self.store.reject(stamp, str(error), error.operation, error.item_id)
        return self.store.apply(command, stamp)

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
