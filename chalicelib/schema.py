"""A small JSON Schema (draft-04) validator for chalicelib/command.schema.json.

Lambda imports this on every cold start, so it is the standard library only: jsonschema would
add about 50 ms to a cold start (docs/benchmarks.md). It knows just the keywords in SUPPORTED and
refuses a schema that uses others, so the schema cannot silently outgrow it; a test checks that it
agrees with the jsonschema package (what the local gateway uses, like API Gateway's model
validation).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

ANNOTATIONS = {"$schema", "title", "description"}
SUPPORTED = ANNOTATIONS | {
    "type", "enum", "properties", "required", "additionalProperties", "minLength", "maxLength",
    "minimum", "minProperties", "maxProperties", "not", "anyOf", "oneOf",
}

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # Draft-04: 1.0 is a number, not an integer. Booleans are neither.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float | Decimal) and not isinstance(v, bool),
}

COMMAND_SCHEMA_PATH = Path(__file__).with_name("command.schema.json")


class SchemaError(ValueError):
    """The schema itself uses something this validator does not implement."""


def check_schema(schema: Schema) -> None:
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise SchemaError(f"unsupported JSON Schema keywords: {sorted(unknown)}")
    for child in schema.get("properties", {}).values():
        check_schema(child)
    for key in ("anyOf", "oneOf"):
        for child in schema.get(key, []):
            check_schema(child)
    if "not" in schema:
        check_schema(schema["not"])


def load_schema(path: Path = COMMAND_SCHEMA_PATH) -> Schema:
    schema: Schema = json.loads(path.read_text(encoding="utf-8"))
    check_schema(schema)
    return schema


def errors(schema: Schema, value: Any, path: str = "body") -> list[str]:
    """Every way value breaks schema, as readable sentences; empty when it is valid."""
    found: list[str] = []
    expected = schema.get("type")
    if expected is not None and not _TYPES[expected](value):
        return [f"{path}: must be of type {expected}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(option) for option in schema["enum"])
        found.append(f"{path}{_ENUM}{allowed}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append(f"{path}: must be at least {schema['minLength']} characters long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(f"{path}: must be at most {schema['maxLength']} characters long")
    if _TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        found.append(f"{path}: must be at least {schema['minimum']}")
    if isinstance(value, dict):
        found.extend(_object_errors(schema, value, path))
    if "not" in schema and not errors(schema["not"], value, path):
        found.append(f"{path}: " + _describe_not(schema["not"]))
    if "anyOf" in schema:
        branches = [errors(branch, value, path) for branch in schema["anyOf"]]
        if all(branches):
            shortest: list[str] = min(branches, key=len)
            found.extend(shortest)
    if "oneOf" in schema and not found:
        branches = [errors(branch, value, path) for branch in schema["oneOf"]]
        passing = sum(1 for branch in branches if not branch)
        if passing == 0:
            # Say what to fix in the branch meant (the one whose enums match, as a discriminator
            # would), better than "matches none of the allowed forms".
            closest: list[str] = min(branches, key=_closeness)
            found.extend(closest)
        elif passing > 1:
            found.append(f"{path}: matches more than one of the allowed forms")
    return found


_ENUM = ": must be one of "


def _closeness(branch_errors: list[str]) -> tuple[bool, int]:
    return any(_ENUM in message for message in branch_errors), len(branch_errors)


def _object_errors(schema: Schema, value: dict[str, Any], path: str) -> list[str]:
    found = [f"{path}: missing required property {name!r}"
             for name in schema.get("required", []) if name not in value]
    if len(value) < schema.get("minProperties", 0):
        found.append(f"{path}: must have at least {schema['minProperties']} properties")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        found.append(f"{path}: must have at most {schema['maxProperties']} properties")
    properties = schema.get("properties", {})
    if schema.get("additionalProperties", True) is False:
        found.extend(f"{path}: property {name!r} is not allowed"
                     for name in value if name not in properties)
    for name, child in properties.items():
        if name in value:
            found.extend(errors(child, value[name], f"{path}.{name}"))
    return found


def _describe_not(forbidden: Schema) -> str:
    if not forbidden:
        return "must not be present here"
    required = [name for branch in forbidden.get("anyOf", [forbidden])
                for name in branch.get("required", [])]
    if required:
        return "must not contain " + " or ".join(repr(name) for name in required)
    return "must not match " + json.dumps(forbidden)
