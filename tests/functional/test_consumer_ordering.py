"""When and in which order the consumer runs a batch's messages: a transaction conflict retried in
the handler then by SQS, the rest of a batch sent back when time runs short, a malformed stamp
that affects only its message, an update that waits for its create, and an item's messages in
request order."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from chalicelib import OutcomeNotFoundError
from chalicelib.batch import CONDITION_RETRIES
from chalicelib.clients import CALL_SECONDS, MESSAGE_SECONDS
from chalicelib.store import CONFLICT_RETRIES
from devstack.faults import CONFLICT, Fault, FaultProxy
from devstack.poller import SqsPoller
from devstack.resources import Resources
from tests.consumer_harness import (
    depth,
    dlq_depth,
    drain,
    has_outcome,
    make_poller,
    outcome,
    receive_records,
    send,
)

pytestmark = pytest.mark.both_stores  # moto and DynamoDB Local (tests/conftest.py)


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
    assert has_outcome(app, "r-busy") is not lasting
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
    records = receive_records(poller)
    assert len(records) == 3
    poller.invoke(records)
    handled = [n for n in ("one", "two", "three") if has_outcome(app, f"r-{n}")]
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
    records = receive_records(poller)
    poller.invoke(records)
    assert all(has_outcome(app, f"r-{n}") for n in ("one", "two", "three"))
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
        if has_outcome(app, "r-u"):
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
    records = receive_records(poller)
    assert len(records) == 6
    poller.invoke(records)
    assert [outcome(app, f"r-lane-{n}")["status"] for n in range(3)] == ["applied"] * 3
    assert app.store.get_item("lane") == {"id": "lane", "version": 3, "n": 2, "m": 3}
    assert all(has_outcome(app, f"r-{name}") for name in "xyz")
    assert depth(poller) == 0
