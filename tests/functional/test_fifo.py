"""FIFO mode through a real FIFO queue in the emulator (infra's QueueType=fifo), consumed by the
real handler via devstack's poller, with transient DynamoDB faults injected by the fault proxy.

What is claimed:
- a message group (an item) stops at its first failure: its later messages are not applied
  before it, while other groups go on (AWS's rule for FIFO partial batches);
- the in-order result holds for every sequence, conditions included (create, expectedVersion,
  update of a missing item): the item, its version and every outcome are those of applying each
  request once in the order it was sent, even when a delivery fails on the way.
moto holds back a group's later messages while earlier ones are in flight, as SQS does.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.clients import MAX_ATTEMPTS
from devstack.faults import Fault, FaultProxy
from devstack.lambda_events import lambda_record
from devstack.resources import Resources, ensure_resources
from tests.conftest import REGION
from tests.consumer_harness import drain, has_outcome, make_poller, outcome
from tests.functional.test_in_order import PROPERTY, Model, Request, sequences, stored, with_id

AppLoader = Callable[[bool], tuple[ModuleType, FaultProxy]]
# The consumer tests' fixtures (faults, load_app: tests/functional/conftest.py) take the FIFO
# `resources` below.


@pytest.fixture
def resources(endpoint_url: str, dynamodb_endpoint: str) -> Resources:
    """A fresh FIFO queue and DLQ (names ending in .fifo) and table, as the stack makes them
    with QueueType=fifo."""
    name = f"fifo-{uuid.uuid4().hex[:12]}"
    return ensure_resources(endpoint_url, queue_name=f"{name}-queue", dlq_name=f"{name}-dlq",
                            table_name=f"{name}-table", dynamodb_endpoint_url=dynamodb_endpoint,
                            parameters={"QueueType": "fifo"})


def send(sqs: Any, resources: Resources, command: dict[str, Any], request_id: str,
         epoch: int = 1000) -> None:
    """What the FIFO request template sends: the item's group, the request's dedup id."""
    sqs.send_message(
        QueueUrl=resources.queue_url, MessageBody=json.dumps(command),
        MessageGroupId=command["id"], MessageDeduplicationId=request_id, MessageAttributes={
            "requestId": {"DataType": "String", "StringValue": request_id},
            "requestTimeEpoch": {"DataType": "Number", "StringValue": str(epoch)}})


def test_the_queues_are_fifo_and_records_carry_lambdas_fifo_attributes(
        resources: Resources, sqs: Any) -> None:
    assert resources.queue_name.endswith(".fifo") and resources.dlq_name.endswith(".fifo")
    attributes = sqs.get_queue_attributes(QueueUrl=resources.queue_url,
                                          AttributeNames=["All"])["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == resources.dlq_arn
    send(sqs, resources, {"operation": "delete", "id": "g"}, "r-1")
    send(sqs, resources, {"operation": "delete", "id": "g"}, "r-1")  # SQS drops the copy
    [message] = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10,
                                    AttributeNames=["All"])["Messages"]
    record = lambda_record(message, resources.queue_arn, REGION)
    # As in Lambda's FIFO records (AWS "Using Lambda with Amazon SQS", FIFO example event).
    assert {"MessageGroupId": "g", "MessageDeduplicationId": "r-1"}.items() <= record[
        "attributes"].items()
    assert record["attributes"]["SequenceNumber"].isdigit()
    assert record["eventSourceARN"].endswith(".fifo")


@pytest.mark.parametrize("report", [True, False])
def test_a_group_stops_at_its_first_failure_and_other_groups_go_on(
        load_app: AppLoader, resources: Resources, sqs: Any, report: bool) -> None:
    """a's second request fails once (a transient error): a's third is not applied before it,
    b is applied meanwhile. expectedVersion makes the order visible: out of order, a3 would be
    rejected (FIFO does not wait for earlier requests)."""
    app, proxy = load_app(report)
    flaky = proxy.add(Fault('"r-a2"', times=MAX_ATTEMPTS))  # one delivery's worth
    send(sqs, resources, {"operation": "create", "id": "a", "item": {"n": 1}}, "r-a1")
    send(sqs, resources, {"operation": "put", "id": "b", "item": {"n": 1}}, "r-b1")
    send(sqs, resources, {"operation": "update", "id": "a", "item": {"n": 2},
                          "expectedVersion": 1}, "r-a2")
    send(sqs, resources, {"operation": "update", "id": "a", "item": {"n": 3},
                          "expectedVersion": 2}, "r-a3")
    send(sqs, resources, {"operation": "update", "id": "b", "item": {"m": 2}}, "r-b2")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=report)
    assert poller.poll_once() == 5  # both groups in one batch
    assert flaky.injected == MAX_ATTEMPTS
    assert not any(has_outcome(app, r) for r in ("r-a2", "r-a3"))
    assert app.store.get_item("a") == {"id": "a", "version": 1, "n": 1}
    assert app.store.get_item("b") == {"id": "b", "version": 2, "n": 1, "m": 2}
    assert drain(poller) == 2  # a2, then a3: nothing else came back
    assert [outcome(app, f"r-a{n}")["status"] for n in (1, 2, 3)] == ["applied"] * 3
    assert app.store.get_item("a") == {"id": "a", "version": 3, "n": 3}


def test_a_group_waits_while_its_message_is_in_flight(
        load_app: AppLoader, resources: Resources, sqs: Any) -> None:
    """The emulator, like SQS, hands out none of a group's messages while one is in flight."""
    load_app(True)
    send(sqs, resources, {"operation": "put", "id": "a", "item": {}}, "r-1")
    first = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=1,
                                VisibilityTimeout=30)["Messages"]
    send(sqs, resources, {"operation": "put", "id": "a", "item": {}}, "r-2")
    send(sqs, resources, {"operation": "put", "id": "b", "item": {}}, "r-3")
    later = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10,
                                MessageAttributeNames=["All"])["Messages"]
    assert len(first) == 1
    assert [m["MessageAttributes"]["requestId"]["StringValue"] for m in later] == ["r-3"]


