"""What Lambda's DynamoDB stream mapping does with a batch that keeps failing, locally: the
mapping's failure settings, read from infra/extension.yaml (PublishChanges'
PublishChangesDynamodbEventSource, as scripts/stream_mapping.py applies them after `chalice
deploy`), and the invocation record Lambda sends to the on-failure destination.

"Retain discarded records for a DynamoDB event source in Lambda" (Lambda Developer Guide,
services-dynamodb-errors.html): a function error is retried until the records exceed
MaximumRecordAgeInSeconds or the retries reach MaximumRetryAttempts; BisectBatchOnFunctionError
splits a failed batch in two, and "splitting batches doesn't consume the retry quota"; then
Lambda sends a JSON document with metadata about the failed invocation (not the records) to the
destination and goes on with the stream. -1 means no limit (CreateEventSourceMapping, API
reference). The document's fields are those of that page's example invocation record.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devstack.infra import InfraTemplate
from scripts.stream_mapping import EVENT, OVERRIDE

RETRY_ATTEMPTS_EXHAUSTED, RECORD_AGE_EXCEEDED = "RetryAttemptsExhausted", "RecordAgeExceeded"
UNLIMITED = -1

OnFailure = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StreamFailureSettings:
    """The mapping's failure settings. The defaults are Lambda's own (a failed batch retried
    until its records leave the stream), with partial batch responses honoured."""

    report_batch_item_failures: bool = True
    bisect_on_function_error: bool = False
    maximum_retry_attempts: int = UNLIMITED
    maximum_record_age_seconds: int = UNLIMITED

    @classmethod
    def from_infra(cls, infra: InfraTemplate | None = None) -> StreamFailureSettings:
        event = (infra or InfraTemplate()).properties(OVERRIDE)["Events"][EVENT]["Properties"]
        return cls(
            report_batch_item_failures="ReportBatchItemFailures" in event.get(
                "FunctionResponseTypes", []),
            bisect_on_function_error=bool(event.get("BisectBatchOnFunctionError", False)),
            maximum_retry_attempts=int(event.get("MaximumRetryAttempts", UNLIMITED)),
            maximum_record_age_seconds=int(event.get("MaximumRecordAgeInSeconds", UNLIMITED)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def retries_exhausted(self, retries: int) -> bool:
        return self.maximum_retry_attempts != UNLIMITED and retries > self.maximum_retry_attempts

    def too_old(self, record: dict[str, Any], now: float) -> bool:
        created = float(record["dynamodb"]["ApproximateCreationDateTime"])
        return (self.maximum_record_age_seconds != UNLIMITED
                and now - created > self.maximum_record_age_seconds)


def _iso(seconds: float, millis: bool = False) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def invocation_record(batch: Sequence[dict[str, Any]], shard_id: str, function_arn: str,
                      condition: str, invocations: int, function_error: bool, now: float
                      ) -> dict[str, Any]:
    """What Lambda sends the on-failure destination for a discarded batch (the example
    invocation record of "Retain discarded records for a DynamoDB event source in Lambda")."""
    first, last = batch[0], batch[-1]
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": function_arn,
                           "condition": condition, "approximateInvokeCount": invocations},
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now, millis=True),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(
                float(first["dynamodb"]["ApproximateCreationDateTime"])),
            "approximateArrivalOfLastRecord": _iso(
                float(last["dynamodb"]["ApproximateCreationDateTime"])),
            "batchSize": len(batch),
            "streamArn": first["eventSourceARN"],
        },
    }


def sqs_destination(sqs: Any, queue_url: str) -> OnFailure:
    """An on-failure destination that is an SQS queue (the record as the message body)."""

    def send(record: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    return send
