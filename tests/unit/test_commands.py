"""Message contract: parsing and who-sent-it-when, without I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.commands import Command, Stamp, parse_command, record_stamp
from chalicelib.errors import InvalidCommandError
from chalicelib.store import explain_conflict


def test_parse_keeps_item_exact() -> None:
    command = parse_command('{"operation": "put", "id": "a", "item": {"x": 0.1}, '
                            '"expectedVersion": 2}')
    assert command == Command("put", "a", {"x": Decimal("0.1")}, 2)


def test_an_invalid_command_still_says_what_it_named() -> None:
    with pytest.raises(InvalidCommandError) as raised:
        parse_command('{"operation": "create", "id": "no-item"}')
    assert (raised.value.operation, raised.value.item_id) == ("create", "no-item")
    with pytest.raises(InvalidCommandError) as raised:
        parse_command('{"operation": 7, "id": ["x"]}')
    assert (raised.value.operation, raised.value.item_id) == (None, None)


def test_stamp_comes_from_message_attributes() -> None:
    record = {"messageId": "m1", "attributes": {"SentTimestamp": "5"}, "messageAttributes": {
        "requestId": {"stringValue": "r1", "dataType": "String"},
        "requestTimeEpoch": {"stringValue": "1700000000123", "dataType": "Number"}}}
    assert record_stamp(record) == Stamp(1700000000123, "r1")


def test_stamp_falls_back_to_sqs_message_id_and_sent_timestamp() -> None:
    record = {"messageId": "m1", "attributes": {"SentTimestamp": "5"}, "messageAttributes": {}}
    assert record_stamp(record) == Stamp(5, "m1")


def test_stamps_order_by_time_then_request_id() -> None:
    assert Stamp(1, "b") < Stamp(2, "a") and Stamp(2, "a") < Stamp(2, "b")


def test_conflicts_are_explained() -> None:
    stamp = Stamp(10, "r")
    update = Command("update", "a", {"x": 1})
    item = {"lastRequestTime": 5, "lastRequestId": "q", "version": 3}
    assert explain_conflict(update, stamp, None) == "item 'a' does not exist"
    assert explain_conflict(update, stamp, {**item, "lastRequestTime": 10, "lastRequestId": "r"}) \
        is None
    assert "superseded" in str(explain_conflict(update, stamp, {**item, "lastRequestTime": 11}))
    assert "already exists (version 3)" in str(
        explain_conflict(Command("create", "a", {}), stamp, item))
    assert "was deleted" in str(explain_conflict(update, stamp, {**item, "deleted": True}))
    assert "expected version 2, but the current version is 3" in str(
        explain_conflict(Command("put", "a", {}, 2), stamp, item))
    assert "expected version 2, but item 'a' does not exist" in str(
        explain_conflict(Command("put", "a", {}, 2), stamp, None))


def test_only_item_size_errors_are_the_items_fault() -> None:
    from chalicelib.store import _is_size_error

    assert _is_size_error("Item size has exceeded the maximum allowed size")
    assert _is_size_error("Item size to update has exceeded the maximum allowed size")
    assert not _is_size_error("Invalid UpdateExpression: Expression size has exceeded the "
                              "maximum allowed size")
