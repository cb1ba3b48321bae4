"""The change path through the local pipeline, over HTTP, on both stores: writes -> the table's
stream -> publish_changes -> the bus (moto's EventBridge) -> the history rule's queue ->
record_history -> GET /items/{id}/history. Also a second subscriber on the bus (the recipe of
docs/consumers.md) sees the same events."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
import requests

from chalicelib import dumps, loads
from devstack.infra import InfraTemplate
from devstack.pipeline import Pipeline
from tests.conftest import REGION, store_of
from tests.waiting import wait_until

TIME = 1_700_000_000_000


pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    store = store_of(request)
    saved = dict(os.environ)
    os.environ["IN_ORDER_WINDOW_SECONDS"] = "0"  # a failed condition is rejected at once
    try:
        with Pipeline(visibility_timeout=1, store=store) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sqs(pipeline: Pipeline) -> Any:
    return boto3.client("sqs", endpoint_url=pipeline.endpoint_url, region_name=REGION)


def send(pipeline: Pipeline, body: dict[str, Any], at: int, request_id: str) -> None:
    """A request as API Gateway queues it, with its own stamp (for redelivery and order)."""
    assert pipeline.resources is not None
    sqs(pipeline).send_message(QueueUrl=pipeline.resources.queue_url, MessageBody=dumps(body),
                               MessageAttributes={
        "requestId": {"DataType": "String", "StringValue": request_id},
        "requestTimeEpoch": {"DataType": "Number", "StringValue": str(TIME + at)}})


def outcome(pipeline: Pipeline, request_id: str) -> dict[str, Any]:
    def recorded() -> dict[str, Any] | None:
        answer = requests.get(f"{pipeline.base_url}/requests/{request_id}", timeout=10)
        found: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
        return found
    return wait_until(recorded, 30, what=f"no outcome for {request_id}")


def history(pipeline: Pipeline, item_id: str, versions: int, **params: Any
            ) -> list[dict[str, Any]]:
    """The item's history, once it holds `versions` changes (every page)."""
    def every_page() -> list[dict[str, Any]]:
        changes: list[dict[str, Any]] = []
        cursor = None
        while True:
            answer = requests.get(f"{pipeline.base_url}/items/{item_id}/history", timeout=10,
                                  params={**params, **({"cursor": cursor} if cursor else {})})
            assert answer.status_code == 200, answer.text
            page = loads(answer.text)
            changes.extend(page["changes"])
            cursor = page.get("cursor")
            if cursor is None:
                return changes

    return wait_until(lambda: (lambda found: found if len(found) >= versions else None)(
        every_page()), 30, interval=0.2, what=f"{item_id}: fewer than {versions} changes")


def test_every_kind_of_write_and_only_applied_ones(pipeline: Pipeline) -> None:
    item = f"w-{uuid.uuid4().hex[:6]}"
    # 36 significant digits (moto's bus kept 17: devstack/moto_patches/eventbridge_numbers.py).
    exact = {"big": 12345678901234567890123456789, "tenth": Decimal("0.1"),
             "pi": Decimal("3.14159265358979323846264338327950288"),
             "nested": {"empty": {}, "list": [{"deep": [-7, "x"]}]}}
    writes: list[tuple[dict[str, Any], int, str]] = [
              ({"operation": "create", "id": item, "item": {"a": 1}}, 1, "applied"),
              ({"operation": "update", "id": item, "item": exact}, 2, "applied"),
              ({"operation": "read", "id": item}, 3, "applied"),
              ({"operation": "create", "id": item, "item": {}}, 4, "rejected"),
              ({"operation": "put", "id": item, "item": {"p": True}}, 6, "applied"),
              ({"operation": "put", "id": item, "item": {"late": 1}}, 5, "rejected"),
              ({"operation": "delete", "id": item}, 7, "applied"),
              ({"operation": "create", "id": item, "item": {"again": 2}}, 8, "applied")]
    for n, (body, at, status) in enumerate(writes):
        send(pipeline, body, at, f"{item}-{n}")
        assert outcome(pipeline, f"{item}-{n}")["status"] == status, body
    send(pipeline, writes[0][0], 1, f"{item}-0")  # redelivered: no second effect
    assert outcome(pipeline, f"{item}-0")["status"] == "applied"
    changes = history(pipeline, item, 5, limit=2)
    assert [(c["version"], c["change"], c["requestId"]) for c in changes] == [
        (1, "created", f"{item}-0"), (2, "updated", f"{item}-1"), (3, "updated", f"{item}-4"),
        (4, "deleted", f"{item}-6"), (5, "created", f"{item}-7")]
    assert changes[1]["new"] == {"id": item, "version": 2, "a": 1, **exact}
    assert changes[3]["new"] is None and changes[3]["old"]["p"] is True
    current = requests.get(f"{pipeline.base_url}/items/{item}", timeout=10)
    assert changes[-1]["new"] == loads(current.text)
    assert changes[1]["requestTimeEpoch"] == TIME + 2


