"""Lambda SQS events made here, for the debug route (`chalice local --stage local`)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH
from chalicelib.settings import Settings


def region(environ: Mapping[str, str] = os.environ) -> str:
    """The region the function runs in: Lambda sets AWS_REGION, the AWS CLI and SDKs read
    AWS_DEFAULT_REGION; empty if neither is set."""
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""


def single_message_event(body: str, settings: Settings,
                         region_name: str | None = None) -> dict[str, Any]:
    """A Lambda SQS event of one message, as if API Gateway had just enqueued body."""
    where = region() if region_name is None else region_name
    now_ms = int(time.time() * 1000)
    request_id = str(uuid.uuid4())
    return {"Records": [{
        "messageId": request_id,
        "receiptHandle": "",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(now_ms)},
        "messageAttributes": {
            REQUEST_ID: {"stringValue": request_id, "dataType": "String",
                         "stringListValues": [], "binaryListValues": []},
            REQUEST_TIME_EPOCH: {"stringValue": str(now_ms), "dataType": "Number",
                                 "stringListValues": [], "binaryListValues": []},
        },
        "eventSource": "aws:sqs",
        # No account: the function's own (what get_queue_url assumes without an owner).
        "eventSourceARN": f"arn:aws:sqs:{where}::{settings.queue_name}",
        "awsRegion": where,
    }]}
