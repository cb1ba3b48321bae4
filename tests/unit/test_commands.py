"""Message contract: parsing and who-sent-it-when, without I/O."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.commands import Command, Stamp, parse_command, record_stamp
from chalicelib.dynamodb import refusal
from chalicelib.errors import InvalidCommandError, ItemTooLargeError
from chalicelib.writes import Verdict, VerdictKind, stamp_text, verdict


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
    assert verdict(update, stamp, None) == Verdict(VerdictKind.CONDITION, "item 'a' does not exist")
    assert verdict(Command("put", "a", {}), stamp, {**item, "lastRequestTime": 10,
                                                    "lastRequestId": "r"}).kind == "mine"
    assert verdict(update, stamp, {**item, "attrStamps": {"x": stamp_text(stamp)}}).kind == "mine"
    superseded = verdict(update, stamp, {**item, "lastRequestTime": 11})
    assert superseded.kind == "superseded" and "superseded" in superseded.reason
    assert verdict(Command("create", "a", {}), stamp, item) == Verdict(
        VerdictKind.CONDITION, "item 'a' already exists (version 3)")
    assert "was deleted" in verdict(update, stamp, {**item, "deleted": True}).reason
    assert "expected version 2, but the current version is 3" in verdict(
        Command("put", "a", {}, 2), stamp, item).reason
    assert "expected version 2, but item 'a' does not exist" in verdict(
        Command("put", "a", {}, 2), stamp, None).reason
    # A newer update wrote other attributes: merge against the item rather than reject.
    assert verdict(update, stamp, {**item, "maxAttrStamp": stamp_text(Stamp(12, "z"))}).kind == (
        "merge")


def test_stamp_text_orders_as_stamps_do() -> None:
    stamps = [Stamp(5, "b"), Stamp(5, "a"), Stamp(12, "a"), Stamp(1_700_000_000_000, "Z"),
              Stamp(5, "ab"), Stamp(5, "ü"), Stamp(5, "a-b_c")]
    assert sorted(stamps, key=stamp_text) == sorted(stamps)


def test_validation_errors_are_explained_size_apart() -> None:
    for message in ("Item size has exceeded the maximum allowed size",
                    "Item size to update has exceeded the maximum allowed size"):
        assert "over DynamoDB's 400 KB item size limit" in str(refusal(message))
        assert isinstance(refusal(message), ItemTooLargeError)
    expression = "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size"
    assert str(refusal(expression)) == f"DynamoDB refused the write as invalid: {expression}"
    assert not isinstance(refusal(expression), ItemTooLargeError)


@pytest.mark.parametrize(("body", "where"), [
    ('{"operation": "put", "id": "x", "item": {"s": "\\ud83d"}}', "body.item.s"),
    ('{"operation": "put", "id": "x", "item": {"\\udc00": 1}}', "body.item (an attribute name)"),
    ('{"operation": "put", "id": "x\\ud83d", "item": {}}', "body.id"),
])
def test_lone_surrogates_are_invalid_commands(body: str, where: str) -> None:
    """Valid JSON, but not Unicode text: rejected before anything tries to encode it."""
    with pytest.raises(InvalidCommandError, match="lone UTF-16 surrogate") as raised:
        parse_command(body)
    assert str(raised.value).startswith(where + ": ")
    assert raised.value.operation == "put"


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    assert parse_command('{"operation": "put", "id": "\\ud83d\\ude00", "item": {}}').id == "😀"


def test_a_number_without_a_decimal_value_is_an_invalid_command() -> None:
    with pytest.raises(InvalidCommandError, match="number too large to read"):
        parse_command('{"operation": "put", "id": "e1", "item": {"n": 1e9999999999999999999}}')


def test_an_update_sets_at_most_64_attributes() -> None:
    """An update writes two expression clauses per attribute (the value and its stamp):
    DynamoDB refuses expressions over 4 KB, and moto fails from about 78 attributes. The schema
    (and so API Gateway's model) caps an update at 64."""
    def update(count: int) -> str:
        return json.dumps({"operation": "update", "id": "u",
                           "item": {f"a{i}": i for i in range(count)}})

    assert len(parse_command(update(64)).item) == 64
    with pytest.raises(InvalidCommandError, match="at most 64 properties"):
        parse_command(update(65))
    # A put has no such cap: its item is one value, not an expression.
    parse_command(json.dumps({"operation": "put", "id": "p",
                              "item": {f"a{i}": i for i in range(500)}}))


@pytest.mark.parametrize("attributes", [
    {"requestId": {"dataType": "Binary", "binaryValue": "AAE="},
     "requestTimeEpoch": {"stringValue": "\u0661\u0662\u0663", "dataType": "Number"}},
    {"requestId": {"stringValue": "r" * 5000, "dataType": "String"},
     "requestTimeEpoch": {"stringValue": "9" * 40, "dataType": "Number"}},
    {"requestId": "not an attribute", "requestTimeEpoch": {"stringValue": None}},
    {"requestTimeEpoch": {"stringValue": "-5", "dataType": "Number"}},
])
def test_malformed_stamp_attributes_fall_back_to_sqs_own(attributes: dict[str, Any]) -> None:
    record = {"messageId": "m1", "attributes": {"SentTimestamp": "5"},
              "messageAttributes": attributes}
    assert record_stamp(record) == Stamp(5, "m1")
    assert record_stamp({"messageId": "m2", "messageAttributes": None,
                         "attributes": {"SentTimestamp": "oops"}}) == Stamp(0, "m2")
