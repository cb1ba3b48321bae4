"""The local stream poller fails a batch as Lambda's DynamoDB stream mapping does with the settings
both deploy paths give it (infra/extension.yaml, read by devstack/stream_failures.py): a function
error bisects the batch, a split costs no retry, and after the retry cap or past the maximum record
age the batch's invocation record goes to the on-failure queue ("Retain discarded records for a
DynamoDB event source in Lambda", Lambda Developer Guide). Against moto's stream over HTTP."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import boto3

from devstack.changes import ChangeNames, ensure_change_resources
from devstack.stream_failures import StreamFailureSettings, sqs_destination
from devstack.stream_poller import StreamPoller
from tests.conftest import REGION

SETTINGS = StreamFailureSettings.from_infra()


def streamed_table(dynamodb: Any, keys: list[str]) -> tuple[str, str]:
    """A new table with a stream and one item per key; its name and stream ARN."""
    name = f"onfail-{uuid.uuid4().hex[:8]}"
    described = dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    for key in keys:
        dynamodb.put_item(TableName=name, Item={"pk": {"S": key}})
    return name, str(described["TableDescription"]["LatestStreamArn"])


def failure_queue(endpoint_url: str) -> tuple[Any, str]:
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)
    return sqs, str(sqs.create_queue(QueueName=f"onfail-{uuid.uuid4().hex[:8]}")["QueueUrl"])


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def key(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def test_the_infra_settings_are_the_ones_the_poller_gets() -> None:
    # Not copied by hand: the template's mapping is what CloudFormation and the deploy script set.
    assert SETTINGS.report_batch_item_failures and SETTINGS.bisect_on_function_error
    assert SETTINGS.maximum_retry_attempts == 10
    assert SETTINGS.maximum_record_age_seconds == 21_600


def test_a_failing_record_is_bisected_out_and_kept_by_the_on_failure_queue(
        dynamodb: Any, endpoint_url: str) -> None:
    keys = [f"k{n}" for n in range(6)]
    table, arn = streamed_table(dynamodb, keys)
    sqs, url = failure_queue(endpoint_url)
    published: list[str] = []
    alone: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batch = [key(r) for r in event["Records"]]
        if "k3" in batch:
            alone.append(len(batch) == 1)
            raise RuntimeError("k3 cannot be published")
        published.extend(batch)
        return {"batchItemFailures": []}

    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=REGION)
    poller = StreamPoller(streams, arn, handler, REGION, failure=SETTINGS,
                          on_failure=sqs_destination(sqs, url), retry_delay=0.0)
    for _ in range(40):
        poller.poll_once()
    assert published == ["k0", "k1", "k2", "k4", "k5"]
    # Bisected down to k3 alone, then tried once and retried MaximumRetryAttempts times.
    assert alone.count(True) == SETTINGS.maximum_retry_attempts + 1
    [record] = received(sqs, url)
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    bad = next(r for r in streams.get_records(ShardIterator=streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"])["Records"] if key(r) == "k3")["dynamodb"]["SequenceNumber"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] > SETTINGS.maximum_retry_attempts
    assert record["requestContext"]["functionArn"].endswith(":function:publish_changes")
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["version"] == "1.0"
    info = record["DDBStreamBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"],
            info["batchSize"], info["streamArn"]) == (shard["ShardId"], bad, bad, 1, arn)
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    dynamodb.delete_table(TableName=table)


def test_records_older_than_the_maximum_age_go_to_the_on_failure_queue_unread(
        dynamodb: Any, endpoint_url: str) -> None:
    table, arn = streamed_table(dynamodb, ["old0", "old1"])
    sqs, url = failure_queue(endpoint_url)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(key(r) for r in event["Records"])
        return {"batchItemFailures": []}

    # The poller's clock, not a sleep: creation times are whole seconds, and a loaded machine
    # takes any time between a write and its poll. First an hour on (the two records are
    # older than the maximum age), then now (the new record is not).
    later = [time.time() + 3600]
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint_url, region_name=REGION)
    poller = StreamPoller(streams, arn, handler, REGION, on_failure=sqs_destination(sqs, url),
                          failure=dataclasses.replace(SETTINGS, maximum_record_age_seconds=60),
                          clock=lambda: later[0])
    assert poller.poll_once() == 2
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "new"}})
    later[0] = time.time()
    assert poller.poll_once() == 1
    assert seen == ["new"]
    [record] = received(sqs, url)
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2
    assert "functionError" not in record["responseContext"]
    dynamodb.delete_table(TableName=table)


def test_make_run_creates_the_on_failure_queue(dynamodb: Any, endpoint_url: str) -> None:
    table, _ = streamed_table(dynamodb, [])
    changes = ensure_change_resources(endpoint_url, None, ChangeNames(table))
    assert changes.stream_failure_queue_url.endswith(f"/{table}-stream-failures")
