"""The local poller against moto over HTTP, with a stub handler: what Lambda's event source mapping
does (the event's shape, partial batch failures, a raising handler, the DLQ), independently of the
consumer in chalicelib/.
"""

from __future__ import annotations

import hashlib
from typing import Any

from devstack.lambda_events import lambda_record
from devstack.poller import SqsPoller
from devstack.resources import Resources, queue_depth
from tests.conftest import REGION, with_few_receives
from tests.pipeline_parts import StubHandler, receive_all, send_bodies


def poller_for(resources: Resources, sqs: Any, handler: StubHandler, honour: bool = True,
               ) -> SqsPoller:
    return SqsPoller(sqs, resources.queue_url, resources.queue_arn, handler, REGION,
                     batch_size=10, batching_window=0, honour_batch_item_failures=honour,
                     visibility_timeout=1, max_receive_count=resources.max_receive_count)


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
