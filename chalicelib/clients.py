"""The boto3 clients (DynamoDB, SQS, EventBridge) and the time budget their settings give a message.

Both fail fast and let SQS retry: botocore's legacy DynamoDB policy retries 10 times, which could
hold a batch for most of the Lambda timeout.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Time, so that one message cannot outlast what the consumer keeps for it (batch.py). A call
# takes at most MAX_ATTEMPTS x (connect + read timeouts), plus standard-mode backoff (under 1 s
# before the one retry); a message makes at most two calls (its write, then a recorded
# rejection; a read, then its outcome).
CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS = 1, 2, 2
CALL_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 1
MESSAGE_SECONDS = 2 * CALL_SECONDS


def client_config() -> Config:
    # No client-side parameter validation: DynamoDB validates every request anyway (and its
    # ValidationException becomes a rejection), while botocore's walk of a transaction's
    # attribute values costs about 1 ms of CPU per write (docs/benchmarks.md, "Decisions").
    return Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                  parameter_validation=False)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=client_config())


def sqs_client() -> Any:
    return boto3.client("sqs", config=client_config())


def events_client() -> Any:
    return boto3.client("events", config=client_config())
