"""Writes of different items in one transaction (store.apply_together, batch.py): one DynamoDB
call for a batch in the common case, and, when that transaction is cancelled, each write alone
with exactly the result it would have had. On both engines: a cancelled transaction must leave
nothing behind (DynamoDB API Reference, TransactWriteItems: "an all-or-nothing operation")."""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chalicelib import (
    BatchProcessor,
    ItemNotFoundError,
    ItemStore,
    OutcomeNotFoundError,
    Settings,
    Stamp,
)
from chalicelib.batch import CONDITION_RETRIES
from chalicelib.clients import client_config
from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH, Command
from chalicelib.events import single_message_event
from chalicelib.store import MAX_WRITES_TOGETHER
from chalicelib.store import logger as store_logger
from devstack.dynamodb_local import MOTO
from devstack.faults import SERVER_ERROR_AFTER, Fault, FaultProxy
from devstack.resources import Resources
from tests.conftest import REGION
from tests.functional.test_fifo import command_body
from tests.functional.test_in_order import PROPERTY, Request, in_order, sequences, stored, with_id

pytestmark = pytest.mark.both_stores


@pytest.fixture
def proxy(dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    """Counts the consumer's DynamoDB calls by operation (and injects faults when asked)."""
    with FaultProxy(dynamodb_endpoint) as running:
        yield running


@pytest.fixture
def consumer_settings(settings: Settings, backend: str) -> Settings:
    # moto loses writes under concurrent transactions (aws-facts): one lane at a time there.
    return replace(settings, report_batch_item_failures=True,
                   batch_concurrency=1 if backend == MOTO else 10)


def store_behind(proxy: FaultProxy, settings: Settings, config: Config | None = None
                 ) -> ItemStore:
    """The consumer's store, its calls through the proxy; the production client settings."""
    config = client_config() if config is None else client_config().merge(config)
    return ItemStore(boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                                  config=config), settings)


@pytest.fixture
def consumer_store(proxy: FaultProxy, consumer_settings: Settings) -> ItemStore:
    return store_behind(proxy, consumer_settings)


