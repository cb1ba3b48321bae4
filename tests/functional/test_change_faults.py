"""R6's fault modes (bench/reliability_history.py), against moto over HTTP: the fault proxy answers
PutEvents as EventBridge fails it, whole calls and entry by entry (devstack/eventbridge_faults.py
cites AWS), and the stream poller's mid-batch crash hook publishes part of a batch, then Lambda's
retry hands the whole batch over again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib import ItemStore, Stamp, dumps, parse_command
from devstack.faults import ENTRIES, SERVER_ERROR, THROTTLE, FaultProxy, RandomFaults
from devstack.stream_poller import StreamPoller
from tests.conftest import REGION

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


def bus_to_queue(endpoint_url: str, name: str) -> str:
    """A bus whose rule sends every event to a queue; the queue's URL."""
    events = boto3.client("events", endpoint_url=endpoint_url, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    events.create_event_bus(Name=name)
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["t"]}))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def delivered(endpoint_url: str, queue_url: str) -> list[int]:
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)
    found = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10
                                          ).get("Messages", []):
        found += [json.loads(m["Body"])["detail"]["n"] for m in messages]
    return sorted(found)


def entries(bus: str, count: int) -> list[dict[str, Any]]:
    return [{"Source": "t", "DetailType": "d", "Detail": json.dumps({"n": n}),
             "EventBusName": bus} for n in range(count)]


def test_putevents_fails_entry_by_entry_and_only_the_others_reach_the_bus(
        endpoint_url: str) -> None:
    queue_url = bus_to_queue(endpoint_url, "entries")
    faults = RandomFaults(1.0, seed=3, kinds=(ENTRIES,), operation="PutEvents")
    with FaultProxy(endpoint_url) as proxy:
        proxy.random = faults
        events = boto3.client("events", endpoint_url=proxy.url, region_name=REGION,
                              config=ONE_ATTEMPT)
        answer = events.put_events(Entries=entries("entries", 10))
    failed = [n for n, e in enumerate(answer["Entries"]) if "ErrorCode" in e]
    assert len(answer["Entries"]) == 10 and 0 < len(failed) < 10
    assert answer["FailedEntryCount"] == len(failed) == faults.failed_entries
    assert {answer["Entries"][n]["ErrorCode"] for n in failed} <= {"InternalFailure",
                                                                   "ThrottlingException"}
    assert all("EventId" in e for e in answer["Entries"] if "ErrorCode" not in e)
    assert delivered(endpoint_url, queue_url) == [n for n in range(10) if n not in failed]


@pytest.mark.parametrize(("kind", "code"), [(THROTTLE, "ThrottlingException"),
                                            (SERVER_ERROR, "InternalException")])
def test_a_whole_putevents_call_fails_as_eventbridge_answers(
        endpoint_url: str, kind: str, code: str) -> None:
    queue_url = bus_to_queue(endpoint_url, f"whole-{kind}")
    with FaultProxy(endpoint_url) as proxy:
        proxy.random = RandomFaults(1.0, kinds=(kind,), operation="PutEvents")
        events = boto3.client("events", endpoint_url=proxy.url, region_name=REGION,
                              config=ONE_ATTEMPT)
        with pytest.raises(ClientError) as raised:
            events.put_events(Entries=entries(f"whole-{kind}", 2))
    assert raised.value.response["Error"]["Code"] == code
    assert delivered(endpoint_url, queue_url) == []


def test_a_stream_crash_publishes_part_of_a_batch_then_the_whole_batch_again(
        store: ItemStore, dynamodb: Any, dynamodb_endpoint: str) -> None:
    arn = dynamodb.describe_table(TableName=store.table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint,
                           region_name=REGION)
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        return {"batchItemFailures": []}

    poller = StreamPoller(streams, arn, handler, REGION, crash_every=2)
    for batch in range(2):
        for n in range(3):
            command = parse_command(dumps({"operation": "put", "id": f"c{batch}{n}", "item": {}}))
            store.apply(command, Stamp(1_700_000_000_000 + n, f"c{batch}{n}"))
        for _ in range(3):  # the batch, then (after the crash) the whole batch again
            poller.poll_once()
    assert poller.crashes == 1 and poller.invocations == 3
    first, crashed, retried = calls
    assert 0 < len(crashed) < len(retried) and retried[:len(crashed)] == crashed
    assert not set(first) & set(retried)
