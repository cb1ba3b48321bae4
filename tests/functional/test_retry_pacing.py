"""Retries paced by the consumer (chalicelib/retries.py), through moto's SQS over HTTP: the
consumer sets the visibility of what it hands back in one ChangeMessageVisibilityBatch call, the
local event source (like Lambda's) receives it again only then, and an outage longer than
maxReceiveCount x the queue's timeout sends nothing to the DLQ. Timings compressed with
RETRY_DELAY_SCALE and a small maxReceiveCount; the full-size figures: docs/reliability.md."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from chalicelib import BatchProcessor, ItemStore, Settings
from chalicelib.clients import client_config
from chalicelib.retries import PACE_SECONDS
from devstack.faults import Fault, FaultProxy
from devstack.poller import SqsPoller
from devstack.resources import Resources, queue_depth
from tests.conftest import REGION
from tests.waiting import wait_until

pytestmark = [pytest.mark.both_stores, pytest.mark.queue_behaviour]  # SQS's part: moto only

SCALE = 0.2  # the outage pace, 20 s, becomes 4 s (SQS visibilities are whole seconds)
NAIVE_TIMEOUT = 1  # the poller's receive visibility: what a failed message waits, unpaced
RECEIVES = 4  # the queue's maxReceiveCount here: unpaced, an outage of 4 s fills the DLQ


class CountingSqs:
    """A real SQS client that counts the calls made through it."""

    def __init__(self, endpoint_url: str) -> None:
        self.client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=REGION)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.client, name)


@pytest.fixture
def proxy(dynamodb_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(dynamodb_endpoint) as running:
        yield running


@pytest.fixture
def counting_sqs(endpoint_url: str) -> CountingSqs:
    return CountingSqs(endpoint_url)


@pytest.fixture
def poller(resources: Resources, sqs: Any, proxy: FaultProxy,
           counting_sqs: CountingSqs) -> SqsPoller:
    sqs.set_queue_attributes(QueueUrl=resources.queue_url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": resources.dlq_arn, "maxReceiveCount": RECEIVES})})
    settings = Settings(table_name=resources.table_name, queue_name=resources.queue_name,
                        report_batch_item_failures=True, batch_concurrency=1,
                        retry_delay_scale=SCALE)
    # One attempt a call: a delivery during the outage takes milliseconds, so that receives
    # are spent at the pace of the visibility alone (the consumer's own client retries once).
    client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                          config=client_config().merge(Config(retries={"total_max_attempts": 1})))
    processor = BatchProcessor(ItemStore(client, settings), settings, lambda: counting_sqs)
    return SqsPoller(sqs, resources.queue_url, resources.queue_arn,
                     lambda event, context: processor.process(event["Records"], context),
                     REGION, batch_size=10, visibility_timeout=NAIVE_TIMEOUT,
                     max_receive_count=RECEIVES)


def send(sqs: Any, resources: Resources, *ids: str) -> None:
    for n, item_id in enumerate(ids):
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(
            {"operation": "put", "id": item_id, "item": {"n": n}}), MessageAttributes={
            "requestId": {"DataType": "String", "StringValue": f"r-{item_id}"},
            "requestTimeEpoch": {"DataType": "Number", "StringValue": str(1000 + n)}})


def test_a_failed_message_comes_back_when_the_consumer_says_in_one_call(
        poller: SqsPoller, resources: Resources, sqs: Any, proxy: FaultProxy,
        counting_sqs: CountingSqs) -> None:
    proxy.add(Fault('"item#slow"', times=None))  # throttled, every time
    send(sqs, resources, "slow", "fine")
    assert poller.poll_once() == 2
    # One call for the batch (no per-message ChangeMessageVisibility), chunks of 10.
    assert counting_sqs.calls.count("change_message_visibility_batch") == 1
    assert "change_message_visibility" not in counting_sqs.calls
    # The failed message's visibility is the consumer's (receive 1 of a lone throttle:
    # ceil(0.2 x [0.75, 1] s) = 1 s here), not the queue's nor the poller's default: with the
    # receive's visibility raised to 30 s, it still comes back within a few seconds.
    poller.visibility_timeout = 30
    back = wait_until(poller.receive_batch, 10, what="the failed message did not come back")
    assert [json.loads(m["Body"])["id"] for m in back] == ["slow"]
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_an_outage_longer_than_max_receives_times_the_timeout_sends_nothing_to_the_dlq(
        poller: SqsPoller, resources: Resources, sqs: Any, proxy: FaultProxy) -> None:
    ids = [f"o{n}" for n in range(3)]
    send(sqs, resources, *ids)
    outage = RECEIVES * NAIVE_TIMEOUT + 2  # longer than unpaced retries survive
    proxy.down = True
    started = time.monotonic()
    while time.monotonic() - started < outage:
        poller.poll_once()
    proxy.down = False
    ended = time.monotonic()
    drained = False
    # Each is back within the outage pace (4 s here, 20 s at full scale): given 3 times that.
    while not drained and time.monotonic() - ended < 3 * PACE_SECONDS * SCALE:
        poller.poll_once()
        drained = queue_depth(sqs, resources.queue_url) == 0
    assert proxy.refused > 0
    assert queue_depth(sqs, resources.dlq_url, in_flight=False) == 0
    assert drained, "not all applied after the outage"
    table = boto3.client("dynamodb", endpoint_url=proxy.target.geturl(), region_name=REGION)
    for item_id in ids:
        outcome = table.get_item(TableName=resources.table_name,
                                 Key={"pk": {"S": f"request#r-{item_id}"}})["Item"]
        assert outcome["status"]["S"] == "applied"