def test_history_is_kept_once_per_version_in_version_order(pipeline: Pipeline) -> None:
    """Redelivered and out-of-order events (the bus and SQS deliver at least once, unordered)."""
    assert pipeline.changes is not None
    item = f"o-{uuid.uuid4().hex[:6]}"
    events = [{"id": item, "version": v, "change": "created" if v == 1 else "updated",
               "requestId": f"r{v}", "requestTimeEpoch": v, "old": None,
               "new": {"id": item, "version": v}} for v in (1, 2, 3)]
    for event in (events[2], events[0], events[2], events[1], events[0]):
        sqs(pipeline).send_message(QueueUrl=pipeline.changes.history_queue_url,
                                   MessageBody=json.dumps({"detail": event}))
    time.sleep(1)
    assert history(pipeline, item, 3) == events
    assert history(pipeline, item, 3, limit=1) == events
    bad = requests.get(f"{pipeline.base_url}/items/{item}/history", timeout=10,
                       params={"cursor": "nope"})
    assert bad.status_code == 400
    assert requests.get(f"{pipeline.base_url}/items/never/history", timeout=10).json() == {
        "changes": []}


def test_a_large_item_is_published_with_a_pointer(pipeline: Pipeline) -> None:
    request = uuid.uuid4().hex[:6]
    item = f"big/{request}"
    send(pipeline, {"operation": "put", "id": item, "item": {"blob": "b" * 250_000}}, 1, request)
    assert outcome(pipeline, request)["status"] == "applied"
    (change,) = history(pipeline, item.replace("/", "%2F"), 1)
    assert change == {"id": item, "version": 1, "change": "created", "requestId": request,
                      "requestTimeEpoch": TIME + 1, "old": None,
                      "new": {"id": item, "version": 1}, "truncated": True,
                      "item": "/items/" + item.replace("/", "%2F")}


def test_a_second_subscriber_sees_the_same_events(pipeline: Pipeline) -> None:
    """docs/consumers.md: infra's worked second subscriber (ExampleSubscriberRule: deletes, to a
    queue of its own) gets the very events the history keeps."""
    assert pipeline.changes is not None
    rule = InfraTemplate().properties("ExampleSubscriberRule")
    events = boto3.client("events", endpoint_url=pipeline.endpoint_url, region_name=REGION)
    client = sqs(pipeline)
    name = f"second-{uuid.uuid4().hex[:6]}"
    queue_url = client.create_queue(QueueName=name)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=pipeline.changes.bus_name, State="ENABLED",
                    EventPattern=json.dumps(rule["EventPattern"]))
    events.put_targets(Rule=name, EventBusName=pipeline.changes.bus_name,
                       Targets=[{"Id": rule["Targets"][0]["Id"], "Arn": arn}])
    item = f"s-{uuid.uuid4().hex[:6]}"
    bodies: list[dict[str, Any]] = [{"operation": "create", "id": item, "item": {"n": 1}},
                                    {"operation": "delete", "id": item}]
    for n, body in enumerate(bodies):
        send(pipeline, body, n, f"{item}-{n}")
        outcome(pipeline, f"{item}-{n}")
    kept = history(pipeline, item, 2)
    seen: list[dict[str, Any]] = []

    def received() -> list[dict[str, Any]]:
        for message in client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", []):
            envelope = loads(message["Body"])
            assert envelope["detail-type"] == "item.deleted"
            if envelope["detail"]["id"] == item:
                seen.append(envelope["detail"])
        return seen

    wait_until(received, 20, interval=0, what="the second subscriber got nothing")
    assert seen == [change for change in kept if change["change"] == "deleted"]
    assert [change["change"] for change in kept] == ["created", "deleted"]
