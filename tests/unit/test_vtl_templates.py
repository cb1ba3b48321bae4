"""infra/extension.yaml's own mapping templates, rendered with API Gateway's semantics (no I/O)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

import pytest

from devstack.gateway_responses import substitute
from devstack.infra import GatewaySpec, InfraTemplate, IntegrationResponse
from devstack.request_ids import client_request_id, new_extended_request_id
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


def render_response(spec: GatewaySpec, status: int, answer: Any,
                    extended_id: str = "req-1") -> tuple[int, Any]:
    response = response_for(spec, status)
    output, context = render(response.templates["application/json"], json.dumps(answer),
                             new_context(requestId="client-chosen", extendedRequestId=extended_id))
    return override_status(context, response.status_code), json.loads(output)


def test_spec_is_read_from_infra(spec: GatewaySpec) -> None:
    assert spec.resource_path == "/SQSManager"
    assert spec.http_method == "POST"
    assert list(spec.request_templates) == ["application/json"]
    assert spec.model_schema["title"] == "SQSManagerCommand"
    assert spec.request_headers == {"Content-Type": "application/x-www-form-urlencoded",
                                    "Accept": "application/json"}


def test_request_template_sends_the_body_exactly(spec: GatewaySpec) -> None:
    context = new_context(requestId="11111111-2222-4333-8444-5555555555ab",
                          extendedRequestId="D4VJDGZOoAMFRmQ=", requestTimeEpoch=1700000000123)
    form, _ = render(spec.request_templates["application/json"], AWKWARD_BODY, context)
    fields = parse_qs(form.strip(), keep_blank_values=True, strict_parsing=True)
    assert fields["Action"] == ["SendMessage"]
    assert fields["MessageBody"] == [AWKWARD_BODY]
    attributes = {fields[f"MessageAttribute.{n}.Name"][0]: (
        fields[f"MessageAttribute.{n}.Value.DataType"][0],
        fields[f"MessageAttribute.{n}.Value.StringValue"][0]) for n in (1, 2)}
    assert attributes == {"requestId": ("String", "D4VJDGZOoAMFRmQ"),
                          "requestTimeEpoch": ("Number", "1700000000123")}


def sent_request_id(spec: GatewaySpec, extended_id: str) -> str:
    context = new_context(requestId="11111111-2222-4333-8444-5555555555ab",
                          extendedRequestId=extended_id, requestTimeEpoch=1)
    form, _ = render(spec.request_templates["application/json"], '{"id": "x"}', context)
    fields = parse_qs(form.strip(), strict_parsing=True)
    assert fields["MessageAttribute.1.Name"] == ["requestId"]
    return fields["MessageAttribute.1.Value.StringValue"][0]


# extendedRequestId as AWS recorded it (URL-safe base64: "-", "_", one "="), and in standard
# base64 ("+", "/"), which the template would make URL-safe all the same.
EXTENDED_IDS = ["CzuJMEDMoAMF_MQ=", "S-D5rG9QFiAFnVg=", "__--__--__--__-=", "D4VJDGZOoAMFRmQ=",
                "a+b/c+d/ef+/+/g=", "AB/+CD==", "plain0123456789x"]


@pytest.mark.parametrize("extended_id", EXTENDED_IDS)
def test_request_id_is_the_url_safe_extended_request_id(spec: GatewaySpec,
                                                        extended_id: str) -> None:
    sent = sent_request_id(spec, extended_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", sent)
    assert sent == extended_id.replace("+", "-").replace("/", "_").rstrip("=")
    answer = {"SendMessageResponse": {"SendMessageResult": {"MessageId": "m-1"}}}
    # The 202 body names the very id the message carries; the client's requestId plays no part.
    assert render_response(spec, 200, answer, extended_id) == (
        202, {"requestId": sent, "messageId": "m-1"})
    assert client_request_id(extended_id) == sent  # the gateway's log lines use the same


def test_request_ids_stay_distinct(spec: GatewaySpec) -> None:
    generated = {new_extended_request_id() for _ in range(2000)}
    # AWS's shape: 16 characters of URL-safe base64 ending in "=" (both "-" and "_" occur).
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{15}=", value) for value in generated)
    assert any("-" in value for value in generated) and any("_" in value for value in generated)
    sent = {client_request_id(value) for value in generated}
    assert sent == {value[:-1] for value in generated}  # only the padding goes
    # Spot-check the template itself on generated ids, not only the gateway's copy.
    for value in sorted(generated)[:20]:
        assert sent_request_id(spec, value) == client_request_id(value)


def test_success_is_202_with_request_and_message_ids(spec: GatewaySpec) -> None:
    answer = {"SendMessageResponse": {"SendMessageResult": {"MessageId": "m-1"},
                                      "ResponseMetadata": {"RequestId": "sqs-1"}}}
    assert render_response(spec, 200, answer) == (202, {"requestId": "req-1",
                                                        "messageId": "m-1"})


def sqs_error(message: str, code: str = "InvalidParameterValue") -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message, "Type": "Sender"}, "RequestId": "r"}


def localstack_error(message: str, code: str = "InvalidParameterValue") -> dict[str, Any]:
    # LocalStack wraps SQS's JSON error in "ErrorResponse".
    return {"ErrorResponse": sqs_error(message, code)}


SHAPES = pytest.mark.parametrize("shape", [sqs_error, localstack_error],
                                 ids=["aws", "localstack"])
OVERSIZED = ("One or more parameters are invalid. Reason: Message must be shorter than "
             "1048576 bytes.")


@SHAPES
def test_oversized_message_is_413(spec: GatewaySpec, shape: Any) -> None:
    assert render_response(spec, 400, shape(OVERSIZED)) == (413, {"message": OVERSIZED})


@SHAPES
def test_either_error_shape_gives_400_500_and_503(spec: GatewaySpec, shape: Any) -> None:
    assert render_response(spec, 400, shape("bad chars", "InvalidMessageContents")) == (
        400, {"message": "bad chars"})
    status, body = render_response(spec, 403, shape("denied", "AccessDenied"))
    assert status == 500 and "(AccessDenied)" in body["message"]
    assert render_response(spec, 500, shape("oops", "InternalError")) == (
        503, {"message": "queue unavailable, retry"})


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
