"""ItemStore: how a command is written, and the one object app.py and the consumer use.

Every write is one TransactWriteItems call with two conditional actions: the item change (built
by writes.py: it holds only if applying it keeps the result of applying requests in the order API
Gateway received them), and the outcome (outcomes.py), which holds only if this request has none
yet. So a redelivered request has no second effect, a write delivered late merges as if it had
come in order (or is superseded), and an item change never exists without its outcome. Deletes
leave a tombstone for the same reason. A write whose condition fails is re-done against the item
DynamoDB returns, when that is what keeps the in-order result.

A batch's first writes to different items go into one transaction together (apply_together):
the same actions and conditions, one round trip and one request for all of them; if any
condition fails, none is applied and each write is tried alone, as above.

Reads (reads.py) and outcomes (outcomes.py) are delegated to their own classes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.attributes import MAX_ITEM_BYTES, AttributeValue, from_map, item_size, size_bound
from chalicelib.clients import MESSAGE_SECONDS, dynamodb_client
from chalicelib.commands import Command, Stamp
from chalicelib.dynamodb import (
    ITEM_PREFIX,
    REQUEST_PREFIX,
    call,
    cancellation_error,
    error_code,
    get_record,
    is_configuration_error,
    refusal,
)
from chalicelib.errors import (
    ConditionPendingError,
    InvalidCommandError,
    RetryCause,
    TransactionConflictError,
    TransientError,
)
from chalicelib.logs import get_logger
from chalicelib.outcomes import (
    Outcome,
    OutcomeTable,
    Status,
    already_handled,
    applied,
    without_item,
)
from chalicelib.reads import ItemReader, public_item
from chalicelib.settings import Settings
from chalicelib.writes import UpdateBuilder, Verdict, VerdictKind, verdict

logger = get_logger("sqs_manager.store")

# Concurrent Lambdas writing one item make transactions conflict: retry a few times in the
# handler, with full jitter, before SQS redelivers the message.
CONFLICT_RETRIES, CONFLICT_BACKOFF_SECONDS = 3, 0.025
# A merge is redone if the item changes between reading and writing it: a few times at most.
MAX_MERGES = 4
# Writes of different items go in one transaction (apply_together). DynamoDB's TransactWriteItems
# takes at most 100 actions (two per write) and 4 MB in all (DynamoDB API Reference,
# TransactWriteItems); half of that leaves room for names and expressions.
MAX_WRITES_TOGETHER, MAX_BYTES_TOGETHER = 50, 2_000_000

# What building a write raises for a value the command's checks did not foresee.
UNCONVERTIBLE = (ValueError, ArithmeticError, UnicodeError, RecursionError)


class ItemStore:
    def __init__(self, client: Any, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        # Collaborators on the same client: outcomes recorded and read, the read API's items.
        self.outcomes = OutcomeTable(client, settings, clock)
        self.reads = ItemReader(client, settings)

    @property
    def table(self) -> str:
        return self.settings.table_name

    @classmethod
    def from_settings(cls, settings: Settings) -> ItemStore:
        return cls(dynamodb_client(), settings)

    def get_item(self, item_id: str) -> dict[str, Any]:
        return self.reads.get_item(item_id)

    def list_items(self, limit: str | int | None = None,
                   cursor: str | None = None) -> dict[str, Any]:
        return self.reads.list_items(limit, cursor)

    def get_outcome(self, request_id: str) -> dict[str, Any]:
        return self.outcomes.get(request_id)

    def reject(self, stamp: Stamp, cause: Exception | Verdict,
               command: Command | None = None) -> Outcome:
        return self.outcomes.reject(stamp, cause, command)

    def apply(self, command: Command, stamp: Stamp, deadline: float | None = None,
              may_wait: bool = False) -> Outcome:
        """Apply one command; the outcome is recorded once, whatever the number of deliveries.
        `deadline` (time.monotonic()) bounds the retries of conflicting transactions. With
        `may_wait`, a failed condition raises ConditionPendingError instead of a rejection:
        an earlier request may still be on its way."""
        if command.operation == "read":
            return self._read(command, stamp)
        old: dict[str, AttributeValue] | None = None
        conflicts = merges = 0
        while True:
            try:
                update = self._builder().build(command, stamp, old)
            except (InvalidCommandError, *UNCONVERTIBLE) as error:
                return self.reject(stamp, error, command)
            try:
                result = self._write(command, stamp, update, may_wait)
            except TransactionConflictError:
                conflicts += 1
                delay = random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2 ** conflicts)
                if conflicts > CONFLICT_RETRIES or (
                        deadline is not None
                        and time.monotonic() + delay + MESSAGE_SECONDS > deadline):
                    raise
                time.sleep(delay)
                continue
            if isinstance(result, Outcome):
                return result
            merges += 1  # the item as it is now: merge against it
            if merges > MAX_MERGES:
                raise TransientError(f"item {command.id!r} kept changing under this write",
                                     RetryCause.CONFLICT)
            old = result

    def apply_together(self, writes: Sequence[tuple[Command, Stamp]]) -> dict[int, Outcome]:
        """The first attempt of several writes, each to a different item, in one transaction:
        one round trip instead of one per write. Returns the outcomes (all applied) by position
        in `writes`; the others are for `apply`. A transaction is all or nothing, so when a
        condition fails (or anything else goes wrong) none of its writes happened, and each is
        applied alone, exactly as if this had not been tried. After an ambiguous failure (a
        timeout, a 500) the write may have happened: `apply` then finds its outcome recorded."""
        chunk: list[tuple[int, Outcome, list[dict[str, Any]]]] = []
        chunks = [chunk]
        size = 0
        builder = self._builder()
        for position, (command, stamp) in enumerate(writes):
            try:
                update = builder.build(command, stamp)
            except (InvalidCommandError, *UNCONVERTIBLE):
                continue  # rejected by apply, with its reason
            done, actions = self._transaction(command, stamp, update)
            cost = size_bound(update["ExpressionAttributeValues"]) + size_bound(
                actions[1]["Put"]["Item"])
            if len(chunk) == MAX_WRITES_TOGETHER or (chunk and size + cost > MAX_BYTES_TOGETHER):
                chunk, size = [], 0
                chunks.append(chunk)
            chunk.append((position, done, actions))
            size += cost
        outcomes: dict[int, Outcome] = {}
        for together in chunks:
            keys = {f"{ITEM_PREFIX}{a.id}" for _, a, _ in together} | {
                REQUEST_PREFIX + a.request_id for _, a, _ in together}
            # One write alone gains nothing; two actions on one key DynamoDB refuses.
            if len(together) < 2 or len(keys) < 2 * len(together):
                continue
            try:
                call(self.client.transact_write_items, TransactItems=[
                    action for _, _, actions in together for action in actions])
            except (ClientError, TransientError) as error:
                # Each write's own line says how it ended; this one only for debugging.
                logger.debug("writes applied one by one", extra={
                    "writes": len(together), "error": f"{type(error).__name__}: {error}"})
                continue
            outcomes.update((position, done) for position, done, _ in together)
        return outcomes

    def _builder(self) -> UpdateBuilder:
        return UpdateBuilder(self.table, int(self.clock() * 1000),
                             int(self.clock()) + self.settings.tombstone_ttl_seconds)

    def _write(self, command: Command, stamp: Stamp, update: dict[str, Any],
               may_wait: bool) -> Outcome | dict[str, AttributeValue]:
        """The outcome, or the item as it is if the write must be merged against it."""
        done, actions = self._transaction(command, stamp, update)
        try:
            call(self.client.transact_write_items, TransactItems=actions)
        except ClientError as error:
            return self._after_cancelled_write(error, command, stamp, may_wait)
        return done

    def _transaction(self, command: Command, stamp: Stamp, update: dict[str, Any]
                     ) -> tuple[Outcome, list[dict[str, Any]]]:
        """A write's two actions, the item change and its `applied` outcome, and that outcome."""
        done = applied(command, stamp)
        return done, [{"Update": update}, {"Put": self.outcomes.put(done, stamp)}]

    def _read(self, command: Command, stamp: Stamp) -> Outcome:
        found = get_record(self.client, self.table, ITEM_PREFIX + command.id)
        item = public_item(found) if found is not None and not found.get("deleted") else None
        outcome = Outcome(stamp.request_id, Status.APPLIED, "read", command.id, item=item,
                          found=item is not None)
        if item is not None and item_size(self.outcomes.put(outcome, stamp)["Item"]) >= (
                MAX_ITEM_BYTES):
            outcome = without_item(outcome)
        return self.outcomes.record(outcome, stamp)

    def _after_cancelled_write(self, error: ClientError, command: Command, stamp: Stamp,
                               may_wait: bool) -> Outcome | dict[str, AttributeValue]:
        code = error_code(error)
        message = str(error.response.get("Error", {}).get("Message", ""))
        if code == "ValidationException" and not is_configuration_error(message):
            # DynamoDB says the request itself is invalid: retrying cannot help.
            return self.reject(stamp, refusal(message), command)
        if code != "TransactionCanceledException":
            # Anything else is not the request's fault: retried, and kept in the DLQ if it lasts.
            raise error
        reasons = error.response.get("CancellationReasons") or [{}, {}]
        item_reason, outcome_reason = reasons[0], reasons[1]
        if outcome_reason.get("Code") == "ConditionalCheckFailed":
            return already_handled(outcome_reason.get("Item"), applied(command, stamp))
        if item_reason.get("Code") == "ConditionalCheckFailed":
            old = item_reason.get("Item")
            found = verdict(command, stamp, from_map(old) if old else None)
            if found.kind is VerdictKind.MINE:  # this request changed the item; its outcome
                return self.outcomes.record(applied(command, stamp), stamp)  # was lost (TTL)
            if found.kind is VerdictKind.MERGE:
                return old or {}
            if found.kind is VerdictKind.CONDITION and may_wait:
                raise ConditionPendingError(found.reason)
            return self.reject(stamp, found, command)
        messages = [str(r.get("Message", "")) for r in reasons
                    if r.get("Code") == "ValidationError"]
        if messages:
            return self.reject(stamp, refusal(messages[0]), command)
        raise cancellation_error(reasons)
