"""JSON Schema draft-04 as OpenAPI 3.0 schema objects: the conversion the generated document
needs (no `$schema`, no type arrays), refusing what 3.0 cannot express instead of dropping it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Draft-04 keywords with no OpenAPI 3.0 equivalent (OpenAPI 3.0.3, "Schema Object").
_UNSUPPORTED = {"patternProperties", "dependencies", "additionalItems", "const", "contains",
                "propertyNames", "if", "then", "else", "definitions", "$ref", "id", "$id"}
_DROPPED = {"$schema"}  # meta-data only


def to_openapi_schema(schema: Any) -> Any:
    """A draft-04 JSON Schema as an OpenAPI 3.0 Schema Object."""
    if isinstance(schema, list):
        return [to_openapi_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    unsupported = sorted(_UNSUPPORTED & set(schema))
    if unsupported:
        raise ValueError(f"OpenAPI 3.0 cannot express {unsupported}")
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if key in ("properties",):
            converted[key] = {name: to_openapi_schema(sub) for name, sub in value.items()}
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) != 1:
                raise ValueError(f"OpenAPI 3.0 has one type per schema, not {value}")
            converted["type"] = types[0]
            if "null" in value:
                converted["nullable"] = True
        else:
            converted[key] = to_openapi_schema(value)
    return converted


def json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}
