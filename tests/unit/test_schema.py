"""The Lambda's standard-library validator agrees with jsonschema (the model validation the
gateway does) on the real command schema, and refuses schemas it cannot check."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from chalicelib.commands import parse_command
from chalicelib.errors import InvalidCommandError
from chalicelib.schema import SchemaError, check_schema, errors, load_schema

SCHEMA = load_schema()
OPERATIONS = ["create", "put", "update", "delete", "read", "zap", 7, None]
IDS = ["a", "", "x" * 255, "x" * 256, 5, "ü😀"]
WIDE = {f"a{i}": i for i in range(64)}  # the most attributes an update may set
ITEMS: list[Any] = [{}, {"name": "n"}, {"id": 1}, {"version": 2}, {"nested": {"id": 1}}, [], "s",
                    WIDE, {**WIDE, "one": "too many"}]
VERSIONS: list[Any] = [0, 3, -1, 1.5, True, "3"]
MISSING = object()


def corpus() -> list[dict[str, Any]]:
    bodies = []
    for operation, item_id, item, version in itertools.product(
            [*OPERATIONS, MISSING], [*IDS[:3], MISSING], [*ITEMS, MISSING],
            [*VERSIONS[:2], MISSING]):
        body = {"operation": operation, "id": item_id, "item": item, "expectedVersion": version}
        bodies.append({k: v for k, v in body.items() if v is not MISSING})
    for field, values in (("id", IDS), ("expectedVersion", VERSIONS), ("item", ITEMS)):
        for value in values:
            bodies.append({"operation": "put", "id": "a", "item": {}, field: value})
    bodies.append({"operation": "put", "id": "a", "item": {}, "extra": 1})
    return bodies


def test_schema_is_valid_draft4() -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)


def test_agrees_with_jsonschema_on_every_body_of_the_corpus() -> None:
    reference = jsonschema.Draft4Validator(SCHEMA)
    checked = 0
    for body in corpus():
        expected_valid = reference.is_valid(json.loads(json.dumps(body)))
        assert (not errors(SCHEMA, body)) == expected_valid, body
        checked += 1
    assert checked > 500


def test_draft4_integers_exclude_decimals_and_booleans() -> None:
    body = {"operation": "put", "id": "a", "item": {}}
    assert errors(SCHEMA, {**body, "expectedVersion": Decimal("1.0")})
    assert errors(SCHEMA, {**body, "expectedVersion": True})
    assert not errors(SCHEMA, {**body, "expectedVersion": 12345678901234567890})


@pytest.mark.parametrize("body, message", [
    ('{"operation": "read", "id": "a", "item": {}}', "body.item: must not be present"),
    ('{"operation": "update", "id": "a", "item": {}}', "at least 1 properties"),
    ('{"operation": "create", "id": "a"}', "missing required property 'item'"),
    ('{"operation": "put", "id": "a", "item": {"version": 1}}', "must not contain 'id' or"),
    ('{"operation": "drop", "id": "a"}', 'body.operation: must be one of "create"'),
    ('{"operation": "put", "id": "", "item": {}}', "body.id: must be at least 1 characters"),
    ('["put"]', "body: must be of type object"),
    ("{'single': 'quotes'}", "body is not valid JSON"),
])
def test_invalid_commands_say_what_is_wrong(body: str, message: str) -> None:
    with pytest.raises(InvalidCommandError) as raised:
        parse_command(body)
    assert message in str(raised.value)


def test_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(SchemaError, match="pattern"):
        check_schema({"properties": {"id": {"type": "string", "pattern": "^a"}}})
