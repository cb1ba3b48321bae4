"""The patched moto server's TransactWriteItems (devstack/moto_patches/dynamodb_transactions.py):
all or nothing, and, unlike moto's own, isolated from concurrent requests (a cancelled
transaction put back a copy of the whole table, erasing what others wrote meanwhile). DynamoDB's
transactions are atomic and isolated ("Isolation levels for DynamoDB transactions", DynamoDB
Developer Guide); what moto answers on cancellation is moto's, unchanged."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack.emulator import MotoServer
from tests.conftest import REGION

TABLE = "transactions"


def client_of(server: MotoServer) -> Any:
    dynamodb = boto3.client("dynamodb", endpoint_url=server.endpoint_url, region_name=REGION)
    dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    return dynamodb


@pytest.fixture
def patched() -> Iterator[Any]:
    with MotoServer() as server:
        yield client_of(server)


def put(pk: str, **extra: Any) -> dict[str, Any]:
    return {"Put": {"TableName": TABLE, "Item": {"pk": {"S": pk}, **extra}}}


def absent(pk: str) -> dict[str, Any]:
    """An action whose condition fails unless pk exists."""
    return {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": pk}},
                               "ConditionExpression": "attribute_exists(pk)"}}


def items(dynamodb: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE):
        found.update((item["pk"]["S"], item) for item in page["Items"])
    return found


def test_a_cancelled_transaction_leaves_every_item_as_it_was(patched: Any) -> None:
    patched.put_item(TableName=TABLE, Item={"pk": {"S": "kept"}, "v": {"N": "1"}})
    before = items(patched)
    with pytest.raises(ClientError) as cancelled:
        patched.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "kept"}},
                        "UpdateExpression": "SET v = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            put("new"), absent("missing")])
    error = cancelled.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in error["CancellationReasons"]] == [
        "None", "None", "ConditionalCheckFailed"]
    assert items(patched) == before  # the update undone, the new item gone
    # Two actions on one item: refused whole, nothing written.
    with pytest.raises(ClientError, match="ValidationException"):
        patched.transact_write_items(TransactItems=[put("other"), put("kept"), put("kept")])
    assert items(patched) == before
    # An action with two operations: refused whole too, after the first action was applied.
    with pytest.raises(ClientError, match="ValidationException"):
        patched.transact_write_items(TransactItems=[put("other"), {
            **put("third"), "Delete": {"TableName": TABLE, "Key": {"pk": {"S": "kept"}}}}])
    assert items(patched) == before
    patched.transact_write_items(TransactItems=[put("kept", v={"N": "3"}), put("new")])
    assert items(patched)["kept"]["v"] == {"N": "3"} and "new" in items(patched)


def lost_writes(dynamodb: Any, writers: int = 4, each: int = 40, filler: int = 500) -> int:
    """Writers commit transactions while another thread's transactions keep being cancelled:
    how many committed writes are missing afterwards. The writes update items that exist (as
    the consumer's do): moto's copy of the table fails, rather than goes stale, when an item is
    added under it. The filler items make that copy take a while, as it does once a table holds
    some data."""
    keys = [f"w{n}-{i}" for n in range(writers) for i in range(each)]
    for start in range(0, len(keys) + filler, 25):
        dynamodb.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": {"pk": {"S": key}, "text": {"S": "x" * 100}}}}
            for key in (keys + [f"filler-{n}" for n in range(filler)])[start:start + 25]]})
    stop = threading.Event()
    answers: Counter[str] = Counter()

    def write(number: int) -> None:
        for index in range(0, each, 2):
            dynamodb.transact_write_items(TransactItems=[
                {"Update": {"TableName": TABLE, "Key": {"pk": {"S": f"w{number}-{i}"}},
                            "UpdateExpression": "SET done = :yes",
                            "ExpressionAttributeValues": {":yes": {"BOOL": True}}}}
                for i in (index, index + 1)])

    def cancel() -> None:
        while not stop.is_set():
            try:
                dynamodb.transact_write_items(TransactItems=[put("never"), absent("missing")])
            except ClientError as error:
                answers[error.response["Error"]["Code"]] += 1

    canceller = threading.Thread(target=cancel)
    canceller.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    canceller.join()
    found = items(dynamodb)
    assert "never" not in found
    assert answers["TransactionCanceledException"] >= writers, answers
    return sum(1 for key in keys if "done" not in found[key])


def test_concurrent_transactions_lose_nothing(patched: Any) -> None:
    assert lost_writes(patched) == 0
