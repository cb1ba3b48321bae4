"""Item history: every change event of an item, kept per (id, version), served oldest first.

It lives in a table of its own, key `id` (partition) and `version` (sort, a number): one Query
gives an item's changes in version order, whatever order they arrived in. The item table has a
partition key only; giving it a sort key would replace it (a key schema cannot change), and
history keys in it (`history#<id>#<version>`) could be listed only by a Scan. A table of its own
also keeps its retention (TTL on `expiresAt`), its capacity and its permissions apart: the
history consumer writes only here, and the table's stream never sees history.

A batch's changes are stored with BatchWriteItem, one call for up to 25: a redelivered or
republished event (the bus and SQS deliver at least once) has the same (id, version) and the same
content, so writing it again replaces it with itself and the history lists it once (a
conditional PutItem per event would cost a round trip each: too slow for 100 writes/s,
docs/consumers.md). The event is kept as its JSON
text: exact numbers, and no extra nesting level around an item that may already use DynamoDB's
32. A history item stays within 400 KB: the bus carries at most about 200 KB of detail
(publish.py).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.attributes import dumps, loads
from chalicelib.dynamodb import call, table_key
from chalicelib.errors import (
    BatchRetryError,
    InvalidCommandError,
    InvalidQueryError,
    SqsManagerError,
)
from chalicelib.lanes import SqsRecord
from chalicelib.logs import get_logger
from chalicelib.reads import page_size_of
from chalicelib.sqs import SqsQueue

logger = get_logger("sqs_manager.history")

BAD_CURSOR = "cursor is not one this API returned"
HistoryKey = tuple[str, str]  # (id, version) as the history item's key holds them
COMPACT = (",", ":")
# BatchWriteItem takes at most 25 puts a call, with distinct keys (BatchWriteItem, DynamoDB API
# Reference); the unprocessed ones are sent again with a backoff, as AWS advises.
MAX_BATCH_WRITE, WRITE_ATTEMPTS, RETRY_DELAY_SECONDS = 25, 3, 0.05


class HistoryStore:
    def __init__(self, client: Any, table: str, retention_seconds: int,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table
        self.retention_seconds = retention_seconds
        self.clock = clock
        self.sleep = sleep

    def item_of(self, event: dict[str, Any]) -> dict[str, Any]:
        """The history item of one change event (refused if it is not one)."""
        item_id, version = event.get("id"), event.get("version")
        if not isinstance(item_id, str) or not isinstance(version, int) or isinstance(
                version, bool):
            raise InvalidCommandError(f"not a change event: id {item_id!r}, "
                                      f"version {version!r}")
        return {"id": {"S": item_id}, "version": {"N": str(version)},
                "change": {"S": str(event.get("change"))},
                "event": {"S": dumps(event, COMPACT)},
                # When this consumer stored it (ms): for latency, never shown by the API.
                "recordedAt": {"N": str(int(self.clock() * 1000))},
                "expiresAt": {"N": str(int(self.clock()) + self.retention_seconds)}}

    def write(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store history items (distinct keys) in calls of at most 25; what DynamoDB left
        unprocessed after the retries (throttling) is returned, to be retried by SQS."""
        pending = items
        for attempt in range(WRITE_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self.sleep(RETRY_DELAY_SECONDS * 2 ** attempt)
            left: list[dict[str, Any]] = []
            for start in range(0, len(pending), MAX_BATCH_WRITE):
                response = call(self.client.batch_write_item, RequestItems={self.table: [
                    {"PutRequest": {"Item": item}}
                    for item in pending[start:start + MAX_BATCH_WRITE]]})
                left.extend(request["PutRequest"]["Item"] for request in
                            response.get("UnprocessedItems", {}).get(self.table, []))
            pending = left
        return pending

    def page(self, item_id: str, limit: str | int | None = None,
             cursor: str | None = None) -> dict[str, Any]:
        """`{"changes": [...oldest first...], "cursor"?}`; the cursor asks for the next page."""
        size = page_size_of(limit)
        changes: list[dict[str, Any]] = []
        if table_key("", item_id) is None:
            return {"changes": changes}  # no such item can exist
        request: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ScanIndexForward": True,
            "KeyConditionExpression": "#id = :id", "ExpressionAttributeNames": {"#id": "id"},
            "ExpressionAttributeValues": {":id": {"S": item_id}},
            "ProjectionExpression": "#e", "Limit": size + 1,
        }
        request["ExpressionAttributeNames"]["#e"] = "event"
        if cursor:
            request["ExclusiveStartKey"] = {"id": {"S": item_id},
                                            "version": {"N": str(decode_cursor(cursor))}}
        while len(changes) <= size:
            response = call(self.client.query, **request)
            changes.extend(loads(found["event"]["S"]) for found in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            request["Limit"] = size + 1 - len(changes)
        page: dict[str, Any] = {"changes": changes[:size]}
        if len(changes) > size:
            page["cursor"] = encode_cursor(changes[size - 1]["version"])
        return page


def encode_cursor(version: int) -> str:
    return base64.urlsafe_b64encode(f"v{version}".encode("ascii")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("v") or not text[1:].isdigit():
        raise InvalidQueryError(BAD_CURSOR)
    return int(text[1:])


def event_of_message(body: str) -> dict[str, Any]:
    """The change event in an SQS message from the bus's rule (the EventBridge event as JSON,
    the event in `detail`), numbers exact."""
    try:
        envelope = loads(body)
        detail = envelope["detail"]
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidCommandError(f"not an EventBridge event: {error}") from error
    if not isinstance(detail, dict):
        raise InvalidCommandError("the EventBridge event's detail is not an object")
    return detail


class HistoryConsumer:
    """The history queue's consumer: each message's event stored once; a message that fails
    (DynamoDB unavailable) goes back to SQS, one that is not a change event to its DLQ after
    the queue's receives (kept, with the reason in the log)."""

    def __init__(self, history: HistoryStore, report_batch_item_failures: bool,
                 queue: SqsQueue | None = None) -> None:
        self.history = history
        self.report_batch_item_failures = report_batch_item_failures
        self.queue = queue or SqsQueue()

    def process(self, records: list[SqsRecord]) -> dict[str, Any]:
        failed: list[str] = []
        # One item per (id, version): duplicates in a batch are the same change.
        by_key: dict[HistoryKey, tuple[dict[str, Any], list[str]]] = {}
        for record in records:
            try:
                item = self.history.item_of(event_of_message(record["body"]))
            except SqsManagerError as error:
                self._not_stored(record["messageId"], error)
                failed.append(record["messageId"])
                continue
            by_key.setdefault(key_of(item), (item, []))[1].append(record["messageId"])
        failures: dict[HistoryKey, Exception | str] = {}
        self._store([item for item, _ in by_key.values()], failures)
        for key, why in failures.items():
            for message_id in by_key[key][1]:
                self._not_stored(message_id, why)
                failed.append(message_id)
        logger.info("history batch", extra={"messages": len(records),
                                            "stored": len(records) - len(failed),
                                            "failed": len(failed)})
        if failed and not self.report_batch_item_failures:
            self.queue.delete_succeeded(records, set(failed))
            raise BatchRetryError(f"{len(failed)} history message(s) handed back to SQS")
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    def _store(self, items: list[dict[str, Any]],
               failures: dict[HistoryKey, Exception | str]) -> None:
        """Write the items; note in `failures` why those not stored were not."""
        try:
            left = self.history.write(items)
        except SqsManagerError as error:  # DynamoDB unavailable or throttling: all retried
            failures.update((key_of(item), error) for item in items)
            return
        except ClientError as error:
            if len(items) > 1:  # refused: each alone, so that only the one refused fails
                for item in items:
                    self._store([item], failures)
                return
            failures[key_of(items[0])] = error
            return
        failures.update((key_of(item), "left unprocessed by DynamoDB (throttled)")
                        for item in left)

    @staticmethod
    def _not_stored(message_id: str, why: Exception | str) -> None:
        reason = f"{type(why).__name__}: {why}" if isinstance(why, Exception) else why
        logger.error("history message not stored: retried by SQS",
                     extra={"messageId": message_id, "error": reason})


def key_of(item: dict[str, Any]) -> HistoryKey:
    return item["id"]["S"], item["version"]["N"]
