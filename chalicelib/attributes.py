"""Exact JSON <-> DynamoDB attribute values, with the low-level client's wire format.

Numbers never pass through float: JSON integers become Python ints and other numbers Decimals,
both written to DynamoDB as their decimal text, so 0.1 stays 0.1 and 12345678901234567890 stays
exact. dumps() writes them back the same way (json.dumps would need floats).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.errors import InvalidCommandError, ItemTooLargeError

AttributeValue = dict[str, Any]

# DynamoDB's item limit, names and values together. Amazon's engine (DynamoDB Local 3.3.0) refuses
# an item of exactly 409,600 bytes, so that size is refused here too.
MAX_ITEM_BYTES = 400 * 1024
# DynamoDB nests at most 32 levels: a top-level attribute holds at most 31 maps or lists around a
# value (measured on DynamoDB Local 3.3.0). The store keeps the user's item inside the map `item`,
# so an attribute value of the user's may hold at most 30 (docs/contract.md).
MAX_NESTING = 30
# DynamoDB: an attribute name is less than 64 KB ("must be less than 65536 bytes").
MAX_NAME_BYTES = 65_535
MAX_DIGITS = 38  # significant digits a DynamoDB number keeps
MIN_EXPONENT, MAX_EXPONENT = -130, 125


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(text: str | bytes, parse_float: Callable[[str], Any] = Decimal) -> Any:
    """json.loads that keeps every number exact and refuses NaN, Infinity and absurd nesting."""
    try:
        return json.loads(text, parse_float=parse_float, parse_constant=_reject_constant)
    except RecursionError as error:
        raise ValueError("JSON nested too deeply") from error


def dumps(value: Any, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps that writes ints and Decimals as their exact decimal text."""
    parts: list[str] = []
    _encode(value, parts, separators)
    return "".join(parts)


def _encode(value: Any, out: list[str], separators: tuple[str, str]) -> None:
    item_separator, key_separator = separators
    if isinstance(value, Mapping):
        out.append("{")
        for index, (key, member) in enumerate(value.items()):
            if index:
                out.append(item_separator)
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(key_separator)
            _encode(member, out, separators)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, member in enumerate(value):
            if index:
                out.append(item_separator)
            _encode(member, out, separators)
        out.append("]")
    elif isinstance(value, Decimal):
        out.append(str(value))
    else:
        out.append(json.dumps(value, ensure_ascii=False))


def check_number(number: int | Decimal, path: str) -> str:
    """The number's text, if DynamoDB can store it exactly; else a reason to reject it."""
    text = str(number)
    try:
        decimal = Decimal(text)
    except InvalidOperation as error:  # pragma: no cover - ints and Decimals always parse
        raise InvalidCommandError(f"{path}: {text} is not a number") from error
    if decimal.is_zero():
        return text
    digits = _significant_digits(decimal)
    if len(digits) > MAX_DIGITS:
        raise InvalidCommandError(
            f"{path}: {text} has {len(digits)} significant digits; DynamoDB keeps at most "
            f"{MAX_DIGITS}, so it would not round-trip exactly")
    if not MIN_EXPONENT <= decimal.adjusted() <= MAX_EXPONENT:
        raise InvalidCommandError(
            f"{path}: {text} is out of DynamoDB's number range (1E-130 to 1E+126)")
    return text


def _significant_digits(number: Decimal) -> str:
    # Not Decimal.normalize(): it rounds to the context's 28 digits.
    return "".join(map(str, number.as_tuple().digits)).strip("0") or "0"


def to_attribute(value: Any, path: str = "item", depth: int = 0) -> AttributeValue:
    """`value` as a DynamoDB attribute value; `depth` counts the maps and lists around it within
    its top-level attribute."""
    if isinstance(value, list | dict) and depth >= MAX_NESTING:
        raise InvalidCommandError(
            f"{path}: nested deeper than {MAX_NESTING} objects or arrays in one attribute "
            f"(DynamoDB's limit of 32 levels, less the ones the store uses)")
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": check_number(value, path)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [to_attribute(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        return {"M": to_map(value, path, depth + 1)}
    raise InvalidCommandError(f"{path}: unsupported value of type {type(value).__name__}")


def to_map(value: dict[str, Any], path: str = "item", depth: int = 0) -> dict[str, AttributeValue]:
    for key in value:
        check_name(key, path)
    return {key: to_attribute(member, f"{path}.{key}", depth) for key, member in value.items()}


def check_name(name: str, path: str) -> None:
    """Refuse an attribute name DynamoDB would refuse."""
    if name == "":
        raise InvalidCommandError(f"{path}: DynamoDB does not allow an empty attribute name")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidCommandError(
            f"{path}: an attribute name of {size:,} bytes; DynamoDB allows at most "
            f"{MAX_NAME_BYTES:,} bytes")


def lone_surrogate(value: Any, path: str = "body") -> str | None:
    """Where `value` holds a lone UTF-16 surrogate (valid JSON as an escape like \\ud83d, but not
    Unicode text: it has no UTF-8 form, so DynamoDB cannot store it), or None."""
    if isinstance(value, str):
        return path if _has_surrogate(value) else None
    if isinstance(value, list):
        return next((found for i, v in enumerate(value)
                     if (found := lone_surrogate(v, f"{path}[{i}]")) is not None), None)
    if isinstance(value, dict):
        for key, member in value.items():
            if _has_surrogate(key):
                return f"{path} (an attribute name)"
            found = lone_surrogate(member, f"{path}.{key}")
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(text: str, limit: int) -> str:
    """`text` fit to record and print: lone surrogates escaped, at most `limit` characters."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(safe) <= limit else safe[:limit - 1] + "…"


def from_attribute(attribute: AttributeValue) -> Any:
    (kind, value), = attribute.items()
    if kind == "S" or kind == "BOOL":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else Decimal(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return from_map(value)
    if kind == "L":
        return [from_attribute(member) for member in value]
    if kind == "SS":
        return sorted(value)
    if kind == "NS":
        return sorted(from_attribute({"N": member}) for member in value)
    raise ValueError(f"unsupported DynamoDB attribute type {kind}")


def from_map(value: dict[str, AttributeValue]) -> dict[str, Any]:
    return {key: from_attribute(member) for key, member in value.items()}


def attribute_size(attribute: AttributeValue) -> int:
    """Bytes DynamoDB counts for one value (its documented sizing rules)."""
    (kind, value), = attribute.items()
    if kind == "S":
        return len(value.encode("utf-8"))
    if kind == "N":
        return min(21, len(_significant_digits(Decimal(value))) // 2 + 2)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + attribute_size(member) for member in value)
    if kind == "M":
        return 3 + item_size(value) + len(value)
    raise ValueError(f"unsupported DynamoDB attribute type {kind}")


def item_size(item: dict[str, AttributeValue]) -> int:
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


def size_bound(item: dict[str, AttributeValue]) -> int:
    """At least item_size(item), at C speed (item_size costs about 0.1 ms a write): JSON text
    (ASCII, escapes included) is never shorter than what DynamoDB counts for the same attributes.
    A name or string is at least its UTF-8 bytes, a number's text at least its digits, and each
    map or list entry adds at least the 1 byte DynamoDB adds."""
    return len(json.dumps(item))


def check_item_size(item: dict[str, AttributeValue], what: str) -> None:
    size = item_size(item)
    if size >= MAX_ITEM_BYTES:
        raise ItemTooLargeError(
            f"{what} is {size:,} bytes as a DynamoDB item, over DynamoDB's item size limit "
            f"(400 KB: it must stay under {MAX_ITEM_BYTES:,} bytes)")
