"""What Lambda's SQS event source mapping hands the function, for the local pollers
(devstack/poller.py, and the benchmarks that invoke the handler directly): the app's
registration of the handler, each message as a Lambda record, and the context object."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from chalice.app import Chalice, SQSEventConfig


def sqs_event_config(app: Chalice, function_name: str = "handle_messages") -> SQSEventConfig:
    """The app's `@app.on_sqs_message` registration (batch size, batching window)."""
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig) and source.name == function_name:
            return source
    raise LookupError(f"{function_name} is not registered with @app.on_sqs_message")


class LocalLambdaContext:
    """The attributes of Lambda's context object that handlers commonly use."""

    def __init__(self, function_name: str, timeout_seconds: float, region: str,
                 account: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to the function (note the lower-case attribute keys).
    `attributes` are SQS's system attributes as received; from a FIFO queue they include
    MessageGroupId, MessageDeduplicationId and SequenceNumber, as in Lambda's FIFO events."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value["DataType"],
        }
        if "BinaryValue" in value:
            attributes[name]["binaryValue"] = value["BinaryValue"]
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
