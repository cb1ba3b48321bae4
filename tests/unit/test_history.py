"""chalicelib/history.py's parts without I/O: cursors, reading the bus's envelope, and what the
consumer does with DynamoDB's partial answers (the store itself runs against both stores in
tests/functional/test_history.py)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.errors import InvalidCommandError, InvalidQueryError
from chalicelib.history import (
    HistoryConsumer,
    HistoryStore,
    decode_cursor,
    encode_cursor,
    event_of_message,
)


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    assert decode_cursor(encode_cursor(12345678901234567890)) == 12345678901234567890
    for bad in ("", "nope", encode_cursor(1)[:-1] + "!", "dmE"):  # "dmE" is base64 of "va"
        with pytest.raises(InvalidQueryError):
            decode_cursor(bad)


def test_the_event_is_the_envelopes_detail_with_exact_numbers() -> None:
    body = '{"version": "0", "detail-type": "item.created", "detail": {"id": "a", "version": 1, '\
           '"new": {"n": 0.10000000000000000000000000000000000001}}}'
    event = event_of_message(body)
    assert event["new"]["n"] == Decimal("0.10000000000000000000000000000000000001")
    for bad in ("not json", '{"no": "detail"}', '{"detail": [1]}'):
        with pytest.raises(InvalidCommandError):
            event_of_message(bad)


@pytest.mark.parametrize("event", [{"id": "a"}, {"id": 1, "version": 1},
                                   {"id": "a", "version": True}, {"id": "a", "version": "1"}])
def test_what_is_not_a_change_event_is_refused_before_any_call(event: dict[str, object]) -> None:
    with pytest.raises(InvalidCommandError):
        HistoryStore(client=None, table="t", retention_seconds=1).item_of(event)


def message(item_id: str, version: int, message_id: str) -> dict[str, Any]:
    event = {"id": item_id, "version": version, "change": "updated", "old": None, "new": None}
    return {"messageId": message_id, "body": json.dumps({"detail": event})}


def test_a_batch_is_one_write_and_only_what_dynamodb_leaves_goes_back_to_sqs() -> None:
    """DynamoDB's answers as documented (BatchWriteItem: UnprocessedItems when throttled, a
    ValidationException for a refused request): the emulators give neither on demand."""
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    history = HistoryStore(client, "h", 60, clock=lambda: 1.0, sleep=lambda _: None)
    records = [message("a", 1, "m1"), message("a", 1, "m1-again"), message("b", 1, "m2"),
               message("c", 1, "m3"), {"messageId": "m4", "body": "not json"}]
    items = [history.item_of(json.loads(r["body"])["detail"]) for r in records[:4]]
    throttled = {"UnprocessedItems": {"h": [{"PutRequest": {"Item": items[3]}}]}}
    with Stubber(client) as stub:
        # One call for the batch (the duplicate written once), then c twice more: still left.
        stub.add_response("batch_write_item", throttled, {"RequestItems": {"h": [
            {"PutRequest": {"Item": item}} for item in (items[0], items[2], items[3])]}})
        for _ in range(2):
            stub.add_response("batch_write_item", throttled,
                              {"RequestItems": {"h": [{"PutRequest": {"Item": items[3]}}]}})
        answer = HistoryConsumer(history, True).process(records)
        stub.assert_no_pending_responses()
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m4"},
                                            {"itemIdentifier": "m3"}]}
    with Stubber(client) as stub:
        stub.add_client_error("batch_write_item", "ValidationException", "refused")
        stub.add_response("batch_write_item", {})
        stub.add_client_error("batch_write_item", "ValidationException", "item too large")
        stub.add_response("batch_write_item", {})
        answer = HistoryConsumer(history, True).process(records[1:4])  # refused, then each alone
        stub.assert_no_pending_responses()
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}]}  # only the refused one
