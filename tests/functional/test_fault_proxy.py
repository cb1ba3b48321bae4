"""devstack's fault proxy in front of the emulator over HTTP: chosen writes answered with errors a
given number of times, then forwarded."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.faults import SERVER_ERROR, THROTTLE, Fault, FaultProxy
from devstack.resources import Resources
from tests.conftest import REGION


def test_fault_proxy_throttles_n_times_then_forwards(endpoint_url: str,
                                                     resources: Resources) -> None:
    with FaultProxy(endpoint_url) as proxy:
        fault = proxy.add(Fault("MARKER", THROTTLE, times=2))
        always = proxy.add(Fault("DOOMED", SERVER_ERROR, times=None))
        dynamodb = boto3.client("dynamodb", endpoint_url=proxy.url, region_name=REGION,
                                config=Config(retries={"mode": "standard",
                                                          "total_max_attempts": 1}))
        item = {"pk": {"S": "MARKER"}}
        for _ in range(2):
            with pytest.raises(ClientError) as caught:
                dynamodb.put_item(TableName=resources.table_name, Item=item)
            assert caught.value.response["Error"]["Code"] == (
                "ProvisionedThroughputExceededException")
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        dynamodb.put_item(TableName=resources.table_name, Item=item)  # third time: forwarded
        assert dynamodb.get_item(TableName=resources.table_name, Key=item)["Item"] == item
        for _ in range(3):
            with pytest.raises(ClientError) as caught:
                dynamodb.put_item(TableName=resources.table_name, Item={"pk": {"S": "DOOMED"}})
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert fault.injected == 2 and always.injected == 3
