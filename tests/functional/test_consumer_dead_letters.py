"""The consumer and the dead-letter queue: a message that always fails ends there and nothing else
is affected; redriven requests apply once, keep their time and their identity."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from chalicelib import Stamp
from chalicelib.commands import record_stamp
from devstack.faults import Fault, FaultProxy
from devstack.lambda_events import lambda_record
from devstack.redrive import redrive
from devstack.resources import Resources
from tests.conftest import REGION, with_few_receives
from tests.consumer_harness import (
    depth,
    dlq_depth,
    drain,
    make_poller,
    outcome,
    send,
)

pytestmark = pytest.mark.both_stores  # moto and DynamoDB Local (tests/conftest.py)


@pytest.mark.queue_behaviour  # the DLQ is SQS's: once, on moto
@pytest.mark.parametrize("report", [True, False])
def test_a_message_that_always_fails_ends_in_the_dlq_and_nothing_else_is_affected(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any, report: bool) -> None:
    app, faults = load_app(report)
    resources = with_few_receives(sqs, resources)
    faults.add(Fault('"item#poison"', times=None))
    send(sqs, resources, '{"operation": "put", "id": "poison", "item": {}}', "r-poison")
    send(sqs, resources, '{"operation": "put", "id": "fine", "item": {}}', "r-fine")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=report)
    receives = 0
    for _ in range(2 * resources.max_receive_count):  # bounded: a poll waits at most ~1 s
        receives += poller.poll_once()  # like Lambda, the poller catches handler errors
        if dlq_depth(sqs, resources):
            break
    assert receives == resources.max_receive_count + 1  # every delivery of poison, 1 of fine
    assert outcome(app, "r-fine")["status"] == "applied"
    dead = sqs.receive_message(QueueUrl=resources.dlq_url, MaxNumberOfMessages=10,
                               MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["MessageAttributes"]["requestId"]["StringValue"] for m in dead] == ["r-poison"]
    assert depth(poller) == 0


@pytest.mark.queue_behaviour  # the DLQ is SQS's: once, on moto
def test_requests_redriven_from_the_dlq_apply_once_and_keep_their_time(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    app, faults = load_app(True)
    with_few_receives(sqs, resources)
    faults.add(Fault('"old"', times=None))  # every write of the value "old" fails, for now
    send(sqs, resources, '{"operation": "put", "id": "x", "item": {"v": "old"}}', "r-old", 1000)
    send(sqs, resources, '{"operation": "put", "id": "y", "item": {"v": "old"}}', "r-y", 1500)
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    for _ in range(40):
        poller.poll_once()
        if dlq_depth(sqs, resources) == 2:
            break
    assert dlq_depth(sqs, resources) == 2
    faults.clear()  # the cause is fixed; meanwhile a newer write to x arrives
    send(sqs, resources, '{"operation": "put", "id": "x", "item": {"v": "new"}}', "r-new", 2000)
    drain(poller)
    assert redrive(sqs, resources.dlq_url, resources.queue_url) == 2
    assert redrive(sqs, resources.dlq_url, resources.queue_url) == 0
    drain(poller)
    assert outcome(app, "r-y")["status"] == "applied"
    assert app.store.get_item("y") == {"id": "y", "version": 1, "v": "old"}
    # x's older request kept its requestTimeEpoch through the DLQ: it does not win.
    assert "superseded" in outcome(app, "r-old")["reason"]
    assert app.store.get_item("x") == {"id": "x", "version": 1, "v": "new"}
    # A second copy of a redriven request has no second effect.
    send(sqs, resources, '{"operation": "put", "id": "y", "item": {"v": "old"}}', "r-y", 1500)
    drain(poller)
    assert app.store.get_item("y")["version"] == 1


def test_a_redriven_message_without_attributes_keeps_its_identity(
        resources: Resources, sqs: Any) -> None:
    """Sent straight to the queue, a request is known by messageId and SentTimestamp; a move
    changes both, so the redrive pins them as message attributes."""
    sqs.send_message(QueueUrl=resources.dlq_url, MessageBody='{"operation": "delete", "id": "r"}')
    original = sqs.receive_message(QueueUrl=resources.dlq_url, AttributeNames=["All"],
                                   VisibilityTimeout=0)["Messages"][0]
    assert redrive(sqs, resources.dlq_url, resources.queue_url) == 1
    moved = sqs.receive_message(QueueUrl=resources.queue_url, AttributeNames=["All"],
                                MessageAttributeNames=["All"])["Messages"][0]
    record = lambda_record(moved, resources.queue_arn, REGION)
    assert record_stamp(record) == Stamp(int(original["Attributes"]["SentTimestamp"]),
                                         original["MessageId"])
