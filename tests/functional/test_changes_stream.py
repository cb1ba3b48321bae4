"""The table's real stream on both stores, read as the change publisher reads it: every applied
write gives exactly one change event, and nothing else does (a rejected, superseded, cancelled or
redelivered write, a read, a delete of a deleted item). On moto this relies on devstack's patch
(moto_server.py), on DynamoDB Local on Amazon's engine; DynamoDB documents one record per item
change and none for a write that changed nothing ("Change data capture for DynamoDB Streams")."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import boto3
import pytest

from chalicelib import ItemStore, Stamp, dumps, parse_command
from chalicelib.changes import change_of
from devstack.stream_events import lambda_stream_record
from devstack.stream_poller import StreamPoller
from tests.conftest import REGION

pytestmark = pytest.mark.both_stores

TIME = 1_700_000_000_000


def stream_events(dynamodb_endpoint: str, table: str) -> list[dict[str, Any]]:
    """Every change event in the table's stream so far, in order."""
    changes = (change_of(record) for record in item_records(dynamodb_endpoint, table))
    return [change.event for change in changes if change is not None]


def item_records(dynamodb_endpoint: str, table: str) -> list[dict[str, Any]]:
    """The stream's records of items (not outcomes), as Lambda hands them over."""
    arn = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name=REGION
                       ).describe_table(TableName=table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint,
                           region_name=REGION)
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(lambda_stream_record(record, arn, REGION)
                           for record in page["Records"]
                           if record["dynamodb"]["Keys"]["pk"]["S"].startswith("item#"))
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def test_exactly_one_event_per_applied_write(store: ItemStore, dynamodb_endpoint: str) -> None:
    def send(body: dict[str, Any], at: int, request_id: str) -> str:
        outcome = store.apply(parse_command(dumps(body)), Stamp(TIME + at, request_id))
        return f"{outcome.status}{' superseded' if outcome.superseded else ''}"

    exact = {"big": 12345678901234567890123456789, "tenth": Decimal("0.1"),
             "nested": {"empty": {}, "list": [{"deep": [Decimal("-1E-130")]}]}}
    assert send({"operation": "create", "id": "s", "item": {"a": 1}}, 1, "r1") == "applied"
    assert send({"operation": "create", "id": "s", "item": {"a": 1}}, 1, "r1") == "applied"
    assert send({"operation": "update", "id": "s", "item": exact}, 2, "r2") == "applied"
    assert send({"operation": "read", "id": "s"}, 3, "r3") == "applied"
    assert send({"operation": "create", "id": "s", "item": {}}, 4, "r4") == "rejected"
    assert send({"operation": "update", "id": "s", "item": {"a": None}, "expectedVersion": 9},
                5, "r5") == "rejected"
    assert send({"operation": "put", "id": "s", "item": {"p": True}}, 6, "r6") == "applied"
    assert send({"operation": "put", "id": "s", "item": {"old": 1}}, 0, "r0") == (
        "rejected superseded")
    assert send({"operation": "delete", "id": "s"}, 7, "r7") == "applied"
    assert send({"operation": "delete", "id": "s"}, 8, "r8") == "applied"  # of a tombstone
    assert send({"operation": "create", "id": "s", "item": {"b": 2}}, 9, "r9") == "applied"
    # One record per write that changed the item (the delete of the tombstone too), and no more.
    assert len(item_records(dynamodb_endpoint, store.table)) == 6
    events = stream_events(dynamodb_endpoint, store.table)
    assert [(e["version"], e["change"], e["requestId"], e["requestTimeEpoch"] - TIME)
            for e in events] == [(1, "created", "r1", 1), (2, "updated", "r2", 2),
                                 (3, "updated", "r6", 6), (4, "deleted", "r7", 7),
                                 (6, "created", "r9", 9)]
    assert events[1]["new"] == {"id": "s", "version": 2, "a": 1, **exact}
    assert events[1]["old"] == events[0]["new"] == {"id": "s", "version": 1, "a": 1}
    assert events[3]["old"] == {"id": "s", "version": 3, "p": True}
    assert events[4]["new"] == store.get_item("s")
    assert dumps(events[1]["new"]["big"]) == "12345678901234567890123456789"
    assert str(events[1]["new"]["nested"]["list"][0]["deep"][0]) == "-1E-130"


