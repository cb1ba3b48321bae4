"""Exact JSON <-> DynamoDB values, without I/O."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.attributes import (
    MAX_ITEM_BYTES,
    check_item_size,
    dumps,
    from_attribute,
    loads,
    to_attribute,
    to_map,
)
from chalicelib.errors import InvalidCommandError, ItemTooLargeError

EXACT = ('{"small": 0.1, "big": 12345678901234567890, "neg": -7, "exp": 1.5e-7, '
         '"text": "& + % = ? # ü 😀 \\" \' \\\\ \\n", "deep": {"a": [1, {"b": [true, null]}]}, '
         '"empty": "", "list": []}')


def test_numbers_round_trip_exactly() -> None:
    value = loads(EXACT)
    assert value["small"] == Decimal("0.1") and value["big"] == 12345678901234567890
    back = from_attribute(to_attribute(value))
    assert back == value
    assert json.loads(dumps(back)) == json.loads(EXACT)
    assert '"small": 0.1,' in dumps(back) and "12345678901234567890" in dumps(back)


def test_dumps_is_valid_json_for_every_kind() -> None:
    value = {"d": Decimal("1E+2"), "z": Decimal("-0.000"), "s": "ü😀", "n": None, "b": False}
    assert json.loads(dumps(value), parse_float=Decimal) == value


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "{", "[1,]"])
def test_loads_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


@pytest.mark.parametrize("number, fragment", [
    ("123456789012345678901234567890123456789", "39 significant digits"),
    ("1e200", "out of DynamoDB's number range"),
    ("1e-200", "out of DynamoDB's number range"),
])
def test_numbers_dynamodb_cannot_keep_are_rejected_with_a_reason(number: str,
                                                                 fragment: str) -> None:
    with pytest.raises(InvalidCommandError, match=fragment):
        to_attribute(loads(number), "item.x")


def test_limits_on_nesting_and_names() -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"d": deep}
    with pytest.raises(InvalidCommandError, match="nested deeper"):
        to_map(deep)
    with pytest.raises(InvalidCommandError, match="empty attribute name"):
        to_map({"": 1})


def test_item_size_follows_dynamodb_rules() -> None:
    check_item_size({"a": {"S": "x" * 1000}}, "small")
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        check_item_size({"a": {"S": "x" * MAX_ITEM_BYTES}}, "big")


def test_absurd_nesting_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)
