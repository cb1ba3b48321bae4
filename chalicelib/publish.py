"""The change stream's publisher: each change event (changes.py) to the EventBridge bus.

PutEvents takes at most 10 entries and 256 KB a call (PutEventsRequestEntry size: Source,
DetailType and Detail in UTF-8 bytes, "Calculating PutEvents event entry size", EventBridge User
Guide) and fails entry by entry (FailedEntryCount; an entry's ErrorCode). A failed entry is sent
again a few times; what still fails is handed back to Lambda as a batch item failure, the
record's sequence number, and Lambda retries the shard from the lowest one (ReportBatchItemFailures
on a stream: "Configuring partial batch response with DynamoDB and Lambda", Lambda Developer
Guide). So an event is published at least once, never dropped: subscribers deduplicate on
(id, version).

An event whose Detail would pass LARGE_DETAIL_BYTES (an item near DynamoDB's 400 KB, or old and
new together) goes out shortened: its keys, versions and change, `"truncated": true`, and `item`,
the read API's path of the item (GET /items/{id} shows the current version).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.attributes import dumps
from chalicelib.changes import Change, MalformedRecordError, change_of
from chalicelib.logs import get_logger
from chalicelib.metrics import (
    PUBLISH_FAILED,
    PUBLISHED,
    STREAM_METRIC_UNITS,
    emf_line,
    namespace_and_service,
    print_line,
)

logger = get_logger("sqs_manager.publish")

SOURCE = "sqs-manager"
MAX_ENTRIES, MAX_REQUEST_BYTES = 10, 256 * 1024
# Room under the 256 KB entry limit for Source, DetailType and the shortened fields.
LARGE_DETAIL_BYTES = 200_000
PUBLISH_ATTEMPTS, RETRY_DELAY_SECONDS = 3, 0.05
COMPACT = (",", ":")


def detail_type(change: str) -> str:
    return f"item.{change}"


def detail_of(event: dict[str, Any]) -> str:
    """The event as the entry's Detail: whole, or shortened past LARGE_DETAIL_BYTES."""
    text = dumps(event, COMPACT)
    if len(text.encode("utf-8")) <= LARGE_DETAIL_BYTES:
        return text
    short = {name: event[name] for name in ("id", "version", "change", "requestId",
                                            "requestTimeEpoch")}
    for side in ("old", "new"):
        image = event[side]
        short[side] = None if image is None else {"id": image["id"],
                                                  "version": image["version"]}
    short["truncated"] = True
    short["item"] = "/items/" + quote(str(event["id"]), safe="")
    return dumps(short, COMPACT)


def entry_size(entry: dict[str, Any]) -> int:
    return sum(len(str(entry[name]).encode("utf-8")) for name in ("Source", "DetailType",
                                                                 "Detail"))


@dataclass
class Pending:
    """An entry and the stream record it came from."""

    sequence_number: str
    entry: dict[str, Any]
    error: str = ""


@dataclass
class PublishResult:
    published: int = 0
    failed: list[str] = field(default_factory=list)  # sequence numbers, in record order

    def batch_response(self) -> dict[str, Any]:
        """Lambda's partial batch response: retry from the first record not published."""
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failed[:1]]}


class ChangePublisher:
    def __init__(self, client: Any, bus_name: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.bus_name = bus_name
        self.sleep = sleep

    def publish(self, records: Sequence[dict[str, Any]]) -> PublishResult:
        """Publish the changes of a batch of stream records (Lambda's shape), in order."""
        result = PublishResult()
        pending: list[Pending] = []
        unreadable: list[str] = []
        for record in records:
            try:
                change = change_of(record)
            except MalformedRecordError as error:
                sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
                logger.error("stream record unreadable: retried, then kept by the on-failure "
                             "destination", extra={"sequenceNumber": sequence,
                                                   "error": str(error)})
                unreadable.append(sequence)
                continue
            if change is not None:
                pending.append(self._pending(change))
        for attempt in range(PUBLISH_ATTEMPTS):
            if not pending:
                break
            if attempt:
                self.sleep(RETRY_DELAY_SECONDS * 2 ** attempt)
            pending = self._send(pending, result)
        for failed in pending:
            logger.error("change not published: Lambda retries from its record", extra={
                "sequenceNumber": failed.sequence_number, "error": failed.error})
        order = {str((r.get("dynamodb") or {}).get("SequenceNumber", "")): index
                 for index, r in enumerate(records)}
        result.failed = sorted({*unreadable, *(p.sequence_number for p in pending)},
                               key=lambda s: order.get(s, -1))
        namespace, service = namespace_and_service()
        print_line(emf_line(namespace, service, {PUBLISHED: result.published,
                                                 PUBLISH_FAILED: len(result.failed)},
                            STREAM_METRIC_UNITS))
        return result

    def _pending(self, change: Change) -> Pending:
        return Pending(change.sequence_number, {
            "Source": SOURCE, "DetailType": detail_type(change.kind),
            "Detail": detail_of(change.event), "EventBusName": self.bus_name})

    def _send(self, pending: list[Pending], result: PublishResult) -> list[Pending]:
        """One pass over `pending` in calls of at most 10 entries and 256 KB; what failed."""
        failed: list[Pending] = []
        for chunk in _chunks(pending):
            try:
                response = self.client.put_events(Entries=[p.entry for p in chunk])
            except (ClientError, BotoCoreError) as error:
                for item in chunk:
                    item.error = f"{type(error).__name__}: {error}"
                failed.extend(chunk)
                continue
            for item, answer in zip(chunk, response.get("Entries", []), strict=False):
                if answer.get("ErrorCode"):
                    item.error = f"{answer['ErrorCode']}: {answer.get('ErrorMessage', '')}"
                    failed.append(item)
                else:
                    result.published += 1
            # An answer with fewer entries than sent (never documented): the rest failed.
            for item in chunk[len(response.get("Entries", [])):]:
                item.error = "no answer for this entry"
                failed.append(item)
        return failed


def _chunks(pending: list[Pending]) -> list[list[Pending]]:
    chunks: list[list[Pending]] = []
    size = 0
    for item in pending:
        cost = entry_size(item.entry)
        if not chunks or len(chunks[-1]) == MAX_ENTRIES or size + cost > MAX_REQUEST_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += cost
    return chunks
