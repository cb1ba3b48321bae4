"""The OpenAPI paths and schemas of the read API (app.py's routes): the response shapes are what
chalicelib/reads.py and outcomes.py return, which exist nowhere else as a schema."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.reads import MAX_PAGE_SIZE
from scripts.openapi_schema import json_content, ref

# -- the read API (app.py) --------------------------------------------------------------------
_CHALICE_ERROR = {"type": "object", "required": ["Code", "Message"],
                  "properties": {"Code": {"type": "string"}, "Message": {"type": "string"}}}
_ITEM = {"type": "object", "required": ["id", "version"], "additionalProperties": True,
         "properties": {"id": {"type": "string"}, "version": {"type": "integer", "minimum": 1}}}
_OUTCOME = {
    "type": "object", "required": ["requestId", "status", "operation", "id"],
    "additionalProperties": False,
    "properties": {
        "requestId": {"type": "string"},
        "status": {"type": "string", "enum": ["applied", "rejected"]},
        "operation": {"type": "string", "nullable": True},
        "id": {"type": "string", "nullable": True},
        "reason": {"type": "string"},
        "found": {"type": "boolean"},
        "item": {"type": "object", "nullable": True, "additionalProperties": True},
        "itemTooLarge": {"type": "boolean"},
        "requestTimeEpoch": {"type": "integer", "description": "when API Gateway received the "
                             "request (epoch ms): the order requests are applied in"},
        "handledAt": {"type": "integer", "description": "when the consumer recorded this "
                      "outcome (epoch ms)"},
    },
}
_PENDING = {"type": "object", "required": ["requestId", "status", "message"],
            "additionalProperties": False,
            "properties": {"requestId": {"type": "string"},
                           "status": {"type": "string", "enum": ["pending"]},
                           "message": {"type": "string"}}}
_PAGE = {"type": "object", "required": ["items"], "additionalProperties": False,
         "properties": {"items": {"type": "array", "items": ref("Item")},
                        "cursor": {"type": "string"}}}
# An Item (a truncated event's image holds only its id and version, which is one too).
_IMAGE = {"allOf": [ref("Item")], "nullable": True}
_CHANGE = {"type": "object", "additionalProperties": False,
           "required": ["id", "version", "change", "requestId", "requestTimeEpoch", "old", "new"],
           "properties": {
               "id": {"type": "string"}, "version": {"type": "integer"},
               "change": {"type": "string", "enum": ["created", "updated", "deleted"]},
               "requestId": {"type": "string", "nullable": True},
               "requestTimeEpoch": {"type": "integer", "nullable": True},
               "old": _IMAGE, "new": _IMAGE,
               "truncated": {"type": "boolean", "description": "the item was too large for "
                             "the bus: old and new hold only id and version"},
               "item": {"type": "string", "description": "a truncated event's GET path"}}}
_HISTORY = {"type": "object", "required": ["changes"], "additionalProperties": False,
            "properties": {"changes": {"type": "array", "items": ref("Change")},
                           "cursor": {"type": "string"}}}
READ_SCHEMAS = {"Item": _ITEM, "ItemPage": _PAGE, "Outcome": _OUTCOME, "Pending": _PENDING,
                "Change": _CHANGE, "History": _HISTORY, "ChaliceError": _CHALICE_ERROR}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": json_content(ref(schema))}


# One entry per (path, method) of app.py; app.py's route parameter names are used as they are.
READ_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("/items/{item_id}", "GET"): {
        "operationId": "getItem", "summary": "One item, as last applied",
        "parameters": [_path_param("item_id", "The item's id, percent-encoded "
                                              "(encodeURIComponent)")],
        "responses": {"200": _answer("The item: its attributes, id and version", "Item"),
                      "404": _answer("No such item, or it was deleted", "ChaliceError")},
    },
    ("/items", "GET"): {
        "operationId": "listItems", "summary": "One page of live items",
        "parameters": [
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}},
            {"name": "cursor", "in": "query", "required": False,
             "description": "The previous page's cursor",
             "schema": {"type": "string"}},
        ],
        "responses": {"200": _answer("A page; no cursor on the last one", "ItemPage"),
                      "400": _answer("limit out of range, or a cursor this API did not return",
                                     "ChaliceError")},
    },
    ("/items/{item_id}/history", "GET"): {
        "operationId": "getItemHistory", "summary": "An item's changes, oldest first",
        "parameters": [
            _path_param("item_id", "The item's id, percent-encoded (encodeURIComponent)"),
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}},
            {"name": "cursor", "in": "query", "required": False,
             "description": "The previous page's cursor", "schema": {"type": "string"}},
        ],
        "responses": {"200": _answer("A page of changes (none for an item never written); "
                                     "no cursor on the last one", "History"),
                      "400": _answer("limit out of range, or a cursor this API did not return",
                                     "ChaliceError")},
    },
    ("/requests/{request_id}", "GET"): {
        "operationId": "getOutcome", "summary": "What became of a POST /SQSManager request",
        "parameters": [_path_param("request_id", "requestId from the 202 answer")],
        "responses": {"200": _answer("Applied or rejected (with a reason)", "Outcome"),
                      "404": _answer("Still queued, unknown or expired", "Pending")},
    },
}


def read_paths(routes: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """The read API's paths; `routes` maps app.py's paths to their methods (`app.routes`)."""
    paths: dict[str, Any] = {}
    for path, methods in routes.items():
        if path.startswith("/debug/"):
            continue  # the `local` stage's debugging route, never deployed
        for method in methods:
            operation = READ_OPERATIONS.get((path, method.upper()))
            if operation is None:
                raise ValueError(f"{method} {path} is in app.py but not described in "
                                 f"scripts/openapi_read.py")
            # IAM (SigV4) on AWS unless the stage opts out: API Gateway answers 403 then.
            answers = {**operation["responses"],
                       "403": _answer("Not signed or not allowed (AWS, READ_API_AUTH=iam)",
                                      "ErrorMessage")}
            paths.setdefault(path, {})[method.lower()] = {
                **operation, "responses": answers,
                "security": [{"SigV4": []}, {}],  # unsigned only where READ_API_AUTH=none
            }
    return paths
