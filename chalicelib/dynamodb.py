"""The table and the calls to it: its keys, and what DynamoDB's errors mean here.

One table holds items (`item#<id>`) and request outcomes (`request#<requestId>`). Every call goes
through `call`, which turns "try again later" into TransientError (the message goes back to SQS);
the rest of DynamoDB's answers are read by the functions below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.attributes import from_map
from chalicelib.errors import (
    InvalidCommandError,
    ItemTooLargeError,
    RetryCause,
    TransactionConflictError,
    TransientError,
)

ITEM_PREFIX = "item#"
REQUEST_PREFIX = "request#"
MAX_KEY_BYTES = 2048  # DynamoDB's partition key limit: a longer id cannot exist

# Errors that say "try again later", from the API or from one action of a transaction.
TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
    "TransactionInProgressException", "LimitExceededException",
}
TRANSIENT_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded",
                     "RequestLimitExceeded", "InternalServerError"}
# Of those, the ones that say "too fast" (the rest: unavailable, or a conflict).
THROTTLING = {"ProvisionedThroughputExceededException", "ThrottlingException",
              "RequestLimitExceeded", "LimitExceededException", "ThrottlingError",
              "ProvisionedThroughputExceeded"}


def table_key(prefix: str, key: str) -> str | None:
    """The table key for an id, or None where no such key can exist (too long, not text)."""
    try:
        size = len((prefix + key).encode("utf-8"))
    except UnicodeEncodeError:
        return None
    return prefix + key if size <= MAX_KEY_BYTES else None


def call(method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call DynamoDB, turning 'try again later' into TransientError."""
    try:
        return method(**kwargs)
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if error_code(error) == "TransactionConflictException":
            raise TransactionConflictError(f"DynamoDB: {error}") from error
        if error_code(error) in TRANSIENT_CODES or status >= 500:
            raise TransientError(f"DynamoDB: {error_code(error)}: {error}",
                                 _cause(error_code(error))) from error
        raise
    except BotoCoreError as error:  # connection errors and timeouts
        raise TransientError(f"DynamoDB unreachable: {error}") from error


def _cause(code: str) -> RetryCause:
    if code in THROTTLING:
        return RetryCause.THROTTLED
    return RetryCause.CONFLICT if code == "TransactionInProgressException" \
        else RetryCause.UNAVAILABLE


def get_record(client: Any, table: str, key: str) -> dict[str, Any] | None:
    """The record under `key` (strongly consistent), as plain values, or None."""
    response = call(client.get_item, TableName=table, Key={"pk": {"S": key}},
                    ConsistentRead=True)
    record = response.get("Item")
    return from_map(record) if record else None


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_configuration_error(message: str) -> bool:
    # Our table setting, not the request, is wrong: keep the message (DLQ) until it is fixed.
    return "table/index name" in message or "resource not found" in message.lower()


def refusal(message: str) -> InvalidCommandError:
    """What DynamoDB's ValidationError says about the request: rejected, never retried."""
    # "Item size has exceeded the maximum allowed size", "Item size to update has exceeded ...";
    # not "Expression size has exceeded ...", which is no fault of the item's.
    if "item size" in message.lower() and "exceeded" in message.lower():
        return ItemTooLargeError(
            f"the item would be over DynamoDB's 400 KB item size limit ({message})")
    return InvalidCommandError(f"DynamoDB refused the write as invalid: {message}")


def cancellation_error(reasons: list[dict[str, Any]]) -> TransientError:
    """A transaction cancelled for none of the request's conditions nor its validity: retried."""
    codes = {reason.get("Code") for reason in reasons}
    if "TransactionConflict" in codes:
        return TransactionConflictError("transaction cancelled: TransactionConflict")
    if codes & TRANSIENT_REASONS:
        return TransientError(f"transaction cancelled: {sorted(c for c in codes if c)}",
                              RetryCause.THROTTLED if codes & THROTTLING
                              else RetryCause.UNAVAILABLE)
    return TransientError(f"transaction cancelled for an unknown reason: {reasons}",
                          RetryCause.UNEXPECTED)
