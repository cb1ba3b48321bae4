"""infra/extension.yaml's own mapping templates, rendered with API Gateway's semantics (no I/O)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

import pytest

from devstack.gateway import substitute
from devstack.infra import GatewaySpec, InfraTemplate, IntegrationResponse
from devstack.vtl import new_context, override_status, render

AWKWARD_BODY = ('{"operation": "create", "id": "a&b=c?d#e", "item": {"t": "& + % = ? # ü 😀 '
                '\\" \' \\\\ \\n", "n": 0.1, "big": 12345678901234567890}}')


@pytest.fixture(scope="module")
def spec() -> GatewaySpec:
    return InfraTemplate().gateway_spec()


def response_for(spec: GatewaySpec, status: int) -> IntegrationResponse:

    default = None
    for response in spec.integration_responses:
        pattern = response.selection_pattern
        if pattern and re.fullmatch(pattern, str(status)):
            return response
        if not pattern and default is None:
            default = response
    assert default is not None
    return default


def render_response(spec: GatewaySpec, status: int, answer: Any) -> tuple[int, Any]:
    response = response_for(spec, status)
    output, context = render(response.templates["application/json"], json.dumps(answer),
                             new_context(requestId="req-1"))
    return override_status(context, response.status_code), json.loads(output)


def test_spec_is_read_from_infra(spec: GatewaySpec) -> None:
    assert spec.resource_path == "/SQSManager"
    assert spec.http_method == "POST"
    assert list(spec.request_templates) == ["application/json"]
    assert spec.model_schema["title"] == "SQSManagerCommand"


def test_request_template_sends_the_body_exactly(spec: GatewaySpec) -> None:
    context = new_context(requestId="11111111-2222-4333-8444-5555555555ab",
                          requestTimeEpoch=1700000000123)
    form, _ = render(spec.request_templates["application/json"], AWKWARD_BODY, context)
    fields = parse_qs(form.strip(), keep_blank_values=True, strict_parsing=True)
    assert fields["Action"] == ["SendMessage"]
    assert fields["MessageBody"] == [AWKWARD_BODY]
    attributes = {fields[f"MessageAttribute.{n}.Name"][0]: (
        fields[f"MessageAttribute.{n}.Value.DataType"][0],
        fields[f"MessageAttribute.{n}.Value.StringValue"][0]) for n in (1, 2)}
    assert attributes == {"requestId": ("String", "11111111-2222-4333-8444-5555555555ab"),
                          "requestTimeEpoch": ("Number", "1700000000123")}


def test_success_is_202_with_request_and_message_ids(spec: GatewaySpec) -> None:
    answer = {"SendMessageResponse": {"SendMessageResult": {"MessageId": "m-1"},
                                      "ResponseMetadata": {"RequestId": "sqs-1"}}}
    assert render_response(spec, 200, answer) == (202, {"requestId": "req-1",
                                                        "messageId": "m-1"})


def sqs_error(message: str, code: str = "InvalidParameterValue") -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": "r"}


def test_oversized_message_is_413(spec: GatewaySpec) -> None:
    message = ("One or more parameters are invalid. Reason: Message must be shorter than "
               "1048576 bytes.")
    assert render_response(spec, 400, sqs_error(message)) == (413, {"message": message})


@pytest.mark.parametrize("message", ["plain", "it's \"quoted\" \\ / & < ü 😀", ""])
@pytest.mark.parametrize("code", ["InvalidParameterValue", "InvalidMessageContents",
                                  "AWS.SimpleQueueService.InvalidParameterValue"])
def test_sqs_errors_caused_by_the_request_are_400_json(spec: GatewaySpec, message: str,
                                                       code: str) -> None:
    status, body = render_response(spec, 400, sqs_error(message, code))
    assert status == 400
    assert body == {"message": message or "request rejected by the queue"}


@pytest.mark.parametrize("status, code", [
    (403, "AccessDenied"), (400, "AWS.SimpleQueueService.NonExistentQueue"),
    (400, "KMS.DisabledException"), (403, "InvalidClientTokenId")])
def test_sqs_errors_that_are_ours_are_500_so_clients_retry(spec: GatewaySpec, status: int,
                                                           code: str) -> None:
    answered, body = render_response(spec, status, sqs_error("denied", code))
    assert answered == 500
    assert code in body["message"] and "retry" in body["message"]


def test_sqs_server_errors_are_503(spec: GatewaySpec) -> None:
    assert render_response(spec, 500, sqs_error("oops", "InternalError"))[0] == 503


def test_gateway_responses_are_plain_substitution(spec: GatewaySpec) -> None:
    bad = spec.gateway_response("BAD_REQUEST_BODY")
    assert bad.status_code == 400
    context = new_context(requestId="r", error={
        "message": "Invalid request body", "messageString": '"Invalid request body"',
        "validationErrorString": json.dumps("[\"id\" is required]")[1:-1]})
    rendered = json.loads(substitute(bad.templates["application/json"], context))
    assert "[\"id\" is required]" in rendered["message"]
    assert spec.gateway_response("UNSUPPORTED_MEDIA_TYPE").status_code == 415
    default = spec.gateway_response("DEFAULT_4XX").templates["application/json"]
    assert json.loads(substitute(default, context)) == {"message": "Invalid request body"}


def test_substitute_leaves_no_vtl_evaluation() -> None:
    context = new_context(requestId="r")
    assert substitute("#if(x)$context.requestId $context.nothing ${context.requestId}", context) \
        == "#if(x)r  r"


def test_an_sqs_error_without_a_code_is_ours(spec: GatewaySpec) -> None:
    status, body = render_response(spec, 400, {})
    assert status == 500 and "no error code" in body["message"]
