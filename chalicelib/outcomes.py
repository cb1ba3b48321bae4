"""What became of a request: the outcome the consumer records once and GET /requests/{id} reads.

An outcome is recorded under `request#<requestId>` only if that request has none yet, so a
redelivered request finds the first delivery's outcome instead of making a second one. Why a
request is rejected is decided in one place, `rejection`; every rejection is recorded by
`OutcomeTable.reject`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.attributes import AttributeValue, from_map, printable, to_map
from chalicelib.commands import Command, Stamp
from chalicelib.dynamodb import REQUEST_PREFIX, call, error_code, get_record, table_key
from chalicelib.errors import InvalidCommandError, OutcomeNotFoundError
from chalicelib.settings import Settings
from chalicelib.writes import Verdict, VerdictKind

# Outcomes quote the request (ids, key paths): capped so that one always fits in an item.
MAX_REASON_CHARS, MAX_ID_CHARS, MAX_OPERATION_CHARS = 1000, 300, 40


class Status(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: Status
    operation: str | None = None
    id: str | None = None
    reason: str | None = None
    item: dict[str, Any] | None = None
    found: bool | None = None  # reads only: whether the item existed
    # Reads only: the item exists but is too large to copy into the outcome (GET /items/{id}).
    item_too_large: bool = False
    duplicate: bool = False  # this delivery found the request already handled
    # As read back (GET /requests/{id}), epoch milliseconds: when API Gateway received the
    # request, and when the consumer recorded this outcome.
    request_time_epoch: int | None = None
    handled_at: int | None = None
    # Rejected because a newer write replaced the item (counted apart; never stored).
    superseded: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"requestId": self.request_id, "status": self.status.value,
                                "operation": self.operation, "id": self.id}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.operation == "read" and self.status is Status.APPLIED:
            body["found"] = bool(self.found)
            if self.item_too_large:
                body["itemTooLarge"] = True  # and no "item": it was not copied
            else:
                body["item"] = self.item
        if self.request_time_epoch is not None:
            body["requestTimeEpoch"] = self.request_time_epoch
        if self.handled_at is not None:
            body["handledAt"] = self.handled_at
        return body


def rejection(request_id: str, cause: Exception | Verdict,
              command: Command | None = None) -> Outcome:
    """The rejected outcome for `cause`: a verdict against the item, or an error the request
    made (an invalid command, a value DynamoDB refused, a body nobody foresaw). `command` is
    the parsed command, if the body was one."""
    if isinstance(cause, Verdict):
        reason = cause.reason
    elif isinstance(cause, InvalidCommandError):
        reason = str(cause)
    elif command is None:
        # Parsing failed in a way its checks did not foresee: still the body's fault.
        reason = f"the body cannot be read as a command: {type(cause).__name__}: {cause}"
    else:
        # A value the checks did not foresee: still the request's.
        reason = (f"the command cannot be converted for DynamoDB: "
                  f"{type(cause).__name__}: {cause}")
    operation: str | None = None
    item_id: str | None = None
    if command is not None:
        operation, item_id = command.operation, command.id
    elif isinstance(cause, InvalidCommandError):  # what the body said, where it said it
        operation, item_id = cause.operation, cause.item_id
    return Outcome(
        request_id, Status.REJECTED,
        printable(operation, MAX_OPERATION_CHARS) if operation is not None else None,
        printable(item_id, MAX_ID_CHARS) if item_id is not None else None,
        printable(reason, MAX_REASON_CHARS),
        superseded=isinstance(cause, Verdict) and cause.kind is VerdictKind.SUPERSEDED)


def applied(command: Command, stamp: Stamp) -> Outcome:
    return Outcome(stamp.request_id, Status.APPLIED, command.operation, command.id)


def outcome_from_attributes(record: dict[str, Any], duplicate: bool = False) -> Outcome:
    return Outcome(record["requestId"], Status(record["status"]), record.get("operation"),
                   record.get("id"), record.get("reason"), record.get("item"),
                   record.get("found"), bool(record.get("itemTooLarge")), duplicate,
                   _epoch_ms(record.get("requestTimeEpoch")), _epoch_ms(record.get("handledAt")))


def _epoch_ms(value: Any) -> int | None:
    return int(value) if value is not None else None


def without_item(read: Outcome) -> Outcome:
    return Outcome(read.request_id, read.status, read.operation, read.id,
                   "the item is too large to copy into this outcome: read it with GET /items/{id}",
                   found=True, item_too_large=True)


def already_handled(record: dict[str, AttributeValue] | None, fallback: Outcome) -> Outcome:
    """The outcome a previous delivery recorded (DynamoDB returned it with the failed
    condition), or, if DynamoDB did not, what this delivery would have recorded."""
    if record is None:
        return Outcome(fallback.request_id, fallback.status, fallback.operation, fallback.id,
                       fallback.reason, duplicate=True)
    return outcome_from_attributes(from_map(record), duplicate=True)


class OutcomeTable:
    """Outcomes in the table: recorded once per request, read back while they live."""

    def __init__(self, client: Any, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = settings.table_name
        self.settings = settings
        self.clock = clock

    def put(self, outcome: Outcome, stamp: Stamp) -> dict[str, Any]:
        """The PutItem that records `outcome`, unless its request already has one."""
        now = self.clock()
        record: dict[str, AttributeValue] = {
            "pk": {"S": REQUEST_PREFIX + outcome.request_id},
            "requestId": {"S": outcome.request_id},
            "status": {"S": outcome.status.value},
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

    def record(self, outcome: Outcome, stamp: Stamp) -> Outcome:
        """Record `outcome`; the one already recorded if its request has one."""
        try:
            call(self.client.put_item, **self.put(outcome, stamp))
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return already_handled(error.response.get("Item"), outcome)
            if error_code(error) == "ValidationException" and outcome.item is not None:
                # The size estimate let through an item DynamoDB finds too big to copy.
                return self.record(without_item(outcome), stamp)
            raise
        return outcome

    def reject(self, stamp: Stamp, cause: Exception | Verdict,
               command: Command | None = None) -> Outcome:
        """Record that a request was rejected for `cause` (unless it already has an outcome)."""
        return self.record(rejection(stamp.request_id, cause, command), stamp)

    def get(self, request_id: str) -> dict[str, Any]:
        """GET /requests/{id}: the recorded outcome, or OutcomeNotFoundError."""
        key = table_key(REQUEST_PREFIX, request_id)
        found = get_record(self.client, self.table, key) if key else None
        # TTL deletes lazily (up to days later): an expired outcome is gone for readers now.
        if found is None or found.get("expiresAt", 0) < self.clock():
            raise OutcomeNotFoundError(request_id)
        return outcome_from_attributes(found).to_json()
