"""Lambda's SQS event source mapping, locally: poll, invoke the handler, delete what succeeded.

What Lambda does for an SQS trigger, as far as the consumer can tell: long polling, batches of up to
`batch_size` gathered for at most the batching window, a Lambda-shaped event
(devstack/lambda_events.py), then
- handler returns: every message is deleted, except (only with ReportBatchItemFailures) the ones
  named in `batchItemFailures`;
- handler raises: nothing is deleted; the messages reappear after the visibility timeout and, past
  the redrive policy's maxReceiveCount, SQS (moto: on the next receive) moves them to the DLQ.
Neither touches a message's visibility, as Lambda does not: a failed message reappears when the
visibility the consumer set on it (ChangeMessageVisibilityBatch, on the emulator) runs out, or
else the receive's (the queue's visibility timeout, or `visibility_timeout` if given).

A test hook, `crash_every=N`: every Nth invocation (of a batch of at least two messages) dies
mid-batch as a Lambda whose process dies does: the handler runs on some of the batch's messages
(a random part of 1 to n-1: a batch's items run concurrently, so any part can be done first),
then the invocation ends with nothing deleted and no answer. All n messages come back after the
visibility timeout; those already handled must have no second effect.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.commands import record_stamp
from devstack.lambda_events import LocalLambdaContext, lambda_record

LOG = logging.getLogger("devstack.poller")

Handler = Callable[[dict[str, Any], Any], Any]
# The pause between receives while a batch gathers. A receive answers as soon as one message is
# there, so receiving again at once cost a call per message or two at a steady rate (25 receives
# for a trickle of 8 in tests/functional/test_poller_gathering.py). 0.25 s cost less CPU but
# more latency than P4 allows (docs/benchmarks.md, decisions).
# Lambda only promises "the maximum amount of time ... that Lambda spends gathering records"
# (MaximumBatchingWindowInSeconds, CreateEventSourceMapping in the Lambda API Reference).
GATHER_PAUSE_SECONDS = 0.1
# requestId -> the consumer's recorded outcome ({"status": "applied" | "rejected", ...}) or None.
OutcomeLookup = Callable[[str], "dict[str, Any] | None"]


def request_id_of(record: dict[str, Any]) -> str:
    """The requestId the consumer will use (the messageId for a message without attributes)."""
    return record_stamp(record).request_id


class PollingThread:
    """A poller's thread: `_run` loops until asked to stop. Several pollers stop together:
    request_stop() on each, then stop() joins each for what is left of the time."""

    STOP_SECONDS = 25.0  # how long stop() waits for the batch in hand

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Stop after the current batch."""
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.STOP_SECONDS if timeout is None else timeout)
            self._thread = None

    def _run(self) -> None:
        raise NotImplementedError