def record(body: dict[str, Any] | str, request_id: str, epoch_ms: int, settings: Settings,
           queue_arn: str = "", receive_count: int = 1) -> dict[str, Any]:
    """A Lambda SQS record as the mapping template's message gives it."""
    text = body if isinstance(body, str) else json.dumps(body)
    [made] = single_message_event(text, settings, REGION)["Records"]
    made["messageId"] = str(uuid.uuid4())
    made["messageAttributes"][REQUEST_ID]["stringValue"] = request_id
    made["messageAttributes"][REQUEST_TIME_EPOCH]["stringValue"] = str(epoch_ms)
    made["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    if queue_arn:
        made["eventSourceARN"] = queue_arn
        made["receiptHandle"] = f"handle-{made['messageId']}"  # from SQS: it may wait
    return made


def creates(prefix: str, count: int, settings: Settings) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [record({"operation": "create", "id": f"{prefix}-{n}", "item": {"n": n}},
                   f"{prefix}-r{n}", now + n, settings) for n in range(count)]


def status(store: ItemStore, request_id: str) -> str:
    return str(store.get_outcome(request_id)["status"])


def test_a_batch_of_different_items_is_one_transaction(
        consumer_store: ItemStore, store: ItemStore, proxy: FaultProxy,
        consumer_settings: Settings) -> None:
    prefix = uuid.uuid4().hex[:8]
    answer = BatchProcessor(consumer_store, consumer_settings).process(
        creates(prefix, 10, consumer_settings))
    assert answer == {"batchItemFailures": []}
    assert dict(proxy.calls) == {"TransactWriteItems": 1}
    for n in range(10):
        assert store.get_item(f"{prefix}-{n}") == {"id": f"{prefix}-{n}", "version": 1, "n": n}
        assert status(store, f"{prefix}-r{n}") == "applied"


def test_without_combining_each_write_is_its_own_transaction(
        consumer_store: ItemStore, proxy: FaultProxy, consumer_settings: Settings) -> None:
    apart = replace(consumer_settings, combine_writes=False)
    store = ItemStore(consumer_store.client, apart)
    BatchProcessor(store, apart).process(creates(uuid.uuid4().hex[:8], 4, apart))
    assert dict(proxy.calls) == {"TransactWriteItems": 4}
    assert not Settings.from_environ({"COMBINE_WRITES": "false"}).combine_writes
    assert Settings.from_environ({}).combine_writes


def test_a_cancelled_transaction_leaves_nothing_and_each_write_then_goes_alone(
        consumer_store: ItemStore, store: ItemStore, proxy: FaultProxy,
        consumer_settings: Settings) -> None:
    prefix = uuid.uuid4().hex[:8]
    store.apply(Command("create", f"{prefix}-2", {"n": "first"}), Stamp(1, f"{prefix}-early"))
    batch = creates(prefix, 5, consumer_settings)  # the third creates an item that exists
    writes = [(Command("create", f"{prefix}-{n}", {"n": n}), Stamp(1, f"{prefix}-r{n}"))
              for n in range(5)]
    # All or nothing: the one failed condition cancels the four others too.
    assert consumer_store.apply_together(writes) == {}
    for n in (0, 1, 3, 4):
        with pytest.raises(ItemNotFoundError):
            store.get_item(f"{prefix}-{n}")
        with pytest.raises(OutcomeNotFoundError):
            store.get_outcome(f"{prefix}-r{n}")
    proxy.reset_counts()
    BatchProcessor(consumer_store, consumer_settings).process(batch)
    # The cancelled transaction, then one each (the rejected create finds the item as it is).
    assert proxy.calls["TransactWriteItems"] == 1 + 5
    assert [status(store, f"{prefix}-r{n}") for n in range(5)] == [
        "applied", "applied", "rejected", "applied", "applied"]
    assert store.get_item(f"{prefix}-2")["n"] == "first"
    assert store.get_item(f"{prefix}-4") == {"id": f"{prefix}-4", "version": 1, "n": 4}


def test_an_answer_lost_after_the_transaction_applied_each_write_once(
        consumer_store: ItemStore, store: ItemStore, proxy: FaultProxy,
        consumer_settings: Settings) -> None:
    """DynamoDB applied the transaction, then its answer was lost (a 500 after the write): the
    retry and the writes alone all find their outcomes recorded; nothing is applied twice."""
    prefix = uuid.uuid4().hex[:8]
    lost = proxy.add(Fault('"TransactItems"', SERVER_ERROR_AFTER, times=1))
    BatchProcessor(consumer_store, consumer_settings).process(creates(prefix, 3, consumer_settings))
    assert lost.injected == 1
    for n in range(3):
        assert store.get_item(f"{prefix}-{n}")["version"] == 1
        found = store.get_outcome(f"{prefix}-r{n}")
        assert found["status"] == "applied"


def test_an_items_later_messages_follow_its_first_in_request_order(
        consumer_store: ItemStore, store: ItemStore, proxy: FaultProxy,
        consumer_settings: Settings) -> None:
    prefix, now = uuid.uuid4().hex[:8], int(time.time() * 1000)
    batch = [record({"operation": operation, "id": f"{prefix}-{item_id}", **item},
                    f"{prefix}-{request_id}", now + at, consumer_settings)
             for operation, item_id, item, request_id, at in [
                 ("update", "a", {"item": {"m": 2}}, "u", 2),
                 ("create", "b", {"item": {"n": 1}}, "cb", 0),
                 ("create", "a", {"item": {"n": 1}}, "ca", 1),
                 ("read", "b", {}, "rb", 3)]]
    BatchProcessor(consumer_store, consumer_settings).process(batch)
    # Both creates together; then the update after its create; the read is never combined.
    assert dict(proxy.calls) == {"TransactWriteItems": 2, "GetItem": 1, "PutItem": 1}
    assert store.get_item(f"{prefix}-a") == {"id": f"{prefix}-a", "version": 2, "n": 1, "m": 2}
    assert store.get_outcome(f"{prefix}-rb")["item"] == {"id": f"{prefix}-b", "version": 1,
                                                         "n": 1}


def test_fifo_groups_that_start_with_one_item_are_not_combined(
        consumer_store: ItemStore, store: ItemStore, proxy: FaultProxy,
        consumer_settings: Settings) -> None:
    prefix, now = uuid.uuid4().hex[:8], int(time.time() * 1000)
    fifo_arn = f"arn:aws:sqs:{REGION}::{prefix}.fifo"
    batch = []
    for group, (operation, item_id, request_id) in enumerate(
            [("create", "x", "cx"), ("put", "x", "px"), ("create", "y", "cy")]):
        made = record({"operation": operation, "id": f"{prefix}-{item_id}", "item": {"g": group}},
                      f"{prefix}-{request_id}", now + group, consumer_settings)
        made["eventSourceARN"] = fifo_arn
        made["attributes"]["MessageGroupId"] = f"g{group}"
        batch.append(made)
    BatchProcessor(consumer_store, consumer_settings).process(batch)
    # x's create and y's create together, x's put (another group) alone: two keys for x in one
    # transaction would make DynamoDB refuse it.
    assert dict(proxy.calls) == {"TransactWriteItems": 2}
    assert store.get_item(f"{prefix}-x")["g"] == 1
    assert {status(store, f"{prefix}-{r}") for r in ("cx", "px", "cy")} == {"applied"}


def test_more_writes_than_one_transaction_takes_are_split(
        store: ItemStore, proxy: FaultProxy, consumer_settings: Settings,
        caplog: pytest.LogCaptureFixture) -> None:
    # The split is tested here, not the 2 s read timeout. One CI run on four workers found the
    # first (100-action) transaction failed and the second (6) applied; moto takes 0.3-0.5 s
    # for it here, so a timeout on a loaded machine is the likely cause, and falling back to one
    # write at a time is then the designed result. The consumer never sends one this large
    # (BATCH_SIZE 10 in app.py). Its debug line, printed on failure, says what the error was.
    caplog.set_level(logging.DEBUG, logger=store_logger.name)
    patient = store_behind(proxy, consumer_settings, Config(read_timeout=60))
    prefix = uuid.uuid4().hex[:8]
    count = MAX_WRITES_TOGETHER + 3
    writes = [(Command("create", f"{prefix}-{n}", {"n": n}), Stamp(1, f"{prefix}-r{n}"))
              for n in range(count)]
    done = patient.apply_together(writes)
    assert sorted(done) == list(range(count))
    assert dict(proxy.calls) == {"TransactWriteItems": 2}
    assert store.get_item(f"{prefix}-{count - 1}")["n"] == count - 1


# Three filtered sequences per example: hypothesis finds that a lot of filtering, and it is.
@hypothesis_settings(PROPERTY, max_examples=15,
          suppress_health_check=[*PROPERTY.suppress_health_check, HealthCheck.filter_too_much])
@given(first=sequences(conditional=False), second=sequences(conditional=False),
       third=sequences(conditional=False), seed=st.integers(0, 2**32 - 1))
def test_batches_of_several_items_give_each_item_its_in_order_result(
        consumer_store: ItemStore, store: ItemStore, consumer_settings: Settings,
        resources: Resources, first: list[Request], second: list[Request],
        third: list[Request], seed: int) -> None:
    """Puts, updates and deletes to three items, delivered shuffled (some twice) in random
    batches through the consumer, waiting ones coming back in later receives as SQS brings
    them: each item ends as if its requests had been applied once in order (R3), and every
    request has one outcome."""
    rng, now = random.Random(seed), int(time.time() * 1000)
    items = [with_id(requests, f"many-{uuid.uuid4().hex}") for requests in (first, second, third)]
    requests = [Request(r.command, Stamp(now + r.stamp.request_time_epoch_ms % 10,
                                         f"{r.stamp.request_id}-{n}"))
                for n, requests_of_item in enumerate(items) for r in requests_of_item]
    processor = BatchProcessor(consumer_store, consumer_settings,
                               sqs_client_factory=lambda: boto3.client("sqs", region_name=REGION))
    pending = [*requests, *rng.sample(requests, k=rng.randint(0, len(requests)))]
    rng.shuffle(pending)
    for receive in range(1, CONDITION_RETRIES + 2):
        deliveries = {}
        for request in pending:
            made = record(command_body(request), request.stamp.request_id,
                          request.stamp.request_time_epoch_ms, consumer_settings,
                          resources.queue_arn, receive)
            deliveries[made["messageId"]] = (request, made)
        batch_records = [made for _, made in deliveries.values()]
        later: list[Request] = []
        while batch_records:
            size = rng.randint(1, 10)
            answer = processor.process(batch_records[:size])
            later += [deliveries[f["itemIdentifier"]][0] for f in answer["batchItemFailures"]]
            batch_records = batch_records[size:]
        rng.shuffle(later)
        pending = later
    assert not pending
    for requests_of_item in items:
        item_id = requests_of_item[0].command.id
        mine = [r for r in requests if r.command.id == item_id]
        expected, found = in_order(mine), stored(store, item_id)
        assert (found.exists, found.item) == (expected.exists, expected.item)
    for request in requests:
        assert store.get_outcome(request.stamp.request_id)["status"] in ("applied", "rejected")
