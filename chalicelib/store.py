"""The DynamoDB store: items, their versions and tombstones, and request outcomes, in one table.

Keys: `item#<id>` for an item, `request#<requestId>` for the outcome of a request.

Every write is one TransactWriteItems call with two conditional actions: the item change, which
holds only if this request is newer than the item's last write (requestTimeEpoch, then
requestId), and the outcome, which holds only if this request has none yet. So a redelivered
request has no second effect, an older write never overwrites a newer one, and an item change
never exists without its outcome. Deletes leave a tombstone for the same reason.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.attributes import (
    AttributeValue,
    check_item_size,
    check_number,
    from_map,
    to_map,
)
from chalicelib.commands import Command, Stamp
from chalicelib.errors import (
    InvalidCommandError,
    InvalidQueryError,
    ItemNotFoundError,
    OutcomeNotFoundError,
    TransientError,
)
from chalicelib.settings import Settings

ITEM_PREFIX = "item#"
REQUEST_PREFIX = "request#"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SCAN_CALLS_PER_PAGE = 10

# Errors that say "try again later", from the API or from one action of a transaction.
TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "LimitExceededException",
}
TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                     "RequestLimitExceeded", "InternalServerError"}

NAMES = {
    "#pk": "pk", "#id": "id", "#item": "item", "#version": "version", "#deleted": "deleted",
    "#ts": "lastRequestTime", "#rid": "lastRequestId", "#updated": "updatedAt",
    "#expires": "expiresAt",
}
# The write must be newer than the item's last one; an equal stamp is this very request.
NEWER = "(attribute_not_exists(#pk) OR #ts < :ts OR (#ts = :ts AND #rid < :rid))"
ABSENT = "(attribute_not_exists(#pk) OR attribute_exists(#deleted))"
PRESENT = "(attribute_exists(#pk) AND attribute_not_exists(#deleted))"
PLACEHOLDER = re.compile(r"[#:][A-Za-z0-9_]+")


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: str  # "applied" or "rejected"
    operation: str | None = None
    id: str | None = None
    reason: str | None = None
    item: dict[str, Any] | None = None
    found: bool | None = None  # reads only: whether the item existed
    duplicate: bool = False  # this delivery found the request already handled

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"requestId": self.request_id, "status": self.status,
                                "operation": self.operation, "id": self.id}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.operation == "read" and self.status == "applied":
            body["item"] = self.item
        return body


def dynamodb_client() -> Any:
    # Fail fast and let SQS retry: botocore's legacy DynamoDB policy retries 10 times, which
    # could hold a batch for most of the Lambda timeout.
    config = Config(retries={"mode": "standard", "total_max_attempts": 3},
                    connect_timeout=2, read_timeout=5)
    return boto3.client("dynamodb", config=config)


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

    def apply(self, command: Command, stamp: Stamp) -> Outcome:
        """Apply one command; the outcome is recorded once, whatever the number of deliveries."""
        if command.operation == "read":
            return self._read(command, stamp)
        try:
            update = self._item_update(command, stamp)
        except InvalidCommandError as error:
            return self.reject(stamp, str(error), command.operation, command.id)
        applied = Outcome(stamp.request_id, "applied", command.operation, command.id)
        try:
            self._call(self.client.transact_write_items, TransactItems=[
                {"Update": update}, {"Put": self._outcome_put(applied, stamp)}])
        except ClientError as error:
            return self._after_cancelled_write(error, command, stamp)
        return applied

    def reject(self, stamp: Stamp, reason: str, operation: str | None = None,
               item_id: str | None = None) -> Outcome:
        """Record that a request was rejected (unless it already has an outcome)."""
        return self._record(Outcome(stamp.request_id, "rejected", operation, item_id, reason),
                            stamp)

    def _record(self, outcome: Outcome, stamp: Stamp) -> Outcome:
        try:
            self._call(self.client.put_item, **self._outcome_put(outcome, stamp))
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return self._already_handled(error.response.get("Item"), outcome)
            if _code(error) == "ValidationException" and outcome.item is not None:
                # The item read is too big to copy into an outcome: record the read without it.
                return self._record(Outcome(
                    outcome.request_id, outcome.status, outcome.operation, outcome.id,
                    f"the item is too large to copy into an outcome: GET /items/{outcome.id}",
                    found=True), stamp)
            raise
        return outcome

    def _read(self, command: Command, stamp: Stamp) -> Outcome:
        found = self._get(ITEM_PREFIX + command.id)
        item = _public_item(found) if found is not None and not found.get("deleted") else None
        return self._record(Outcome(stamp.request_id, "applied", "read", command.id,
                                    item=item, found=item is not None), stamp)

    def _item_update(self, command: Command, stamp: Stamp) -> dict[str, Any]:
        now_ms = int(self.clock() * 1000)
        values: dict[str, AttributeValue] = {
            ":ts": {"N": str(stamp.request_time_epoch_ms)}, ":rid": {"S": stamp.request_id},
            ":id": {"S": command.id}, ":one": {"N": "1"}, ":zero": {"N": "0"},
            ":now": {"N": str(now_ms)},
        }
        names = dict(NAMES)
        stamp_set = "#id = :id, #ts = :ts, #rid = :rid, #updated = :now"
        conditions = [NEWER]
        if command.operation in ("create", "put"):
            values[":item"] = {"M": to_map(command.item)}
            check_item_size({"pk": {"S": ITEM_PREFIX + command.id}, "item": values[":item"],
                             **{k: values[f":{k}"] for k in ("id", "ts", "rid", "now")}},
                            f"item {command.id!r}")
            expression = (f"SET #item = :item, #version = if_not_exists(#version, :zero) + :one, "
                          f"{stamp_set} REMOVE #deleted, #expires")
            if command.operation == "create":
                conditions.append(ABSENT)
        elif command.operation == "update":
            sets, removes = [], []
            for index, (name, value) in enumerate(command.item.items()):
                if name == "":
                    raise InvalidCommandError("item: DynamoDB does not allow an empty attribute "
                                              "name")
                names[f"#a{index}"] = name
                if value is None:
                    removes.append(f"#item.#a{index}")
                else:
                    values[f":a{index}"] = to_map({name: value})[name]
                    sets.append(f"#item.#a{index} = :a{index}")
            expression = "SET " + ", ".join([*sets, f"#version = #version + :one, {stamp_set}"])
            if removes:
                expression += " REMOVE " + ", ".join(removes)
            conditions.append(PRESENT)
        else:  # delete: a tombstone, so that older writes delivered later stay rejected
            values[":true"] = {"BOOL": True}
            values[":expires"] = {"N": str(int(self.clock()) + self.settings.tombstone_ttl_seconds)}
            expression = (f"SET #deleted = :true, #version = if_not_exists(#version, :zero) + "
                          f":one, #expires = :expires, {stamp_set} REMOVE #item")
        if command.expected_version is not None:
            if command.expected_version == 0:
                conditions.append(ABSENT)
            else:
                values[":ev"] = {"N": check_number(command.expected_version, "expectedVersion")}
                conditions.append("(#version = :ev AND attribute_not_exists(#deleted))")
        condition = " AND ".join(conditions)
        # DynamoDB refuses placeholders that the expressions do not use.
        used = set(PLACEHOLDER.findall(expression + " " + condition))
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": ITEM_PREFIX + command.id}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
            "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

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
        if outcome.item is not None:
            record["item"] = {"M": to_map(outcome.item)}
        return {
            "TableName": self.table, "Item": record,
            "ConditionExpression": "attribute_not_exists(#pk)",
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _after_cancelled_write(self, error: ClientError, command: Command,
                               stamp: Stamp) -> Outcome:
        code = _code(error)
        message = str(error.response.get("Error", {}).get("Message", ""))
        if code == "ValidationException" and _is_size_error(message):
            return self.reject(stamp, _size_reason(message), command.operation, command.id)
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
            why = explain_conflict(command, stamp, from_map(old) if old else None)
            if why is None:  # this request changed the item, but its outcome was lost (TTL)
                return self._record(Outcome(stamp.request_id, "applied", command.operation,
                                            command.id), stamp)
            return self.reject(stamp, why, command.operation, command.id)
        codes = {reason.get("Code") for reason in reasons}
        if codes & TRANSIENT_REASONS:
            raise TransientError(f"transaction cancelled: {sorted(c for c in codes if c)}")
        messages = [str(r.get("Message", "")) for r in reasons
                    if r.get("Code") == "ValidationError"]
        if any(_is_size_error(m) for m in messages):
            return self.reject(stamp, _size_reason(messages[0]), command.operation, command.id)
        raise TransientError(f"transaction cancelled for an unknown reason: {reasons}")

    @staticmethod
    def _already_handled(record: dict[str, AttributeValue] | None, fallback: Outcome) -> Outcome:
        """The outcome a previous delivery recorded (DynamoDB returned it with the failed
        condition), or, if DynamoDB did not, what this delivery would have recorded."""
        if record is None:
            return Outcome(fallback.request_id, fallback.status, fallback.operation, fallback.id,
                           fallback.reason, duplicate=True)
        return _outcome_from_attributes(from_map(record), duplicate=True)

    # -- reads --------------------------------------------------------------------------------

    def get_item(self, item_id: str) -> dict[str, Any]:
        found = self._get(ITEM_PREFIX + item_id)
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
            request["ExclusiveStartKey"] = {"pk": {"S": _decode_cursor(cursor)}}
        items: list[dict[str, Any]] = []
        last_key: str | None = None
        for _ in range(MAX_SCAN_CALLS_PER_PAGE):
            response = self._call(self.client.scan, **request)
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
        found = self._get(REQUEST_PREFIX + request_id)
        # TTL deletes lazily (up to days later): an expired outcome is gone for readers now.
        if found is None or found.get("expiresAt", 0) < self.clock():
            raise OutcomeNotFoundError(
                "no outcome recorded: the request is still queued, or its requestId is unknown "
                "or its outcome has expired")
        return _outcome_from_attributes(found).to_json()

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
            if _code(error) in TRANSIENT_CODES or status >= 500:
                raise TransientError(f"DynamoDB: {_code(error)}: {error}") from error
            raise
        except BotoCoreError as error:  # connection errors and timeouts
            raise TransientError(f"DynamoDB unreachable: {error}") from error


def explain_conflict(command: Command, stamp: Stamp, old: dict[str, Any] | None) -> str | None:
    """Why a write's condition failed, given the item as it was; None if this request wrote it."""
    label = f"item {command.id!r}"
    if old is None:
        if command.operation == "update":
            return f"{label} does not exist"
        return f"expected version {command.expected_version}, but {label} does not exist"
    old_stamp = Stamp(int(old.get("lastRequestTime", 0)), str(old.get("lastRequestId", "")))
    if old_stamp == stamp:
        return None
    if old_stamp > stamp:
        return (f"superseded: {label} was already changed by request {old_stamp.request_id}, "
                f"made after this one (requestTimeEpoch {old_stamp.request_time_epoch_ms} > "
                f"{stamp.request_time_epoch_ms}); this older write was not applied")
    deleted = bool(old.get("deleted"))
    current = 0 if deleted else int(old.get("version", 0))
    if command.operation == "create" and not deleted:
        return f"{label} already exists (version {current})"
    if command.operation == "update" and deleted:
        return f"{label} does not exist (it was deleted)"
    if command.expected_version is not None and command.expected_version != current:
        state = f"the current version is {current}" if current else f"{label} does not exist"
        return f"expected version {command.expected_version}, but {state}"
    return f"the write's condition failed on {label}"


def _public_item(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "version": record["version"], **record.get("item", {})}


def _outcome_from_attributes(record: dict[str, Any], duplicate: bool = False) -> Outcome:
    return Outcome(record["requestId"], record["status"], record.get("operation"),
                   record.get("id"), record.get("reason"), record.get("item"),
                   record.get("found"), duplicate)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_size_error(message: str) -> bool:
    # "Item size has exceeded the maximum allowed size", "Item size to update has exceeded ...";
    # not "Expression size has exceeded ...", which is no fault of the item's.
    return "item size" in message.lower() and "exceeded" in message.lower()


def _size_reason(message: str) -> str:
    return f"the item would be over DynamoDB's 400 KB item size limit ({message})"


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