class SqsPoller(PollingThread):
    """One poller thread, like one concurrent Lambda invocation of the event source mapping."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, handler: Handler,
                 region: str, batch_size: int = 10, batching_window: float = 0,
                 honour_batch_item_failures: bool = True,
                 visibility_timeout: int | None = None, function_name: str = "handle_messages",
                 function_timeout: float = 30.0, max_receive_count: int = 0,
                 outcome_lookup: OutcomeLookup | None = None, name: str = "sqs-poller",
                 crash_every: int = 0) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.region = region
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.honour_batch_item_failures = honour_batch_item_failures
        self.visibility_timeout = visibility_timeout
        self.function_name = function_name
        self.function_timeout = function_timeout
        self.max_receive_count = max_receive_count
        self.outcome_lookup = outcome_lookup
        super().__init__(name)
        self.invocations = 0
        self.crash_every = crash_every
        self.crashes = 0
        self._crash_rng = random.Random(crash_every)

    # --- lifecycle -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError) as error:
                # The emulator restarting or going away must not kill the poller.
                LOG.warning("polling failed: %s", error)
                self._stop.wait(1.0)

    # --- one batch -------------------------------------------------------------------------
    def _receive(self, wait: int, limit: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.queue_url, "WaitTimeSeconds": wait,
            "MaxNumberOfMessages": max(1, min(10, limit)),
            "AttributeNames": ["All"], "MessageAttributeNames": ["All"],
        }
        if self.visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = self.visibility_timeout
        messages: list[dict[str, Any]] = self.sqs.receive_message(**kwargs).get("Messages", [])
        return messages

    def receive_batch(self) -> list[dict[str, Any]]:
        """Long-poll for a first message, then gather up to batch_size within the window,
        receiving every GATHER_PAUSE_SECONDS (and once more when the window ends)."""
        # 1 s long polls (not 20) keep Ctrl-C responsive; the queue sees the same traffic shape.
        messages = self._receive(1, self.batch_size)
        if not messages:
            return []
        deadline = time.monotonic() + self.batching_window
        while len(messages) < self.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._stop.wait(min(GATHER_PAUSE_SECONDS, remaining))
            remaining = deadline - time.monotonic()
            messages.extend(self._receive(max(0, min(20, int(remaining))),
                                          self.batch_size - len(messages)))
        return messages

    def poll_once(self) -> int:
        """Receive one batch and invoke the handler on it; returns how many messages it had."""
        messages = self.receive_batch()
        if not messages:
            return 0
        records = [lambda_record(m, self.queue_arn, self.region) for m in messages]
        if self._crash_due(len(records)):
            self.crash(records)
        else:
            self.invoke(records)
        return len(records)

    def _context(self) -> LocalLambdaContext:
        account = self.queue_arn.split(":")[4]  # the emulator's (or your) account
        return LocalLambdaContext(self.function_name, self.function_timeout, self.region,
                                  account)

    def _crash_due(self, size: int) -> bool:
        if not self.crash_every or size < 2:
            return False  # a crash needs a part of the batch done and a part not
        return (self.invocations + 1) // self.crash_every > self.crashes

    def crash(self, records: list[dict[str, Any]]) -> None:
        """Die mid-batch: the handler handles part of the batch, then nothing is deleted."""
        self.invocations += 1
        self.crashes += 1
        done = self._crash_rng.sample(records, self._crash_rng.randint(1, len(records) - 1))
        try:
            self.handler({"Records": done}, self._context())
        except Exception as error:
            LOG.debug("crashing invocation raised: %s", error)
        LOG.warning("crash #%d (test hook): invocation died after handling %d of %d messages; "
                    "nothing deleted, all come back after the visibility timeout: %s",
                    self.crashes, len(done), len(records),
                    " ".join(request_id_of(r) for r in records))

    def invoke(self, records: list[dict[str, Any]]) -> None:
        self.invocations += 1
        context = self._context()
        try:
            result = self.handler({"Records": records}, context)
        except Exception as error:
            why = f"handler raised {type(error).__name__}: {error}"
            for record in records:
                # In safe mode the handler deleted what it handled before raising. (Looking
                # that up costs a read per message: only when someone reads the log line.)
                outcome = self._outcome(record) if LOG.isEnabledFor(logging.INFO) else None
                if outcome is not None:
                    self._log_done(record, " (handled, then the batch raised)", outcome)
                else:
                    self._log_retry(record, why)
            return
        failed: set[str] = set()
        if self.honour_batch_item_failures and isinstance(result, dict):
            failed = {str(item.get("itemIdentifier"))
                      for item in result.get("batchItemFailures") or []}
            if "None" in failed or "" in failed:
                # Lambda treats a malformed failure list as a failure of the whole batch.
                failed = {record["messageId"] for record in records}
        done = [record for record in records if record["messageId"] not in failed]
        self._delete(done)
        for record in records:
            if record["messageId"] in failed:
                self._log_retry(record, "reported in batchItemFailures")
            else:
                self._log_done(record)

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start:start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                       for i, r in enumerate(chunk)]
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                LOG.warning("delete failed: %s", json.dumps(failure))

    def _outcome(self, record: dict[str, Any]) -> dict[str, Any] | None:
        request_id = request_id_of(record)
        if self.outcome_lookup is None:
            return None
        try:
            return self.outcome_lookup(request_id)
        except Exception as error:
            LOG.debug("outcome lookup failed: %s", error)
            return None

    def _log_done(self, record: dict[str, Any], note: str = "",
                  outcome: dict[str, Any] | None = None) -> None:
        """A handled (and deleted) message. Its status and reason are looked up only at DEBUG:
        the handler logs every outcome itself (its JSON line, as on Lambda), and the lookup is a
        DynamoDB read per message, at INFO a fifth of the pipeline's CPU at 100 requests/s
        (docs/benchmarks.md, decisions)."""
        if not LOG.isEnabledFor(logging.INFO):
            return
        if outcome is None and LOG.isEnabledFor(logging.DEBUG):
            outcome = self._outcome(record)
        outcome = outcome or {}
        reason = outcome.get("reason")
        LOG.info("[%s] %s messageId=%s%s%s", request_id_of(record),
                 outcome.get("status", "handled"), record["messageId"],
                 f" reason={reason}" if reason else "", note)

    def _log_retry(self, record: dict[str, Any], why: str) -> None:
        count = int(record["attributes"].get("ApproximateReceiveCount", "1"))
        if self.max_receive_count and count >= self.max_receive_count:
            # SQS moves it on the next receive (moto does so on receive, as AWS does).
            LOG.error("[%s] DLQ messageId=%s after %d receives: %s", request_id_of(record),
                      record["messageId"], count, why)
            return
        LOG.warning("[%s] retried messageId=%s receive #%d: %s", request_id_of(record),
                    record["messageId"], count, why)
