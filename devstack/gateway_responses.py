"""What the local gateway answers to POST /SQSManager: the integration response chosen by SQS's
status, or a gateway response of a type, each rendered from infra/extension.yaml's templates
with the headers API Gateway adds."""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.infra import GatewayResponse, GatewaySpec
from devstack.request_ids import client_request_id
from devstack.vtl import override_status, render

LOG = logging.getLogger("devstack.gateway")  # the gateway's log lines, whichever part writes them


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def sqs_answer_as_json(text: str) -> Any:
    """SQS answers API Gateway in JSON; moto answers in XML: convert to the same JSON shape."""
    stripped = text.strip()
    if not stripped.startswith("<"):
        return json.loads(stripped) if stripped else {}
    root = ET.fromstring(stripped)

    def convert(element: ET.Element) -> Any:
        children = list(element)
        if not children:
            return element.text
        return {_local_name(child.tag): convert(child) for child in children}

    if _local_name(root.tag) == "ErrorResponse":
        return convert(root)  # {"Error": {...}, "RequestId": ...} as SQS's JSON errors
    return {_local_name(root.tag): convert(root)}


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def integration_response(spec: GatewaySpec, context: dict[str, Any], status: int,
                         answer: str) -> HttpResult:
    """SQS's answer mapped through the integration response its status selects."""
    request_id = client_request_id(context["extendedRequestId"])
    chosen = None
    for candidate in spec.integration_responses:
        pattern = candidate.selection_pattern
        if pattern and re.fullmatch(pattern, str(status)):
            chosen = candidate
            break
        if not pattern and chosen is None:
            chosen = candidate  # the default response, unless a pattern matches
    if chosen is None:
        LOG.error("[%s] rejected: no integration response for SQS status %d", request_id,
                  status)
        return gateway_error(spec, context, "DEFAULT_5XX", "Internal server error")
    try:
        document = json.dumps(sqs_answer_as_json(answer))
    except (ET.ParseError, ValueError):
        document = json.dumps({"raw": answer})
    template = chosen.templates.get("application/json") or next(
        iter(chosen.templates.values()), None)
    output, context = (render(template, document, context) if template is not None
                       else (document, context))
    final = override_status(context, chosen.status_code)
    if 200 <= status < 300:
        message_id = json.loads(document).get("SendMessageResponse", {}).get(
            "SendMessageResult", {}).get("MessageId")
        LOG.info("[%s] enqueued messageId=%s -> %d", request_id, message_id, final)
    else:
        LOG.warning("[%s] rejected: SQS answered %d (%s) -> %d", request_id, status,
                    _sqs_error(document), final)
    headers = {"Content-Type": "application/json", **chosen.headers}
    return HttpResult(final, output.encode("utf-8"), _with_context_headers(context, headers))


def gateway_error(spec: GatewaySpec, context: dict[str, Any], response_type: str,
                  message: str, validation: str = "") -> HttpResult:
    """The gateway response of `response_type`, as API Gateway answers before the integration."""
    response: GatewayResponse = spec.gateway_response(response_type)
    context["error"] = {
        "message": message, "messageString": json.dumps(message),
        "responseType": response_type,
        # Escaped so that a template may embed it in a JSON string, as AWS's value allows.
        "validationErrorString": json.dumps(validation)[1:-1] if validation else "",
    }
    template = response.templates.get("application/json") or next(
        iter(response.templates.values()), '{"message":$context.error.messageString}')
    output = substitute(template, context)
    status = response.status_code
    LOG.warning("[%s] rejected at the gateway: %s %s -> %d",
                client_request_id(context["extendedRequestId"]), response_type,
                validation or message, status)
    headers = {"Content-Type": "application/json", **response.headers}
    return HttpResult(status, output.encode("utf-8"), _with_context_headers(context, headers))


def _with_context_headers(context: Mapping[str, Any], headers: dict[str, str]) -> dict[str, str]:
    # As API Gateway: $context.requestId and $context.extendedRequestId, unchanged.
    headers["x-amzn-RequestId"] = context["requestId"]
    headers["x-amz-apigw-id"] = context["extendedRequestId"]
    overrides = (context.get("responseOverride") or {}).get("header") or {}
    headers.update({str(k): str(v) for k, v in overrides.items()})
    return headers


_VARIABLE = re.compile(r"\$(?:\{([A-Za-z][\w.]*)\}|([A-Za-z][\w]*(?:\.[A-Za-z_][\w]*)*))")


def substitute(template: str, context: Mapping[str, Any]) -> str:
    """Gateway response templates: plain `$context.x.y` substitution, no VTL (as on AWS)."""

    def value(match: re.Match[str]) -> str:
        path = (match.group(1) or match.group(2)).split(".")
        if path[0] != "context":
            return ""
        current: Any = context
        for part in path[1:]:
            current = current.get(part) if isinstance(current, Mapping) else None
        return "" if current is None or isinstance(current, Mapping) else str(current)

    return _VARIABLE.sub(value, template)


def _sqs_error(document: str) -> str:
    answer = json.loads(document)
    error = answer.get("Error") or (answer.get("ErrorResponse") or {}).get("Error") or {}
    return f"{error.get('Code', '?')}: {error.get('Message', '')}"
