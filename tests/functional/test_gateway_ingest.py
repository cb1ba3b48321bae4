"""The local gateway's ingest against moto over HTTP: what API Gateway does with a POST
/SQSManager (the body byte for byte with the request's attributes, JSON errors, request ids, the
integration's headers and responses).

No consumer runs: these pin down what the pipeline does, independently of chalicelib/.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import urllib3

from devstack.gateway_responses import integration_response, sqs_answer_as_json
from devstack.infra import InfraTemplate
from devstack.ingest import Ingest
from devstack.resources import Resources
from tests.bad_requests import BAD_REQUESTS
from tests.conftest import REGION
from tests.pipeline_parts import receive_all

AWKWARD = ('{"operation": "create", "id": "a&b", "item": {"t": "& + % = ? # ü 😀 \\" \' \\\\ \\n", '
           '"n": 0.1, "big": 12345678901234567890}}')


@pytest.fixture
def ingest(resources: Resources) -> Ingest:
    return Ingest(InfraTemplate().gateway_spec(), resources.queue_url, REGION)


def post(ingest: Ingest, body: str | bytes, content_type: str = "application/json",
         **headers: str) -> Any:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    result = ingest.handle({"Content-Type": content_type, "Host": "localhost", **headers}, raw,
                           "/SQSManager")
    return result.status, json.loads(result.body), result.headers


def test_ingest_sends_the_body_byte_for_byte_with_request_attributes(ingest: Ingest, sqs: Any,
                                                                     resources: Resources) -> None:
    status, answer, headers = post(ingest, AWKWARD)
    assert status == 202
    assert set(answer) == {"requestId", "messageId"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}", answer["requestId"])  # extendedRequestId, URL-safe
    assert headers["x-amz-apigw-id"] == answer["requestId"] + "="  # URL-safe as generated
    [message] = receive_all(sqs, resources.queue_url)
    assert message["Body"] == AWKWARD
    assert message["MessageId"] == answer["messageId"]
    attributes = message["MessageAttributes"]
    assert attributes["requestId"] == {"StringValue": answer["requestId"], "DataType": "String"}
    assert attributes["requestTimeEpoch"]["DataType"] == "Number"
    assert len(attributes["requestTimeEpoch"]["StringValue"]) == 13  # milliseconds


def test_ingest_over_the_queue_limit_is_413_json(ingest: Ingest, resources: Resources) -> None:
    body = json.dumps({"operation": "create", "id": "big",
                       "item": {"blob": "x" * resources.maximum_message_size}})
    status, answer, _ = post(ingest, body)
    assert status == 413
    assert "shorter than" in answer["message"]


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_REQUESTS)
def test_ingest_rejects_at_the_gateway_with_json(ingest: Ingest, sqs: Any, resources: Resources,
                                                 body: str, content_type: str,
                                                 status: int) -> None:
    got, answer, headers = post(ingest, body, content_type)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert isinstance(answer["message"], str)
    assert receive_all(sqs, resources.queue_url) == []


CHOSEN = "0f8e6c1a-1d2b-4c3d-9e4f-a5b6c7d8e9f0"


def test_a_client_chosen_request_id_does_not_identify_the_request(
        resources: Resources, sqs: Any) -> None:
    # Base64 ids with "+", "/" and "=" (about a third of real ones hold "+" or "/").
    ids = itertools.cycle(["ab+/cd+/ef+/gh/=", "++//++//++//+/+="])
    ingest = Ingest(InfraTemplate().gateway_spec(), resources.queue_url, REGION,
                    extended_ids=lambda: next(ids))
    first = post(ingest, '{"operation": "delete", "id": "1"}', **{"x-amzn-RequestId": CHOSEN})
    second = post(ingest, '{"operation": "delete", "id": "2"}', **{"X-Amzn-RequestId": CHOSEN})
    assert [first[0], second[0]] == [202, 202]
    # API Gateway's $context.requestId is the client's UUID, returned in x-amzn-RequestId...
    assert first[2]["x-amzn-RequestId"] == second[2]["x-amzn-RequestId"] == CHOSEN
    # ...but the request is identified by extendedRequestId, made URL-safe.
    assert [first[1]["requestId"], second[1]["requestId"]] == ["ab-_cd-_ef-_gh_", "--__--__--__-_-"]
    assert [first[2]["x-amz-apigw-id"], second[2]["x-amz-apigw-id"]] == [
        "ab+/cd+/ef+/gh/=", "++//++//++//+/+="]
    sent = {m["MessageAttributes"]["requestId"]["StringValue"]: json.loads(m["Body"])["id"]
            for m in receive_all(sqs, resources.queue_url)}
    assert sent == {"ab-_cd-_ef-_gh_": "1", "--__--__--__-_-": "2"}


def test_a_request_id_header_that_is_no_uuid_is_ignored(ingest: Ingest) -> None:
    _, _, headers = post(ingest, '{"operation": "delete", "id": "1"}',
                         **{"x-amzn-RequestId": "not-a-uuid"})
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                        headers["x-amzn-RequestId"])


def test_sqs_gets_the_integrations_static_headers(ingest: Ingest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib3's pool sends every request, whether the gateway calls it or requests does.
    seen: list[dict[str, str]] = []
    original = urllib3.HTTPConnectionPool.urlopen

    def recording_urlopen(self: urllib3.HTTPConnectionPool, method: str, url: str,
                          **kwargs: Any) -> Any:
        seen.append(dict(kwargs["headers"]))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(urllib3.HTTPConnectionPool, "urlopen", recording_urlopen)
    assert post(ingest, '{"operation": "delete", "id": "1"}')[0] == 202
    [headers] = seen
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_lone_surrogate_escape_is_valid_json_so_it_is_accepted(ingest: Ingest, sqs: Any,
                                                                  resources: Resources) -> None:
    # JSON allows "\ud83d" (RFC 8259 section 8.2 leaves it to the receiver); API Gateway's
    # validator accepts it, and the consumer rejects the command with a reason.
    body = '{"operation": "put", "id": "x", "item": {"s": "\\ud83d"}}'
    assert post(ingest, body)[0] == 202
    [message] = receive_all(sqs, resources.queue_url)
    assert message["Body"] == body


def test_an_unexpected_failure_is_a_json_500(ingest: Ingest,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(form: str) -> tuple[int, str]:
        raise RuntimeError("bug")

    monkeypatch.setattr(ingest, "_send", broken)
    status, answer, headers = post(ingest, '{"operation": "delete", "id": "1"}')
    assert status == 500
    assert answer == {"message": "Internal server error"}
    assert headers["Content-Type"] == "application/json"


def test_content_type_parameters_are_ignored(ingest: Ingest) -> None:
    status, _, _ = post(ingest, '{"operation": "delete", "id": "1"}',
                        "application/json; charset=utf-8")
    assert status == 202


def test_ingest_maps_sqs_5xx_to_503() -> None:
    # Nothing listens on port 9 of loopback: SQS unreachable. API Gateway answers 500 then.
    ingest = Ingest(InfraTemplate().gateway_spec(), "http://127.0.0.1:9/queue-owner/q", REGION,
                    timeout=2)
    status, answer, _ = post(ingest, '{"operation": "delete", "id": "1"}')
    assert status == 500 and "message" in answer
    # A 5xx answer from SQS itself goes through the integration response: 503.
    result = integration_response(InfraTemplate().gateway_spec(), ok_context(), 500,
                                  "<ErrorResponse><Error><Code>X</Code>"
                                  "<Message>m</Message></Error></ErrorResponse>")
    assert result.status == 503
    assert json.loads(result.body) == {"message": "queue unavailable, retry"}


def ok_context() -> dict[str, Any]:
    from devstack.vtl import new_context
    return new_context(requestId="r", extendedRequestId="e+/=")


def test_sqs_xml_answers_become_sqs_json_shapes() -> None:
    sent = sqs_answer_as_json(
        '<SendMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">'
        "<SendMessageResult><MessageId>m-1</MessageId></SendMessageResult>"
        "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SendMessageResponse>")
    assert sent["SendMessageResponse"]["SendMessageResult"]["MessageId"] == "m-1"
    error = sqs_answer_as_json("<ErrorResponse><Error><Type>Sender</Type><Code>C</Code>"
                               "<Message>M</Message></Error><RequestId>r</RequestId>"
                               "</ErrorResponse>")
    assert error == {"Error": {"Type": "Sender", "Code": "C", "Message": "M"}, "RequestId": "r"}
