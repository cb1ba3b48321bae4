"""The consumer's own calls to SQS, made only when a batch has failures.

- A message handed back comes back when the consumer says (retries.py): one
  ChangeMessageVisibilityBatch call per batch (SQS takes 10 entries a call), never one per
  message.
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

MAX_ENTRIES_PER_CALL = 10  # SQS's DeleteMessageBatch and ChangeMessageVisibilityBatch limit


class SqsQueue:
    """The queues a batch came from. The client is created on the first call only: no cost on
    the common path, where nothing fails."""

    def __init__(self, client_factory: Callable[[], Any] = sqs_client) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._urls: dict[str, str] = {}

    def change_visibility(self, records: list[SqsRecord], seconds: dict[str, int]) -> None:
        """Set each record's visibility to seconds[messageId] (records without a receipt
        handle, or not in `seconds`, are left alone). Where that fails, the message comes back
        after the queue's visibility timeout instead: later, never lost."""
        entries: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            delay = seconds.get(str(record.get("messageId")))
            if delay is None or not record.get("receiptHandle"):
                continue
            entries.setdefault(str(record.get("eventSourceARN")), []).append({
                "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": delay})
        for arn, changes in entries.items():
            for start in range(0, len(changes), MAX_ENTRIES_PER_CALL):
                chunk = changes[start:start + MAX_ENTRIES_PER_CALL]
                try:
                    response = self._sqs().change_message_visibility_batch(
                        QueueUrl=self._url(arn),
                        Entries=[{"Id": str(i), **entry} for i, entry in enumerate(chunk)])
                except Exception as error:
                    logger.warning("visibility change failed", extra={"error": str(error)})
                    continue
                for failure in response.get("Failed", []):
                    logger.warning("visibility change failed", extra={"failure": failure})

    def delete_succeeded(self, records: list[SqsRecord], failed: set[str]) -> None:
        done = [r for r in records if r["messageId"] not in failed]
        if not done:
            return
        queue_url = self._url(done[0]["eventSourceARN"])
        for start in range(0, len(done), MAX_ENTRIES_PER_CALL):
            chunk = done[start:start + MAX_ENTRIES_PER_CALL]
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
