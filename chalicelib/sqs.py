"""The consumer's own calls to SQS, made only when a batch has failures.

- A message that waits for earlier requests comes back after a doubling delay
  (ChangeMessageVisibility).
- Where the event source mapping cannot report batch item failures (`chalice deploy` cannot set
  ReportBatchItemFailures, and Lambda would then delete the whole batch, failures included), the
  consumer deletes the messages that succeeded itself, then raises so that SQS redelivers only
  the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.clients import sqs_client
from chalicelib.lanes import SqsRecord
from chalicelib.logs import get_logger

# The consumer's log lines keep one logger name, whichever module writes them.
logger = get_logger("sqs_manager.batch")

MAX_VISIBILITY_DELAY_SECONDS = 60
MAX_DELETES_PER_CALL = 10  # SQS's DeleteMessageBatch limit


def receive_count(record: SqsRecord) -> int:
    count = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(count) if str(count).isdigit() else 1


class SqsQueue:
    """The queues a batch came from. The client is created on the first call only: no cost on
    the common path, where nothing fails."""

    def __init__(self, client_factory: Callable[[], Any] = sqs_client) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._urls: dict[str, str] = {}

    def delay(self, record: SqsRecord, first_delay_seconds: float) -> int:
        """Bring the message back after a delay doubling from `first_delay_seconds` with each
        receive; SQS's default (the queue's visibility timeout) if that fails."""
        delay = int(min(MAX_VISIBILITY_DELAY_SECONDS,
                        first_delay_seconds * 2 ** (receive_count(record) - 1)))
        try:
            self._sqs().change_message_visibility(
                QueueUrl=self._url(record["eventSourceARN"]),
                ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay)
        except Exception as error:
            logger.warning("visibility change failed", extra={"error": str(error)})
        return delay

    def delete_succeeded(self, records: list[SqsRecord], failed: set[str]) -> None:
        done = [r for r in records if r["messageId"] not in failed]
        if not done:
            return
        queue_url = self._url(done[0]["eventSourceARN"])
        for start in range(0, len(done), MAX_DELETES_PER_CALL):
            chunk = done[start:start + MAX_DELETES_PER_CALL]
            response = self._sqs().delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)])
            for failure in response.get("Failed", []):
                # Harmless: the message comes back and its request is found already handled.
                logger.warning("delete failed", extra={"failure": failure})

    def _sqs(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _url(self, arn: str) -> str:
        if arn not in self._urls:
            # arn:aws:sqs:<region>:<account>:<name>
            _, _, _, _, account, name = arn.split(":", 5)
            owner = {"QueueOwnerAWSAccountId": account} if account else {}
            found = self._sqs().get_queue_url(QueueName=name, **owner)
            self._urls[arn] = found["QueueUrl"]
        return self._urls[arn]
