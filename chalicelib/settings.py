"""Settings from the Lambda environment: .chalice/config.json stages, or the merged template."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DAY = 86_400
# The names the local pipeline gives its resources (and the `local` stage in .chalice/config.json,
# checked by a test). Lambda always has TABLE_NAME and QUEUE_NAME set.
LOCAL_TABLE = "sqs-manager-local-table"
LOCAL_QUEUE = "sqs-manager-local-queue"
LOCAL_DLQ = "sqs-manager-local-dlq"
# The change path's: named after the table (devstack/changes.py, ChangeNames).
LOCAL_HISTORY_TABLE = f"{LOCAL_TABLE}-history"
LOCAL_HISTORY_QUEUE = f"{LOCAL_TABLE}-history-queue"
LOCAL_BUS = f"{LOCAL_TABLE}-changes"
# Chalice needs a stream ARN at import; the local pipeline feeds the handler itself (any ARN).
LOCAL_STREAM_ARN = ("arn:aws:dynamodb:local:local:table/sqs-manager-local-table/"
                    "stream/local")
# SQS: a FIFO queue's name (so its ARN) ends in this.
FIFO_SUFFIX = ".fifo"


@dataclass(frozen=True)
class Settings:
    table_name: str
    queue_name: str
    outcome_ttl_seconds: int = 7 * DAY
    # Tombstones of deleted items keep older, late-delivered writes from resurrecting them. They
    # must outlive any message that can still arrive: the DLQ keeps messages up to 14 days.
    tombstone_ttl_seconds: int = 30 * DAY
    # True only where the event source mapping has FunctionResponseTypes ReportBatchItemFailures.
    # Otherwise Lambda ignores batchItemFailures and deletes the whole batch, so the consumer
    # deletes what succeeded itself and raises: see sqs.py.
    report_batch_item_failures: bool = False
    debug_routes: bool = False
    # "iam": the read API answers only SigV4-signed callers with execute-api:Invoke. Only the
    # local stage says "none" (chalice local cannot check IAM anyway).
    read_api_auth: str = "iam"
    # Threads in one invocation: a batch's items are written concurrently (batch.py).
    batch_concurrency: int = 10
    # The first write of each item in a batch go in one DynamoDB transaction (store.py,
    # apply_together); off, each write is its own transaction.
    combine_writes: bool = True
    # In-order results: a write whose condition fails (an update before its create, a create
    # before the delete ahead of it) while earlier requests to the item may still be on their
    # way is tried again after a delay, instead of being rejected, while the request is younger
    # than this window; the delay doubles from condition_retry_delay_seconds.
    in_order_window_seconds: float = 30.0
    condition_retry_delay_seconds: float = 2.0
    # Multiplies the visibility of every message handed back after a transient failure
    # (retries.py): 1 in production; tests compress time with it (0: back at once).
    retry_delay_scale: float = 1.0
    # The change stream (publish.py) and the item history (history.py).
    stream_arn: str = LOCAL_STREAM_ARN
    event_bus_name: str = LOCAL_BUS
    history_table_name: str = LOCAL_HISTORY_TABLE
    history_queue_name: str = LOCAL_HISTORY_QUEUE
    # Longer than outcomes live (7 days): a request's outcome is gone before its history.
    history_retention_seconds: int = 90 * DAY
    # True only where the stream's event source mapping has ReportBatchItemFailures (the
    # packaged stack; `make deploy` sets it after chalice deploy): otherwise the handler raises
    # on a failure, so that Lambda retries the whole batch rather than ignore the failure.
    stream_report_batch_item_failures: bool = False

    @property
    def fifo(self) -> bool:
        return self.queue_name.endswith(FIFO_SUFFIX)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            table_name=environ.get("TABLE_NAME", LOCAL_TABLE),
            queue_name=environ.get("QUEUE_NAME", LOCAL_QUEUE),
            outcome_ttl_seconds=int(float(environ.get("OUTCOME_TTL_DAYS", "7")) * DAY),
            tombstone_ttl_seconds=int(float(environ.get("TOMBSTONE_TTL_DAYS", "30")) * DAY),
            report_batch_item_failures=_flag(environ.get("REPORT_BATCH_ITEM_FAILURES", "false")),
            debug_routes=_flag(environ.get("DEBUG_ROUTES", "0")),
            read_api_auth=environ.get("READ_API_AUTH", "iam").strip().lower(),
            batch_concurrency=max(1, int(environ.get("BATCH_CONCURRENCY", "10"))),
            combine_writes=_flag(environ.get("COMBINE_WRITES", "true")),
            in_order_window_seconds=float(environ.get("IN_ORDER_WINDOW_SECONDS", "30")),
            condition_retry_delay_seconds=float(
                environ.get("CONDITION_RETRY_DELAY_SECONDS", "2")),
            retry_delay_scale=max(0.0, float(environ.get("RETRY_DELAY_SCALE", "1"))),
            stream_arn=environ.get("STREAM_ARN") or LOCAL_STREAM_ARN,
            event_bus_name=environ.get("EVENT_BUS_NAME", LOCAL_BUS),
            history_table_name=environ.get("HISTORY_TABLE_NAME", LOCAL_HISTORY_TABLE),
            history_queue_name=environ.get("HISTORY_QUEUE_NAME", LOCAL_HISTORY_QUEUE),
            history_retention_seconds=int(float(environ.get("HISTORY_RETENTION_DAYS", "90"))
                                          * DAY),
            stream_report_batch_item_failures=_flag(
                environ.get("STREAM_REPORT_BATCH_ITEM_FAILURES", "false")),
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}
