"""The SQS consumer (app.handle_messages) on real SQS messages from the emulator, fed by the
local poller with Lambda's semantics, in both deploy paths' configurations:
- ReportBatchItemFailures on the mapping (chalice package + merge template): failures are
  reported and only they come back;
- no such setting (chalice deploy): the handler deletes what succeeded and raises.
Transient DynamoDB failures are injected at the HTTP level, by devstack's fault proxy between the
consumer and the emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from chalicelib import BatchRetryError, OutcomeNotFoundError, Stamp
from chalicelib.batch import CONDITION_RETRIES
from chalicelib.clients import CALL_SECONDS, MAX_ATTEMPTS, MESSAGE_SECONDS
from chalicelib.commands import record_stamp
from chalicelib.store import CONFLICT_RETRIES
from devstack.faults import CONFLICT, Fault, FaultProxy
from devstack.lambda_events import lambda_record
from devstack.poller import SqsPoller
from devstack.redrive import redrive
from devstack.resources import Resources, queue_depth
from tests.conftest import REGION, AppImport, with_few_receives

pytestmark = pytest.mark.both_stores  # moto and DynamoDB Local (tests/conftest.py)

# Faults a message meets in one delivery, when it shares its batch with other items: the batch's
# one transaction (store.apply_together), then the message's own, each tried MAX_ATTEMPTS times.
DELIVERY = 2 * MAX_ATTEMPTS


@pytest.fixture
def faults(dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    """An HTTP proxy in front of the table's emulator that answers chosen writes with errors."""
    with FaultProxy(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def load_app(resources: Resources, monkeypatch: pytest.MonkeyPatch, faults: FaultProxy,
             backend: str, import_app: AppImport
             ) -> Callable[[bool], tuple[ModuleType, FaultProxy]]:
    def load(report_batch_item_failures: bool) -> tuple[ModuleType, FaultProxy]:
        monkeypatch.setenv("TABLE_NAME", resources.table_name)
        monkeypatch.setenv("QUEUE_NAME", resources.queue_name)
        monkeypatch.setenv("REPORT_BATCH_ITEM_FAILURES", str(report_batch_item_failures).lower())
        # A message that failed transiently comes back at once (retries.py's pacing, compressed
        # to nothing): a test that drains the queue need not wait out the backoff.
        monkeypatch.setenv("RETRY_DELAY_SCALE", "0")
        if backend == "moto":  # moto loses writes under concurrent transactions (aws-facts)
            monkeypatch.setenv("BATCH_CONCURRENCY", "1")
        # The consumer's DynamoDB traffic goes through the proxy (botocore honours this).
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", faults.url)
        return import_app(), faults
    return load


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
        app.handle_messages({"Records": _receive_records(poller)}, None)
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


def _receive_records(poller: SqsPoller) -> list[dict[str, Any]]:
    messages = poller.receive_batch()
    return [lambda_record(m, poller.queue_arn, poller.region) for m in messages]


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


# ---------------------------------------------------------------- conflicts, time, odd records


@pytest.mark.parametrize("lasting", [False, True])
def test_a_transaction_conflict_is_retried_in_the_handler_then_by_sqs(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any, lasting: bool) -> None:
    """Concurrent Lambdas writing one item: retried with backoff in the same invocation, and
    only a conflict that outlasts CONFLICT_RETRIES goes back to SQS."""
    app, faults = load_app(True)
    # The first conflict cancels the batch's one transaction; the message's own are retried.
    conflict = faults.add(Fault('"item#busy"', CONFLICT,
                                times=None if lasting else 1 + CONFLICT_RETRIES))
    send(sqs, resources, '{"operation": "put", "id": "busy", "item": {"v": 1}}', "r-busy")
    send(sqs, resources, '{"operation": "put", "id": "calm", "item": {"v": 1}}', "r-calm")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    assert poller.poll_once() == 2
    assert conflict.injected == 1 + CONFLICT_RETRIES + (1 if lasting else 0)
    assert outcome(app, "r-calm")["status"] == "applied"
    assert _has_outcome(app, "r-busy") is not lasting
    assert depth(poller) == (1 if lasting else 0)
    faults.clear()
    assert drain(poller) == (1 if lasting else 0)
    assert outcome(app, "r-busy")["status"] == "applied"


@pytest.mark.parametrize("report", [True, False])
def test_with_too_little_time_left_the_rest_of_the_batch_goes_back(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any, report: bool) -> None:
    """Lambda's remaining time: an item's first message runs, its others are not started
    without MESSAGE_SECONDS left (plus the visibility change, and a delete call in the safe
    mode); SQS brings them back."""
    app, poller = _three_puts(load_app, resources, sqs, report)
    poller.function_timeout = MESSAGE_SECONDS - 0.5 + (1 if report else 2) * CALL_SECONDS
    records = _receive_records(poller)
    assert len(records) == 3
    poller.invoke(records)
    handled = [n for n in ("one", "two", "three") if _has_outcome(app, f"r-{n}")]
    # One item: its messages run one after another, in request order.
    assert handled == ["one"]
    assert depth(poller) == 2  # not deleted: they come back after the visibility timeout
    poller.function_timeout = 60
    assert drain(poller) == 2
    assert [outcome(app, f"r-{n}")["status"] for n in ("one", "two", "three")] == [
        "applied"] * 3


def test_with_time_enough_a_whole_batch_runs(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    app, poller = _three_puts(load_app, resources, sqs, True)
    poller.function_timeout = MESSAGE_SECONDS + CALL_SECONDS + 5
    records = _receive_records(poller)
    poller.invoke(records)
    assert all(_has_outcome(app, f"r-{n}") for n in ("one", "two", "three"))
    assert len(records) == 3 and depth(poller) == 0


def test_a_malformed_stamp_affects_only_its_own_message(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    """Sent straight to the queue with odd attributes: that message falls back to SQS's own
    messageId and SentTimestamp; its batch-mates are applied as usual."""
    app, _ = load_app(True)
    sqs.send_message(QueueUrl=resources.queue_url,
                     MessageBody='{"operation": "put", "id": "odd", "item": {}}',
                     MessageAttributes={
                         "requestId": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                         "requestTimeEpoch": {"DataType": "String",
                                              "StringValue": "\u0661\u0662\u0663"}})
    send(sqs, resources, '{"operation": "put", "id": "mate", "item": {}}', "r-mate")
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    assert drain(poller) == 2
    assert app.store.get_item("odd")["version"] == 1
    assert outcome(app, "r-mate")["status"] == "applied"


def _three_puts(load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
                sqs: Any, report: bool) -> tuple[ModuleType, SqsPoller]:
    """Three puts to one item, in request order one, two, three."""
    app, _ = load_app(report)
    now = int(time.time() * 1000)
    for number, name in enumerate(("one", "two", "three")):
        send(sqs, resources, '{"operation": "put", "id": "same", "item": {"n": "%s"}}' % name,
             f"r-{name}", now + number)
    return app, make_poller(app, resources, sqs, honour_batch_item_failures=report)


def _has_outcome(app: ModuleType, request_id: str) -> bool:
    try:
        app.store.get_outcome(request_id)
    except OutcomeNotFoundError:
        return False
    return True


def test_an_update_before_its_create_waits_for_it_through_sqs(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQS delivers the update first: its visibility is set to a short delay instead of a
    rejection, and it applies after the create."""
    monkeypatch.setenv("CONDITION_RETRY_DELAY_SECONDS", "1")
    app, _ = load_app(True)
    now = int(time.time() * 1000)
    send(sqs, resources, '{"operation": "update", "id": "early", "item": {"n": 2}}', "r-u", now)
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    poller.visibility_timeout = 30  # only the handler's delay can bring it back in time
    assert poller.poll_once() == 1
    with pytest.raises(OutcomeNotFoundError):
        app.store.get_outcome("r-u")
    send(sqs, resources, '{"operation": "create", "id": "early", "item": {"n": 1}}', "r-c",
         now - 5)
    assert drain(poller) == 2
    assert outcome(app, "r-u")["status"] == "applied"
    assert app.store.get_item("early") == {"id": "early", "version": 2, "n": 2}


def test_a_condition_that_fails_in_order_too_is_rejected_after_waiting(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDITION_RETRY_DELAY_SECONDS", "0")
    app, _ = load_app(True)
    send(sqs, resources, '{"operation": "update", "id": "never", "item": {"n": 2}}', "r-u",
         int(time.time() * 1000))
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    receives = 0
    for _ in range(10):
        receives += poller.poll_once()
        if _has_outcome(app, "r-u"):
            break
    assert receives == CONDITION_RETRIES + 1  # below the queue's maxReceiveCount
    assert outcome(app, "r-u")["reason"] == "item 'never' does not exist"
    assert depth(poller) == 0 and dlq_depth(sqs, resources) == 0


def test_a_batch_runs_each_items_messages_in_request_order(
        load_app: Callable[[bool], tuple[ModuleType, FaultProxy]], resources: Resources,
        sqs: Any) -> None:
    """Delivered newest first in one batch, an item's create, update and delete still apply in
    request order (one lane per item), while other items run alongside."""
    app, _ = load_app(True)
    now = int(time.time() * 1000)
    for number, body in reversed(list(enumerate([
            '{"operation": "create", "id": "lane", "item": {"n": 1}}',
            '{"operation": "update", "id": "lane", "item": {"n": 2}}',
            '{"operation": "update", "id": "lane", "item": {"m": 3}}']))):
        send(sqs, resources, body, f"r-lane-{number}", now + number)
    for name in ("x", "y", "z"):
        send(sqs, resources, '{"operation": "put", "id": "%s", "item": {}}' % name, f"r-{name}",
             now)
    poller = make_poller(app, resources, sqs, honour_batch_item_failures=True)
    records = _receive_records(poller)
    assert len(records) == 6
    poller.invoke(records)
    assert [outcome(app, f"r-lane-{n}")["status"] for n in range(3)] == ["applied"] * 3
    assert app.store.get_item("lane") == {"id": "lane", "version": 3, "n": 2, "m": 3}
    assert all(_has_outcome(app, f"r-{name}") for name in "xyz")
    assert depth(poller) == 0
