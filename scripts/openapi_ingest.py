"""The OpenAPI operation of POST /SQSManager, read from infra/extension.yaml (its method
responses and models, the gateway responses, the key and IAM settings) and the command schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack.infra import MethodAuth
from scripts.openapi_schema import json_content, ref, to_openapi_schema

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
                                  "content": json_content(ref(model["Name"]))}
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
                                  "content": json_content(ref(error_name))}
    operation: dict[str, Any] = {
        "operationId": "sendCommand",
        "summary": "Queue one command (API Gateway -> SQS, no Lambda in the request path)",
        "requestBody": {"required": True, "content": json_content(ref("Command"))},
        "responses": dict(sorted(responses.items())),
    }
    if security:
        operation["security"] = security
    return path, operation, schemas
