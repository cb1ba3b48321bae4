"""Helpers of the tests of the local pipeline's parts against moto (test_gateway_ingest.py,
test_poller_semantics.py, test_poller_gathering.py): reading a queue's messages, a stub handler in
place of the consumer, and the messages sent to it."""

from __future__ import annotations

from typing import Any

from devstack.resources import Resources


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"], MessageAttributeNames=["All"])
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


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


def send_bodies(sqs: Any, resources: Resources, *bodies: str) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body, MessageAttributes={
            "requestId": {"DataType": "String", "StringValue": f"req-{body}"}})
