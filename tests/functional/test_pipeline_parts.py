"""The local pipeline's parts against moto over HTTP: gateway ingest, poller semantics, fault proxy.

The handler here is a stub, so these pin down what the pipeline does (what API Gateway and
Lambda's event source mapping do), independently of the consumer in chalicelib/.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.faults import SERVER_ERROR, THROTTLE, Fault, FaultProxy
from devstack.gateway_responses import integration_response, sqs_answer_as_json
from devstack.infra import InfraTemplate
from devstack.ingest import Ingest
from devstack.lambda_events import lambda_record
from devstack.poller import SqsPoller
from devstack.resources import Resources, queue_depth
from tests.bad_requests import BAD_REQUESTS
from tests.conftest import REGION, with_few_receives

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


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"], MessageAttributeNames=["All"])
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


# --- gateway --------------------------------------------------------------------------------
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


# --- poller ---------------------------------------------------------------------------------
class StubHandler:
    def __init__(self, fail: set[str] | None = None, raise_error: bool = False) -> None:
        self.fail = fail or set()
        self.raise_error = raise_error
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        if self.raise_error:
            raise RuntimeError("boom")
        failed = [r["messageId"] for r in event["Records"] if r["body"] in self.fail]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def poller_for(resources: Resources, sqs: Any, handler: StubHandler, honour: bool = True,
               ) -> SqsPoller:
    return SqsPoller(sqs, resources.queue_url, resources.queue_arn, handler, REGION,
                     batch_size=10, batching_window=0, honour_batch_item_failures=honour,
                     visibility_timeout=1, max_receive_count=resources.max_receive_count)


def send_bodies(sqs: Any, resources: Resources, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body, MessageAttributes={
            "requestId": {"DataType": "String", "StringValue": f"req-{body}"}})


def test_event_is_lambda_shaped(sqs: Any, resources: Resources) -> None:
    send_bodies(sqs, resources, "one")
    handler = StubHandler()
    assert poller_for(resources, sqs, handler).poll_once() == 1
    [record] = handler.events[0]["Records"]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes",
                           "messageAttributes", "md5OfBody", "eventSource", "eventSourceARN",
                           "awsRegion"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == resources.queue_arn
    assert record["md5OfBody"] == hashlib.md5(b"one").hexdigest()
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"]["requestId"] == {
        "stringValue": "req-one", "stringListValues": [], "binaryListValues": [],
        "dataType": "String"}


def test_batch_item_failures_are_kept_the_rest_deleted(sqs: Any, resources: Resources) -> None:
    send_bodies(sqs, resources, "ok-1", "bad", "ok-2")
    poller = poller_for(resources, sqs, StubHandler(fail={"bad"}))
    assert poller.poll_once() == 3
    assert queue_depth(sqs, resources.queue_url) == 1
    again: list[dict[str, Any]] = []
    for _ in range(10):  # bounded: it is back once its (1 s) visibility timeout has passed
        again = poller.receive_batch()
        if again:
            break
    assert [message["Body"] for message in again] == ["bad"]
    again_message = again[0]
    assert again_message["Attributes"]["ApproximateReceiveCount"] == "2"


def test_without_report_batch_item_failures_a_normal_return_deletes_all(
        sqs: Any, resources: Resources) -> None:
    send_bodies(sqs, resources, "ok", "bad")
    poller = poller_for(resources, sqs, StubHandler(fail={"bad"}), honour=False)
    assert poller.poll_once() == 2
    assert queue_depth(sqs, resources.queue_url) == 0  # what Lambda does: the failure is lost


def test_a_raising_handler_deletes_nothing_then_dlq(sqs: Any, resources: Resources) -> None:
    resources = with_few_receives(sqs, resources)
    send_bodies(sqs, resources, "poison")
    poller = poller_for(resources, sqs, StubHandler(raise_error=True))
    receives = 0
    for _ in range(resources.max_receive_count * 4):
        receives += poller.poll_once()
        if queue_depth(sqs, resources.queue_url) == 0:
            break
    assert receives == resources.max_receive_count
    [dead] = receive_all(sqs, resources.dlq_url)
    assert dead["Body"] == "poison"


def test_lambda_record_keeps_binary_attributes() -> None:
    message = {"MessageId": "m", "ReceiptHandle": "h", "Body": "b", "MessageAttributes": {
        "bin": {"DataType": "Binary", "BinaryValue": b"\x00"}}}
    record = lambda_record(message, "arn", REGION)
    assert record["messageAttributes"]["bin"]["binaryValue"] == b"\x00"
    assert record["messageAttributes"]["bin"]["stringValue"] is None


# --- fault proxy ----------------------------------------------------------------------------
def test_fault_proxy_throttles_n_times_then_forwards(endpoint_url: str,
                                                     resources: Resources) -> None:
    with FaultProxy(endpoint_url) as proxy:
        fault = proxy.add(Fault("MARKER", THROTTLE, times=2))
        always = proxy.add(Fault("DOOMED", SERVER_ERROR, times=None))
        dynamodb = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                                config=Config(retries={"mode": "standard",
                                                          "total_max_attempts": 1}))
        item = {"pk": {"S": "MARKER"}}
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                dynamodb.put_item(TableName=resources.table_name, Item=item)
            assert caught.value.response["Error"]["Code"] == (
                "ProvisionedThroughputExceededException")
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        dynamodb.put_item(TableName=resources.table_name, Item=item)  # third time: forwarded
        assert dynamodb.get_item(TableName=resources.table_name, Key=item)["Item"] == item
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                dynamodb.put_item(TableName=resources.table_name, Item={"pk": {"S": "DOOMED"}})
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert fault.injected == 2 and always.injected == 3
