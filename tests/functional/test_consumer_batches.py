"""A batch through the SQS consumer (app.handle_messages) in both deploy paths' configurations:
- ReportBatchItemFailures on the mapping (chalice package + merge template): failures are
  reported and only they come back;
- no such setting (chalice deploy): the handler deletes what succeeded and raises.
Also: Chalice's test client, and the log lines and metrics of a batch. Transient DynamoDB failures
are injected at the HTTP level, by devstack's fault proxy between the consumer and the emulator
(tests/consumer_harness.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from chalicelib import BatchRetryError, OutcomeNotFoundError
from devstack.faults import Fault, FaultProxy
from devstack.resources import Resources
from tests.consumer_harness import (
    DELIVERY,
    depth,
    drain,
    make_poller,
    outcome,
    receive_records,
    send,
)

pytestmark = pytest.mark.both_stores  # moto and DynamoDB Local (tests/conftest.py)


def test_a_batch_is_applied_and_bad_messages_are_rejected_not_retried(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    app, _ = load_app(True)
    send(sqs, resources, '{"operation": "create", "id": "a", "item": {"n": 1}}', "r-ok")
    send(sqs, resources, '{"operation": "create", "id": ', "r-json")
    send(sqs, resources, '{"operation": "update", "id": "nope", "item": {"n": 1}}', "r-missing")
    send(sqs, resources, '{"operation": "create", "id": "no-item"}', "r-schema")
    sqs.send_message(QueueUrl=resources.queue_url,  # sent straight to the queue: no attributes
                     MessageBody='{"operation": "put", "id": "b", "item": {}}')
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    assert drain(poller) == 5
    rejected = outcome(app, "r-schema")
    assert rejected.pop("requestTimeEpoch") == 1000 and rejected.pop("handledAt") > 1000
    assert rejected == {
        "requestId": "r-schema", "status": "rejected", "operation": "create", "id": "no-item",
        "reason": "body: missing required property 'item'"}
    assert outcome(app, "r-ok")["status"] == "applied"
    assert app.store.get_item("a") == {"id": "a", "version": 1, "n": 1}
    assert "not valid JSON" in outcome(app, "r-json")["reason"]
    assert "does not exist" in outcome(app, "r-missing")["reason"]
    assert app.store.get_item("b")["version"] == 1
    assert depth(poller) == 0


def test_with_report_batch_item_failures_only_failed_messages_come_back(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    app, faults = load_app(True)
    flaky = faults.add(Fault('"item#flaky"', times=DELIVERY))
    for name in ("one", "flaky", "two"):
        send(sqs, resources, '{"operation": "put", "id": "%s", "item": {}}' % name, f"r-{name}")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    assert poller.poll_once() == 3
    assert flaky.injected == DELIVERY
    with pytest.raises(OutcomeNotFoundError):
        app.store.get_outcome("r-flaky")
    assert drain(poller) == 1  # only the failed message was redelivered
    assert [outcome(app, f"r-{n}")["status"] for n in ("one", "flaky", "two")] == ["applied"] * 3


def test_without_the_mapping_setting_the_handler_deletes_successes_and_raises(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    app, faults = load_app(False)  # chalice deploy: Lambda would delete the whole batch
    faults.add(Fault('"item#flaky"', times=DELIVERY))
    for name in ("one", "flaky", "two"):
        send(sqs, resources, '{"operation": "put", "id": "%s", "item": {}}' % name, f"r-{name}")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=False)
    with pytest.raises(BatchRetryError):
        app.handle_messages({"Records": receive_records(poller)}, None)
    assert drain(poller) == 1  # the two successes were deleted by the handler itself
    assert [outcome(app, f"r-{n}")["status"] for n in ("one", "flaky", "two")] == ["applied"] * 3


def test_reporting_failures_to_a_mapping_without_the_setting_would_lose_them(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    """Why the safe mode is the default: this is the hole it closes."""
    app, faults = load_app(True)
    faults.add(Fault('"item#flaky"', times=DELIVERY))
    send(sqs, resources, '{"operation": "put", "id": "flaky", "item": {}}', "r-flaky")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=False)
    assert drain(poller) == 1
    with pytest.raises(OutcomeNotFoundError):
        app.store.get_outcome("r-flaky")  # deleted from the queue, never applied: lost


def test_chalice_test_client_invokes_the_handler(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]]) -> None:
    from chalice.test import Client

    app, _ = load_app(True)
    with Client(app.app) as client:
        event = client.events.generate_sqs_event(
            message_bodies=['{"operation": "put", "id": "c%d", "item": {}}' % n
                            for n in range(3)], queue_name="q")
        for number, record in enumerate(event["Records"]):  # Chalice gives them one messageId
            record["messageId"] = f"message-{number}"
        result = client.lambda_.invoke("handle_messages", event)
        # Chalice's test context gives every invocation 3 s (not lambda_timeout), less than a
        # message may need (MESSAGE_SECONDS): after an item's first message, the rest of its
        # messages would go back to SQS. These are three items: each runs its first.
        assert result.payload == {"batchItemFailures": []}
    assert [outcome(app, f"message-{n}")["status"] for n in range(3)] == ["applied"] * 3


def test_every_log_line_is_json_with_the_request_id(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources, sqs: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    app, faults = load_app(True)
    faults.add(Fault('"item#flaky"', times=DELIVERY))
    send(sqs, resources, '{"operation": "put", "id": "flaky", "item": {}}', "r-flaky")
    send(sqs, resources, "not json", "r-bad")
    send(sqs, resources, '{"operation": "put", "id": "ok", "item": {}}', "r-ok")
    make_poller(app, resources, sqs, honour_batch_item_failures=True).poll_once()
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()
               if line.startswith("{")]
    lines = [line for line in objects if "_aws" not in line]
    assert {line["requestId"] for line in lines} == {"r-flaky", "r-bad", "r-ok"}
    assert {line["message"] for line in lines} == {"applied", "rejected", "retry"}
    # One EMF metrics line for the invocation (CloudWatch embedded metric format).
    [emf] = [line for line in objects if "_aws" in line]
    declared = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert declared <= set(emf)
    assert {k: emf[k] for k in ("Applied", "Rejected", "Retried", "Duplicate", "Superseded",
                                "BatchSize")} == {"Applied": 1, "Rejected": 1, "Retried": 1,
                                                  "Duplicate": 0, "Superseded": 0,
                                                  "BatchSize": 3}
    assert "requestId" not in emf and "id" not in emf  # dimensions stay low-cardinality
