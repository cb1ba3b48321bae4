"""What Lambda's DynamoDB stream mapping hands the function, for the local stream poller
(devstack/stream_poller.py): the app's registration of the handler, and each record as Lambda
shapes it. GetRecords gives what Lambda passes on but `eventSourceARN`, and boto3 turns
ApproximateCreationDateTime into a datetime: Lambda hands the function a number of seconds (and
Chalice's DynamoDBRecord requires both)."""

from __future__ import annotations

import datetime
import time
from typing import Any

from chalice.app import Chalice, DynamoDBEventConfig


def stream_event_config(app: Chalice, function_name: str = "publish_changes"
                        ) -> DynamoDBEventConfig:
    """The app's `@app.on_dynamodb_record` registration (batch size, batching window)."""
    for source in app.event_sources:
        if isinstance(source, DynamoDBEventConfig) and source.name == function_name:
            return source
    raise LookupError(f"{function_name} is not registered with @app.on_dynamodb_record")


def lambda_stream_record(record: dict[str, Any], stream_arn: str, region: str
                         ) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime.datetime):
        stream["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    elif created is None:
        stream["ApproximateCreationDateTime"] = float(int(time.time()))
    return {**record, "awsRegion": region, "eventSourceARN": stream_arn, "dynamodb": stream}
