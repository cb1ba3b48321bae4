"""The DynamoDB store: items, their versions and tombstones, and request outcomes, in one table.

Keys: `item#<id>` for an item, `request#<requestId>` for the outcome of a request.

Every write is one TransactWriteItems call with two conditional actions: the item change (built
by writes.py: it holds only if applying it keeps the result of applying requests in the order API
Gateway received them), and the outcome, which holds only if this request has none yet. So a
redelivered request has no second effect, a write delivered late merges as if it had come in
order (or is superseded), and an item change never exists without its outcome. Deletes leave a
tombstone for the same reason. A write whose condition fails is re-done against the item
DynamoDB returns, when that is what keeps the in-order result.

A batch's first writes to different items go into one transaction together (apply_together):
the same actions and conditions, one round trip and one request for all of them; if any
condition fails, none is applied and each write is tried alone, as above.
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.attributes import (
    MAX_ITEM_BYTES,
    AttributeValue,
    from_map,
    item_size,
    printable,
    size_bound,
    to_map,
)
from chalicelib.commands import Command, Stamp
from chalicelib.errors import (
    ConditionPendingError,
    InvalidCommandError,
    InvalidQueryError,
    ItemNotFoundError,
    OutcomeNotFoundError,
    TransactionConflictError,
    TransientError,
)
from chalicelib.logs import get_logger
from chalicelib.outcomes import Outcome, outcome_from_attributes, without_item
from chalicelib.settings import Settings
from chalicelib.writes import ITEM_PREFIX, UpdateBuilder, verdict

logger = get_logger("sqs_manager.store")

REQUEST_PREFIX = "request#"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SCAN_CALLS_PER_PAGE = 10
MAX_KEY_BYTES = 2048  # DynamoDB's partition key limit: a longer id cannot exist
# Outcomes quote the request (ids, key paths): capped so that one always fits in an item.
MAX_REASON_CHARS, MAX_ID_CHARS, MAX_OPERATION_CHARS = 1000, 300, 40

# Time, so that one message cannot outlast what the consumer keeps for it (batch.py). A DynamoDB
# call takes at most MAX_ATTEMPTS x (connect + read timeouts), plus standard-mode backoff (under
# 1 s before the one retry); a message makes at most two calls (its write, then a recorded
# rejection; a read, then its outcome).
CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS, MAX_ATTEMPTS = 1, 2, 2
CALL_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 1
MESSAGE_SECONDS = 2 * CALL_SECONDS
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

# Errors that say "try again later", from the API or from one action of a transaction.
TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "LimitExceededException",
}
TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                     "RequestLimitExceeded", "InternalServerError"}



def client_config() -> Config:
    # Fail fast and let SQS retry: botocore's legacy DynamoDB policy retries 10 times, which
    # could hold a batch for most of the Lambda timeout. See CALL_SECONDS.
    # No client-side parameter validation: DynamoDB validates every request anyway (and its
    # ValidationException becomes a rejection), while botocore's walk of a transaction's
    # attribute values costs about 1 ms of CPU per write (bench.batch).
    return Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                  parameter_validation=False)


def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=client_config())


class ItemStore:
    def __init__(self, client: Any, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = settings.table_name
        self.settings = settings
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> ItemStore:
        return cls(dynamodb_client(), settings)

    # -- writes -------------------------------------------------------------------------------

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
            except InvalidCommandError as error:
                return self.reject(stamp, str(error), command.operation, command.id)
            except UNCONVERTIBLE as error:
                # A value the checks did not foresee: still the request's, so a rejection.
                return self.reject(stamp, f"the command cannot be converted for DynamoDB: "
                                   f"{type(error).__name__}: {error}", command.operation,
                                   command.id)
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
                raise TransientError(f"item {command.id!r} kept changing under this write")
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
            applied, actions = self._transaction(command, stamp, update)
            cost = size_bound(update["ExpressionAttributeValues"]) + size_bound(
                actions[1]["Put"]["Item"])
            if len(chunk) == MAX_WRITES_TOGETHER or (chunk and size + cost > MAX_BYTES_TOGETHER):
                chunk, size = [], 0
                chunks.append(chunk)
            chunk.append((position, applied, actions))
            size += cost
        done: dict[int, Outcome] = {}
        for together in chunks:
            keys = {f"{ITEM_PREFIX}{a.id}" for _, a, _ in together} | {
                REQUEST_PREFIX + a.request_id for _, a, _ in together}
            # One write alone gains nothing; two actions on one key DynamoDB refuses.
            if len(together) < 2 or len(keys) < 2 * len(together):
                continue
            try:
                self._call(self.client.transact_write_items, TransactItems=[
                    action for _, _, actions in together for action in actions])
            except (ClientError, TransientError) as error:
                # Each write's own line says how it ended; this one only for debugging.
                logger.debug("writes applied one by one", extra={
                    "writes": len(together), "error": f"{type(error).__name__}: {error}"})
                continue
            done.update((position, applied) for position, applied, _ in together)
        return done

    def _builder(self) -> UpdateBuilder:
        return UpdateBuilder(self.table, int(self.clock() * 1000),
                             int(self.clock()) + self.settings.tombstone_ttl_seconds)

    def _write(self, command: Command, stamp: Stamp, update: dict[str, Any],
               may_wait: bool) -> Outcome | dict[str, AttributeValue]:
        """The outcome, or the item as it is if the write must be merged against it."""
        applied, actions = self._transaction(command, stamp, update)
        try:
            self._call(self.client.transact_write_items, TransactItems=actions)
        except ClientError as error:
            return self._after_cancelled_write(error, command, stamp, may_wait)
        return applied

    def _transaction(self, command: Command, stamp: Stamp, update: dict[str, Any]
                     ) -> tuple[Outcome, list[dict[str, Any]]]:
        """A write's two actions, the item change and its `applied` outcome, and that outcome."""
        applied = Outcome(stamp.request_id, "applied", command.operation, command.id)
        return applied, [{"Update": update}, {"Put": self._outcome_put(applied, stamp)}]

    def reject(self, stamp: Stamp, reason: str, operation: str | None = None,
               item_id: str | None = None) -> Outcome:
        """Record that a request was rejected (unless it already has an outcome)."""
        return self._record(Outcome(
            stamp.request_id, "rejected",
            printable(operation, MAX_OPERATION_CHARS) if operation is not None else None,
            printable(item_id, MAX_ID_CHARS) if item_id is not None else None,
            printable(reason, MAX_REASON_CHARS)), stamp)

    def _record(self, outcome: Outcome, stamp: Stamp) -> Outcome:
        try:
            self._call(self.client.put_item, **self._outcome_put(outcome, stamp))
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return self._already_handled(error.response.get("Item"), outcome)
            if _code(error) == "ValidationException" and outcome.item is not None:
                # The size estimate let through an item DynamoDB finds too big to copy.
                return self._record(without_item(outcome), stamp)
            raise
        return outcome

    def _read(self, command: Command, stamp: Stamp) -> Outcome:
        found = self._get(ITEM_PREFIX + command.id)
        item = _public_item(found) if found is not None and not found.get("deleted") else None
        outcome = Outcome(stamp.request_id, "applied", "read", command.id, item=item,
                          found=item is not None)
        if item is not None and item_size(self._outcome_put(outcome, stamp)["Item"]) >= (
                MAX_ITEM_BYTES):
            outcome = without_item(outcome)
        return self._record(outcome, stamp)

    def _outcome_put(self, outcome: Outcome, stamp: Stamp) -> dict[str, Any]:
        now = self.clock()
        record: dict[str, AttributeValue] = {
            "pk": {"S": REQUEST_PREFIX + outcome.request_id},
            "requestId": {"S": outcome.request_id},
            "status": {"S": outcome.status},
            "requestTimeEpoch": {"N": str(stamp.request_time_epoch_ms)},
            "handledAt": {"N": str(int(now * 1000))},
            "expiresAt": {"N": str(int(now) + self.settings.outcome_ttl_seconds)},
        }
        for name, value in (("operation", outcome.operation), ("id", outcome.id),
                            ("reason", outcome.reason)):
            if value is not None:
                record[name] = {"S": value}
        if outcome.found is not None:
            record["found"] = {"BOOL": outcome.found}
        if outcome.item_too_large:
            record["itemTooLarge"] = {"BOOL": True}
        if outcome.item is not None:
            record["item"] = {"M": to_map(outcome.item)}
        return {
            "TableName": self.table, "Item": record,
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _after_cancelled_write(self, error: ClientError, command: Command, stamp: Stamp,
                               may_wait: bool) -> Outcome | dict[str, AttributeValue]:
        code = _code(error)
        message = str(error.response.get("Error", {}).get("Message", ""))
        if code == "ValidationException" and not _is_configuration_error(message):
            # DynamoDB says the request itself is invalid: retrying cannot help.
            return self.reject(stamp, _validation_reason(message), command.operation,
                               command.id)
        if code != "TransactionCanceledException":
            # Anything else is not the request's fault: retried, and kept in the DLQ if it lasts.
            raise error
        reasons = error.response.get("CancellationReasons") or [{}, {}]
        item_reason, outcome_reason = reasons[0], reasons[1]
        if outcome_reason.get("Code") == "ConditionalCheckFailed":
            return self._already_handled(outcome_reason.get("Item"), Outcome(
                stamp.request_id, "applied", command.operation, command.id))
        if item_reason.get("Code") == "ConditionalCheckFailed":
            old = item_reason.get("Item")
            found = verdict(command, stamp, from_map(old) if old else None)
            if found.kind == "mine":  # this request changed the item; its outcome was lost (TTL)
                return self._record(Outcome(stamp.request_id, "applied", command.operation,
                                            command.id), stamp)
            if found.kind == "merge":
                return old or {}
            if found.kind == "condition" and may_wait:
                raise ConditionPendingError(found.reason)
            return self.reject(stamp, found.reason, command.operation, command.id)
        codes = {reason.get("Code") for reason in reasons}
        messages = [str(r.get("Message", "")) for r in reasons
                    if r.get("Code") == "ValidationError"]
        if messages:
            return self.reject(stamp, _validation_reason(messages[0]), command.operation,
                               command.id)
        if "TransactionConflict" in codes:
            raise TransactionConflictError("transaction cancelled: TransactionConflict")
        if codes & TRANSIENT_REASONS:
            raise TransientError(f"transaction cancelled: {sorted(c for c in codes if c)}")
        raise TransientError(f"transaction cancelled for an unknown reason: {reasons}")

    @staticmethod
    def _already_handled(record: dict[str, AttributeValue] | None, fallback: Outcome) -> Outcome:
        """The outcome a previous delivery recorded (DynamoDB returned it with the failed
        condition), or, if DynamoDB did not, what this delivery would have recorded."""
        if record is None:
            return Outcome(fallback.request_id, fallback.status, fallback.operation, fallback.id,
                           fallback.reason, duplicate=True)
        return outcome_from_attributes(from_map(record), duplicate=True)

    @staticmethod
    def _key(prefix: str, key: str) -> str | None:
        """The table key for an id, or None where no such key can exist (too long, not text)."""
        try:
            size = len((prefix + key).encode("utf-8"))
        except UnicodeEncodeError:
            return None
        return prefix + key if size <= MAX_KEY_BYTES else None

    # -- reads --------------------------------------------------------------------------------

    def get_item(self, item_id: str) -> dict[str, Any]:
        key = self._key(ITEM_PREFIX, item_id)
        found = self._get(key) if key else None
        if found is None:
            raise ItemNotFoundError(f"item {item_id!r} does not exist")
        if found.get("deleted"):
            raise ItemNotFoundError(f"item {item_id!r} was deleted")
        return _public_item(found)

    def list_items(self, limit: str | int | None = None,
                   cursor: str | None = None) -> dict[str, Any]:
        """One page of live items; "cursor" (absent on the last page) asks for the next."""
        page_size = _page_size(limit)
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(#pk, :prefix) AND attribute_not_exists(#deleted)",
            "ExpressionAttributeNames": {"#pk": "pk", "#deleted": "deleted"},
            "ExpressionAttributeValues": {":prefix": {"S": ITEM_PREFIX}},
        }
        if cursor:
            start = self._key("", _decode_cursor(cursor))
            if start is None:
                raise InvalidQueryError("cursor is not one this API returned")
            request["ExclusiveStartKey"] = {"pk": {"S": start}}
        items: list[dict[str, Any]] = []
        last_key: str | None = None
        for _ in range(MAX_SCAN_CALLS_PER_PAGE):
            try:
                response = self._call(self.client.scan, **request)
            except ClientError as error:
                if _code(error) == "ValidationException" and cursor:
                    raise InvalidQueryError("cursor is not one this API returned") from error
                raise
            for record in response.get("Items", []):
                items.append(record)
            last_evaluated = response.get("LastEvaluatedKey")
            if len(items) > page_size:  # resume right after the last item returned
                items = items[:page_size]
                last_key = items[-1]["pk"]["S"]
                break
            last_key = last_evaluated["pk"]["S"] if last_evaluated else None
            if last_key is None or len(items) == page_size:
                break
            request["ExclusiveStartKey"] = last_evaluated
        page: dict[str, Any] = {"items": [_public_item(from_map(r)) for r in items]}
        if last_key is not None:
            page["cursor"] = _encode_cursor(last_key)
        return page

    def get_outcome(self, request_id: str) -> dict[str, Any]:
        key = self._key(REQUEST_PREFIX, request_id)
        found = self._get(key) if key else None
        # TTL deletes lazily (up to days later): an expired outcome is gone for readers now.
        if found is None or found.get("expiresAt", 0) < self.clock():
            raise OutcomeNotFoundError(
                "no outcome recorded: the request is still queued, or its requestId is unknown "
                "or its outcome has expired")
        return outcome_from_attributes(found).to_json()

    def _get(self, key: str) -> dict[str, Any] | None:
        response = self._call(self.client.get_item, TableName=self.table,
                              Key={"pk": {"S": key}}, ConsistentRead=True)
        record = response.get("Item")
        return from_map(record) if record else None

    @staticmethod
    def _call(method: Callable[..., Any], **kwargs: Any) -> Any:
        """Call DynamoDB, turning 'try again later' into TransientError."""
        try:
            return method(**kwargs)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if _code(error) == "TransactionConflictException":
                raise TransactionConflictError(f"DynamoDB: {error}") from error
            if _code(error) in TRANSIENT_CODES or status >= 500:
                raise TransientError(f"DynamoDB: {_code(error)}: {error}") from error
            raise
        except BotoCoreError as error:  # connection errors and timeouts
            raise TransientError(f"DynamoDB unreachable: {error}") from error


def _public_item(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "version": record["version"], **record.get("item", {})}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_size_error(message: str) -> bool:
    # "Item size has exceeded the maximum allowed size", "Item size to update has exceeded ...";
    # not "Expression size has exceeded ...", which is no fault of the item's.
    return "item size" in message.lower() and "exceeded" in message.lower()


def _is_configuration_error(message: str) -> bool:
    # Our table setting, not the request, is wrong: keep the message (DLQ) until it is fixed.
    return "table/index name" in message or "resource not found" in message.lower()


def _validation_reason(message: str) -> str:
    if _is_size_error(message):
        return f"the item would be over DynamoDB's 400 KB item size limit ({message})"
    return f"DynamoDB refused the write as invalid: {message}"


def _page_size(limit: str | int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(limit)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def _encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key.startswith((ITEM_PREFIX, REQUEST_PREFIX)):
        raise InvalidQueryError("cursor is not one this API returned")
    return key