def test_a_group_is_never_redelivered_out_of_order(
        load_app: AppLoader, resources: Resources, sqs: Any) -> None:
    """Found on CI (a 5-message batch, 1 s visibility, a loaded machine): a2 visible again a
    moment before a3, a receive already waiting skipped a2 and then delivered a3. Made
    deterministic here: a3 stays in flight 2 s longer than a2, and a long poll spans both."""
    load_app(True)
    for n in (2, 3):
        send(sqs, resources, {"operation": "put", "id": "a", "item": {}}, f"r-a{n}")
    taken = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10,
                                VisibilityTimeout=1)["Messages"]
    assert len(taken) == 2
    sqs.change_message_visibility(QueueUrl=resources.queue_url, VisibilityTimeout=3,
                                  ReceiptHandle=taken[1]["ReceiptHandle"])
    delivered: list[str] = []
    for _ in range(3):
        delivered += [m["MessageAttributes"]["requestId"]["StringValue"] for m in
                      sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=5, MessageAttributeNames=["All"]
                                          ).get("Messages", [])]
        if delivered:
            break
    # SQS hands a group out from its first message; a3 may follow a2, never precede it.
    assert delivered[:1] == ["r-a2"]


# Few, short examples: each costs real FIFO sends, receives and a 1 s redelivery.
FIFO_PROPERTY = settings(PROPERTY, max_examples=8)


@FIFO_PROPERTY
@given(requests=sequences(conditional=True), seed=st.integers(0, 2**32 - 1))
@pytest.mark.long
def test_through_a_fifo_queue_conditions_are_judged_in_order(
        load_app: AppLoader, resources: Resources, sqs: Any, requests: list[Request],
        seed: int) -> None:
    """Sent in stamp order (some twice, dropped by SQS's deduplication), one of them failing
    once on the way: the item, its version and every outcome are exactly the in-order ones."""
    requests = with_id(requests, f"fifo-{uuid.uuid4().hex}")
    rng = random.Random(seed)
    app, proxy = load_app(True)
    ordered = sorted(requests, key=lambda r: r.stamp)
    failing = rng.choice(ordered).stamp.request_id
    proxy.add(Fault(f'"{failing}"', times=MAX_ATTEMPTS))
    model = Model()
    expected = {r.stamp.request_id: "applied" if model.apply(r.command) else "rejected"
                for r in ordered}
    for request in ordered:
        for _ in range(rng.choice([1, 1, 2])):
            send(sqs, resources, command_body(request), request.stamp.request_id,
                 request.stamp.request_time_epoch_ms)
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    drain(poller, rounds=4 * len(requests) + 4)
    item_id = requests[0].command.id
    statuses = {r.stamp.request_id: outcome(app, r.stamp.request_id)["status"] for r in ordered}
    assert statuses == expected
    found = stored(app.store, item_id)
    assert (found.exists, found.item) == (model.exists, model.item)
    if model.exists:
        assert found.version == model.version
    proxy.clear()


def command_body(request: Request) -> dict[str, Any]:
    command = request.command
    body: dict[str, Any] = {"operation": command.operation, "id": command.id}
    if command.operation in ("create", "put", "update"):
        body["item"] = command.item
    if command.expected_version is not None:
        body["expectedVersion"] = command.expected_version
    return body
