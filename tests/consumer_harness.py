"""Driving the SQS consumer (app.handle_messages) in the tests: real SQS messages from the emulator,
fed by the local poller with Lambda's semantics (tests/functional/conftest.py loads the app, its
DynamoDB traffic through devstack's fault proxy)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from chalicelib import OutcomeNotFoundError
from chalicelib.clients import MAX_ATTEMPTS
from devstack.lambda_events import lambda_record
from devstack.poller import SqsPoller
from devstack.resources import Resources, queue_depth
from tests.conftest import REGION

# Faults a message meets in one delivery, when it shares its batch with other items: the batch's
# one transaction (store.apply_together), then the message's own, each tried MAX_ATTEMPTS times.
DELIVERY = 2 * MAX_ATTEMPTS


def make_poller(app: ModuleType, resources: Resources, sqs: Any,
                honour_batch_item_failures: bool) -> SqsPoller:
    return SqsPoller(sqs, resources.queue_url, resources.queue_arn, app.handle_messages,
                     REGION, batch_size=10, honour_batch_item_failures=(
                         honour_batch_item_failures), visibility_timeout=1)


def send(sqs: Any, resources: Resources, body: str, request_id: str, epoch: int = 1000) -> None:
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body, MessageAttributes={
        "requestId": {"DataType": "String", "StringValue": request_id},
        "requestTimeEpoch": {"DataType": "Number", "StringValue": str(epoch)}})


def drain(poller: SqsPoller, rounds: int = 8) -> int:
    """Poll until the queue is empty (failed messages come back after the 1 s visibility)."""
    total = 0
    for _ in range(rounds):
        received = poller.poll_once()
        total += received
        if not received and not depth(poller):
            break
    return total


def depth(poller: SqsPoller) -> int:
    return queue_depth(poller.sqs, poller.queue_url)


def dlq_depth(sqs: Any, resources: Resources) -> int:
    return queue_depth(sqs, resources.dlq_url, in_flight=False)


def outcome(app: ModuleType, request_id: str) -> dict[str, Any]:
    result: dict[str, Any] = app.store.get_outcome(request_id)
    return result


def receive_records(poller: SqsPoller) -> list[dict[str, Any]]:
    messages = poller.receive_batch()
    return [lambda_record(m, poller.queue_arn, poller.region) for m in messages]


def has_outcome(app: ModuleType, request_id: str) -> bool:
    try:
        app.store.get_outcome(request_id)
    except OutcomeNotFoundError:
        return False
    return True
