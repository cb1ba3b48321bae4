"""Exact JSON <-> DynamoDB values, without I/O."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.attributes import (
    MAX_ITEM_BYTES,
    MAX_NAME_BYTES,
    MAX_NESTING,
    check_item_size,
    dumps,
    from_attribute,
    item_size,
    loads,
    lone_surrogate,
    printable,
    size_bound,
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


def nested(levels: int, leaf: Any = "leaf", kind: type = dict) -> Any:
    """`levels` objects (or arrays) around `leaf`."""
    for _ in range(levels):
        leaf = {"d": leaf} if kind is dict else [leaf]
    return leaf


@pytest.mark.parametrize("kind", [dict, list])
def test_an_attribute_nests_at_most_30_levels(kind: type) -> None:
    """DynamoDB Local 3.3.0 takes 31 maps or lists around a value in a top-level attribute, not
    32; the store's `item` map is the first of them (tests/functional/test_limits.py checks
    this on the engine)."""
    # Containers around a value, the value's own if it is one: 30 is fine, 31 is not.
    for leaf, own in (("leaf", 0), ({}, 1), ([], 1), ({"x": 1}, 1)):
        to_map({"a": nested(MAX_NESTING - own, leaf, kind)})
        with pytest.raises(InvalidCommandError, match="nested deeper than 30"):
            to_map({"a": nested(MAX_NESTING + 1 - own, leaf, kind)})


def test_attribute_names_dynamodb_refuses() -> None:
    with pytest.raises(InvalidCommandError, match="empty attribute name"):
        to_map({"": 1})
    to_map({"n" * MAX_NAME_BYTES: 1})
    with pytest.raises(InvalidCommandError, match="65,536 bytes"):
        to_map({"a": {"n" * (MAX_NAME_BYTES + 1): 1}})
    # Bytes, not characters: 21,846 three-byte characters are 65,538 bytes.
    with pytest.raises(InvalidCommandError, match="at most 65,535 bytes"):
        to_map({"€" * 21_846: 1})


def test_lone_surrogates_are_found_in_values_and_names() -> None:
    assert lone_surrogate({"a": ["ok", "\ud83d"]}) == "body.a[1]"
    assert lone_surrogate({"a": {"\udc00": 1}}) == "body.a (an attribute name)"
    assert lone_surrogate({"a": "😀"}) is None


def test_printable_caps_and_escapes() -> None:
    assert printable("x" * 10, 5) == "xxxx…"
    assert printable("a\ud83db", 50) == "a\\ud83db"
    assert printable("short", 50) == "short"


def test_item_size_follows_dynamodb_rules() -> None:
    check_item_size({"a": {"S": "x" * 1000}}, "small")
    with pytest.raises(ItemTooLargeError, match="400 KB"):
        check_item_size({"a": {"S": "x" * MAX_ITEM_BYTES}}, "big")
    # DynamoDB Local refuses an item of exactly 409,600 bytes: so does the check.
    check_item_size({"a": {"S": "x" * (MAX_ITEM_BYTES - 2)}}, "just under")
    with pytest.raises(ItemTooLargeError):
        check_item_size({"a": {"S": "x" * (MAX_ITEM_BYTES - 1)}}, "exactly at the limit")


def test_absurd_nesting_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        loads("[" * 100_000 + "]" * 100_000)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.text() | st.integers(-10**40, 10**40)
    | st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: d.is_zero() or -130 < d.adjusted() < 125),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(min_size=1, max_size=8), children, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, max_size=6))
def test_size_bound_is_never_below_dynamodbs_count(value: dict[str, Any]) -> None:
    # store.apply_together sizes a transaction with the bound: it must never undercount.
    try:
        item = to_map(value)
    except InvalidCommandError:  # a value DynamoDB cannot keep (a lone surrogate, a digit
        return                   # too many): no write is built for it
    assert size_bound(item) >= item_size(item)
