"""Move messages from the dead-letter queue back to the queue, as SQS's StartMessageMoveTask does
on AWS (moto does not implement it): body and message attributes unchanged, so the consumer
still knows each request's requestId and requestTimeEpoch. A request that was applied after all
is not applied twice, and an older write is still not allowed to overwrite a newer one. A message
sent straight to the queue (no such attributes) gets them from its messageId and SentTimestamp.

    python -m devstack.redrive [--endpoint-url http://127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from chalicelib.commands import REQUEST_ID, REQUEST_TIME_EPOCH
from devstack.resources import DEFAULT_DLQ, DEFAULT_QUEUE, client


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    kept = ("DataType", "StringValue", "BinaryValue")
    attributes = {name: {k: v for k, v in value.items() if k in kept}
                  for name, value in (message.get("MessageAttributes") or {}).items()}
    # A message sent straight to the queue is known by its messageId and SentTimestamp, which
    # a move would change: pin them as the attributes the gateway would have set.
    attributes.setdefault(REQUEST_ID, {"DataType": "String", "StringValue": message["MessageId"]})
    attributes.setdefault(REQUEST_TIME_EPOCH, {
        "DataType": "Number", "StringValue": message["Attributes"]["SentTimestamp"]})
    return attributes


def redrive(sqs: Any, dlq_url: str, queue_url: str, limit: int | None = None) -> int:
    """Move up to `limit` messages (all, by default); returns how many were moved."""
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=batch,
                                       WaitTimeSeconds=0, MessageAttributeNames=["All"],
                                       AttributeNames=["SentTimestamp"],
                                       VisibilityTimeout=30).get("Messages", [])
        if not messages:
            return moved
        entries = [{"Id": str(i), "MessageBody": m["Body"],
                    "MessageAttributes": _attributes(m)}
                   for i, m in enumerate(messages)]
        sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Successful", [])
        # Delete only what reached the queue: the rest stays in the DLQ for the next run.
        done = [{"Id": s["Id"], "ReceiptHandle": messages[int(s["Id"])]["ReceiptHandle"]}
                for s in sent]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        moved += len(done)
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL",
                                                                 "http://127.0.0.1:5000"))
    parser.add_argument("--queue-name", default=DEFAULT_QUEUE)
    parser.add_argument("--dlq-name", default=DEFAULT_DLQ)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    sqs = client("sqs", args.endpoint_url)
    moved = redrive(sqs, sqs.get_queue_url(QueueName=args.dlq_name)["QueueUrl"],
                    sqs.get_queue_url(QueueName=args.queue_name)["QueueUrl"], args.limit)
    print(f"moved {moved} message(s) from {args.dlq_name} to {args.queue_name}")


if __name__ == "__main__":
    main()
