"""The OpenAPI 3.0 description of the ingest and read APIs, generated from what defines them.

- `POST /SQSManager`: request body = chalicelib/command.schema.json; responses = the method's
  MethodResponses and their models, the gateway responses and the API key setting, all read from
  infra/extension.yaml.
- The read API: the paths and methods of app.py's Chalice routes (every route must be described
  here, or generation fails), the page size from chalicelib; the response shapes are what
  chalicelib/reads.py and outcomes.py return, which exist nowhere else as a schema.

    python -m scripts.openapi build/openapi.json     # or: GET /openapi.json on `make run`

JSON Schema draft-04 is converted to OpenAPI 3.0 schema objects (no `$schema`, no type arrays);
a keyword OpenAPI 3.0 cannot express fails the generation instead of being dropped silently.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chalicelib.reads import MAX_PAGE_SIZE
from devstack.infra import INGEST_AUTHORIZATION, InfraTemplate, MethodAuth
from scripts.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "extension.yaml"
SCHEMA = ROOT / "chalicelib" / "command.schema.json"

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


def _json_content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# What a status means on POST /SQSManager; the status codes themselves come from infra.
_INGEST_MEANING = {
    202: "Accepted: the command is on the queue. Its outcome: GET /requests/{requestId}.",
    400: "The body is not JSON matching the schema (or SQS refused its characters); not queued.",
    403: "Not signed, signed wrongly or not allowed (IngestAuthorization AWS_IAM), or a missing "
         "or unknown x-api-key (API_KEY); not queued.",
    413: "Over SQS's 1 MiB message size or API Gateway's 10 MB payload limit; not queued.",
    415: "Content-Type is not application/json; not queued.",
    429: "Throttled by the stage or usage plan; not queued, retry later.",
    500: "The gateway or the queue failed; not queued, retry.",
    503: "The queue is unavailable; not queued, retry.",
}
# Gateway responses API Gateway itself answers, by type (AWS "Gateway response types").
_GATEWAY_STATUS = {"UNSUPPORTED_MEDIA_TYPE": 415, "REQUEST_TOO_LARGE": 413,
                   "BAD_REQUEST_BODY": 400, "DEFAULT_5XX": 500}


def ingest_security(auth: MethodAuth | None) -> list[dict[str, list[str]]]:
    """The method's security requirement: SigV4 and/or the key (both in one object: AND).
    None: an open local gateway (`make run` without AUTH), where sending them is optional."""
    if auth is None:
        return [{"SigV4": [], "ApiKey": []}, {}]
    required: dict[str, list[str]] = {}
    if auth.iam:
        required["SigV4"] = []
    if auth.api_key:
        required["ApiKey"] = []
    return [required] if required else []


def ingest_operation(template: Mapping[str, Any], command_schema: Mapping[str, Any],
                     auth: MethodAuth | None, method_id: str = "SendMessageMethod"
                     ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(path, operation, component schemas) of the ingest method in infra/extension.yaml, as a
    stage with `auth` serves it."""
    resources: Mapping[str, Any] = template["Resources"]
    method = resources[method_id]["Properties"]
    path = "/" + resources[method["ResourceId"]["Ref"]]["Properties"]["PathPart"]
    schemas: dict[str, Any] = {"Command": to_openapi_schema(command_schema)}
    responses: dict[str, Any] = {}
    for response in method["MethodResponses"]:
        status = int(response["StatusCode"])
        model_id = response["ResponseModels"]["application/json"]["Ref"]
        model = resources[model_id]["Properties"]
        schemas[model["Name"]] = to_openapi_schema(model["Schema"])
        responses[str(status)] = {"description": _INGEST_MEANING[status],
                                  "content": _json_content(_ref(model["Name"]))}
    error_name = resources["ErrorModel"]["Properties"]["Name"]
    # Answered by API Gateway before the integration, with the ErrorMessage shape.
    statuses = {int(r["Properties"].get("StatusCode", _GATEWAY_STATUS.get(
        r["Properties"]["ResponseType"], 0))) for r in resources.values()
        if r.get("Type") == "AWS::ApiGateway::GatewayResponse"}
    statuses |= {_GATEWAY_STATUS["REQUEST_TOO_LARGE"]}  # API Gateway's default one
    security = ingest_security(auth)
    if security:
        statuses.add(403)
    if any(r.get("Type") == "AWS::ApiGateway::Stage" and r["Properties"].get("MethodSettings")
           for r in resources.values()):
        statuses.add(429)
    for status in sorted(s for s in statuses if s and str(s) not in responses):
        responses[str(status)] = {"description": _INGEST_MEANING[status],
                                  "content": _json_content(_ref(error_name))}
    operation: dict[str, Any] = {
        "operationId": "sendCommand",
        "summary": "Queue one command (API Gateway -> SQS, no Lambda in the request path)",
        "requestBody": {"required": True, "content": _json_content(_ref("Command"))},
        "responses": dict(sorted(responses.items())),
    }
    if security:
        operation["security"] = security
    return path, operation, schemas


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
         "properties": {"items": {"type": "array", "items": _ref("Item")},
                        "cursor": {"type": "string"}}}
