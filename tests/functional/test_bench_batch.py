"""The P2 benchmark's parts against real emulators: the proxy counts what it forwards by
operation, and one round of bench.batch writes the results with exact call counts."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from bench import batch
from devstack.dynamodb_local import DynamoDBLocal
from devstack.faults import FaultProxy
from devstack.resources import Resources
from tests.conftest import REGION


def test_the_proxy_counts_forwarded_requests_by_operation(dynamodb_endpoint: str,
                                                          resources: Resources) -> None:
    with FaultProxy(dynamodb_endpoint, latency_ms=5) as proxy:
        dynamodb = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION)
        item = {"pk": {"S": "counted"}}
        dynamodb.put_item(TableName=resources.table_name, Item=item)
        assert dynamodb.get_item(TableName=resources.table_name, Key=item)["Item"] == item
        dynamodb.put_item(TableName=resources.table_name, Item=item)
        assert dict(proxy.calls) == {"PutItem": 2, "GetItem": 1}
        assert proxy.forwarded == 3
        proxy.reset_counts()
        dynamodb.describe_table(TableName=resources.table_name)
        assert dict(proxy.calls) == {"DescribeTable": 1} and proxy.forwarded == 1


def test_two_rounds_of_the_batch_benchmark(tmp_path: Path, endpoint_url: str,
                                           dynamodb_local: DynamoDBLocal,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    assert batch.run(latency_ms=0, rounds=2, results_path=path, moto_url=endpoint_url,
                     dynamodb_url=dynamodb_local.endpoint_url, warmup=2) == 0
    written = json.loads(path.read_text())
    assert {"batch_latency_ratio", "ddb_calls_per_write"} <= set(written)
    details = written["details"]["bench.batch"]
    # 2 rounds of 10 messages, one per item: one TransactWriteItems per batch.
    assert details["consumer_applied_writes"] == 20
    assert details["consumer_calls"] == {"TransactWriteItems": 2}
    assert written["ddb_calls_per_write"] == 0.1
    # Every item the consumer wrote (warm-up included) was read back with its version: 20 each
    # for the 10-message consumer and the transaction sent alone.
    assert details["items_checked"] == 40
    assert details["transaction_alone_ratio"] > 0
    assert details["warmup_rounds"] == 2
    out = capsys.readouterr().out
    assert "its transaction alone (built beforehand)" in out and "warm-up (2 rounds" in out
    assert "seed" not in out  # the comparison with other consumers is bench.versus's
