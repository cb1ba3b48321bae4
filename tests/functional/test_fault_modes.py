"""The reliability runs' two fault modes (bench/reliability.py), against moto over HTTP: the fault
proxy's random mode, and the poller's mid-batch crash (a test hook of devstack, not of the
consumer)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.faults import SERVER_ERROR_AFTER, TRANSIENT_KINDS, FaultProxy, RandomFaults
from devstack.poller import SqsPoller
from devstack.resources import Resources, queue_depth
from tests.conftest import REGION

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})


def failures(endpoint_url: str, table: str, faults: RandomFaults, count: int) -> list[str]:
    """Send `count` PutItems through a proxy with `faults`; the error code of each, or ''."""
    codes = []
    with FaultProxy(endpoint_url) as proxy:
        proxy.random = faults
        dynamodb = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                                config=ONE_ATTEMPT)
        for n in range(count):
            try:
                dynamodb.put_item(TableName=table, Item={"pk": {"S": f"random-{n}"}})
                codes.append("")
            except ClientError as error:
                codes.append(str(error.response["Error"]["Code"]))
    return codes


def test_random_faults_fail_about_the_rate_repeatably_and_are_counted(
        endpoint_url: str, resources: Resources) -> None:
    faults = RandomFaults(0.3, seed=11)
    codes = failures(endpoint_url, resources.table_name, faults, 60)
    failed = [c for c in codes if c]
    assert faults.seen == 60
    assert len(failed) == faults.total_injected
    assert 5 <= len(failed) <= 35  # binomial(60, 0.3): 18 expected; seeded, so it is fixed
    assert set(faults.injected) <= set(TRANSIENT_KINDS)
    assert set(failed) <= {"ProvisionedThroughputExceededException", "InternalServerError"}
    again = RandomFaults(0.3, seed=11)
    assert failures(endpoint_url, resources.table_name, again, 60) == codes
    assert again.injected == faults.injected


def test_a_500_after_the_store_served_the_request_still_wrote(
        endpoint_url: str, resources: Resources) -> None:
    faults = RandomFaults(1.0, kinds=(SERVER_ERROR_AFTER,))
    assert failures(endpoint_url, resources.table_name, faults, 1) == ["InternalServerError"]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=REGION)
    found = dynamodb.get_item(TableName=resources.table_name, Key={"pk": {"S": "random-0"}})
    assert found["Item"] == {"pk": {"S": "random-0"}}


def test_random_faults_refuse_a_rate_or_kind_that_makes_no_sense() -> None:
    with pytest.raises(ValueError, match="rate"):
        RandomFaults(1.5)
    with pytest.raises(ValueError, match="kinds"):
        RandomFaults(0.1, kinds=("teapot",))


def test_a_crash_handles_part_of_the_batch_and_deletes_nothing(sqs: Any,
                                                               resources: Resources) -> None:
    for n in range(4):
        sqs.send_message(QueueUrl=resources.queue_url, MessageBody=f"m{n}")
    handled: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        handled.append([record["body"] for record in event["Records"]])
        return {"batchItemFailures": []}

    poller = SqsPoller(sqs, resources.queue_url, resources.queue_arn, handler, REGION,
                       batch_size=10, visibility_timeout=1, crash_every=1)
    batch = 0
    for _ in range(10):  # bounded: until the 4 messages came in one batch
        batch = poller.poll_once()
        if batch:
            break
    assert batch >= 2 and poller.crashes == 1
    [part] = handled
    assert 1 <= len(part) < batch
    assert queue_depth(sqs, resources.queue_url) == 4  # nothing deleted