# An Item (a truncated event's image holds only its id and version, which is one too).
_IMAGE = {"allOf": [_ref("Item")], "nullable": True}
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
            "properties": {"changes": {"type": "array", "items": _ref("Change")},
                           "cursor": {"type": "string"}}}
READ_SCHEMAS = {"Item": _ITEM, "ItemPage": _PAGE, "Outcome": _OUTCOME, "Pending": _PENDING,
                "Change": _CHANGE, "History": _HISTORY, "ChaliceError": _CHALICE_ERROR}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "minLength": 1}}


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": _json_content(_ref(schema))}


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
                                 f"scripts/openapi.py")
            # IAM (SigV4) on AWS unless the stage opts out: API Gateway answers 403 then.
            answers = {**operation["responses"],
                       "403": _answer("Not signed or not allowed (AWS, READ_API_AUTH=iam)",
                                      "ErrorMessage")}
            paths.setdefault(path, {})[method.lower()] = {
                **operation, "responses": answers,
                "security": [{"SigV4": []}, {}],  # unsigned only where READ_API_AUTH=none
            }
    return paths


def build(routes: Mapping[str, Iterable[str]], ingest_auth: MethodAuth | None,
          template_path: Path = TEMPLATE, schema_path: Path = SCHEMA) -> dict[str, Any]:
    """The document of a stage whose ingest method requires `ingest_auth` (InfraTemplate's
    method_auth for its IngestAuthorization; None: an open local gateway)."""
    template = load_template(template_path)
    command_schema = json.loads(schema_path.read_text(encoding="utf-8"))
    ingest_path, ingest, schemas = ingest_operation(template, command_schema, ingest_auth)
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "sqs-manager",
            "version": "1",
            "description": (
                "Generated by scripts/openapi.py from chalicelib/command.schema.json, "
                "infra/extension.yaml and app.py. On AWS the ingest API (the stack's IngestUrl "
                "output, stage prefix included) and the read API (Chalice's EndpointURL) are "
                "two REST APIs; locally one gateway serves both."),
        },
        "servers": [{"url": "/", "description": "where this document was served from"}],
        "paths": {ingest_path: {"post": ingest}, **read_paths(routes)},
        "components": {
            "schemas": {**schemas, **READ_SCHEMAS},
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                # How API Gateway exports IAM authorization (AWS "x-amazon-apigateway-authtype").
                "SigV4": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "x-amazon-apigateway-authtype": "awsSigv4"},
            },
        },
    }
    return document


def app_routes() -> dict[str, list[str]]:
    """app.py's routes, imported as `chalice local` would (only the route table is read)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
    sys.path.insert(0, str(ROOT))
    from app import app  # app.py reads its settings at import: import it here, not at the top

    return {path: list(methods) for path, methods in app.routes.items()}


def validate(document: Mapping[str, Any]) -> None:
    """Raise unless `document` is valid OpenAPI 3.0 (openapi-spec-validator)."""
    from openapi_spec_validator import OpenAPIV30SpecValidator  # dev only

    OpenAPIV30SpecValidator(dict(document)).validate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", help="file to write (default: stdout)")
    parser.add_argument("--ingest-authorization", metavar="MODE",
                        help=f"the stack's {INGEST_AUTHORIZATION} (default: the template's)")
    args = parser.parse_args(argv)
    document = build(app_routes(), InfraTemplate(TEMPLATE).method_auth(args.ingest_authorization))
    validate(document)
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