def test_writes_together_give_one_event_each(store: ItemStore, dynamodb_endpoint: str) -> None:
    writes = [(parse_command(dumps({"operation": "put", "id": f"t{n}", "item": {"n": n}})),
               Stamp(TIME + n, f"t{n}")) for n in range(3)]
    assert len(store.apply_together(writes)) == 3
    # The last one fails its condition: the transaction is cancelled, none of it is recorded,
    # though the writes before it (a new item, a change) passed their conditions.
    again = [(parse_command(dumps(body)), Stamp(TIME + 10 + n, f"u{n}")) for n, body in
             enumerate([{"operation": "put", "id": "new", "item": {}},
                        {"operation": "put", "id": "t0", "item": {"n": 9}},
                        {"operation": "create", "id": "t1", "item": {}}])]
    assert store.apply_together(again) == {}
    assert len(item_records(dynamodb_endpoint, store.table)) == 3
    assert sorted((e["id"], e["change"]) for e in stream_events(dynamodb_endpoint,
                                                                store.table)) == [
        ("t0", "created"), ("t1", "created"), ("t2", "created")]


def test_the_stream_poller_reads_on_when_its_iterator_is_lost(
        store: ItemStore, dynamodb: Any, dynamodb_endpoint: str) -> None:
    """DynamoDB Local 3.3.0 answers TrimmedDataAccessException to an idle shard's iterator once
    another table is written (AWS's iterators expire after 15 minutes): the local poller takes a
    new iterator where it was, as Lambda does, and loses nothing."""
    arn = dynamodb.describe_table(TableName=store.table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint,
                           region_name=REGION)
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(event["Records"])
        return {"batchItemFailures": []}

    poller = StreamPoller(streams, arn, handler, REGION)
    send = [(parse_command(dumps({"operation": "put", "id": f"p{n}", "item": {}})),
             Stamp(TIME + n, f"p{n}")) for n in range(4)]
    assert poller.poll_once() == 0  # an idle shard: its iterator waits at the start
    other = f"{store.table}-other"
    dynamodb.create_table(TableName=other, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    for n in range(5):
        dynamodb.put_item(TableName=other, Item={"k": {"S": str(n)}})
        poller.poll_once()  # nothing new
    for write in send:
        store.apply(*write)
    for _ in range(10):
        poller.poll_once()
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in seen]
    assert [k for k in keys if k.startswith("item#")] == ["item#p0", "item#p1", "item#p2",
                                                          "item#p3"]


def test_the_stream_poller_gathers_a_batch_for_its_window(
        store: ItemStore, dynamodb: Any, dynamodb_endpoint: str) -> None:
    """MaximumBatchingWindowInSeconds ("Polling and batching streams", Lambda Developer Guide):
    a batch short of its size waits up to the window, and what comes meanwhile joins it; with
    no window, what the shard has goes at once."""
    arn = dynamodb.describe_table(TableName=store.table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint,
                           region_name=REGION)
    batches: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batches.append(len(event["Records"]))
        return {"batchItemFailures": []}

    def write(n: int) -> None:  # an item and its outcome: two records
        store.apply(parse_command(dumps({"operation": "put", "id": f"g{n}", "item": {}})),
                    Stamp(TIME + n, f"g{n}"))

    poller = StreamPoller(streams, arn, handler, REGION, batch_size=4)
    while poller.poll_once():
        pass  # what earlier tests wrote
    batches.clear()
    poller.batching_window = 10.0
    write(0)
    later = threading.Timer(0.3, write, args=(1,))
    later.start()
    assert poller.poll_once() == 4  # waited for the second write: the batch is full
    later.join()
    poller.batching_window = 0
    write(2)
    assert poller.poll_once() == 2
    assert batches == [4, 2]
