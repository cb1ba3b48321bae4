"""moto's DynamoDB TransactWriteItems made atomic and isolated, and its stream records those of
committed changes only, as DynamoDB's.

moto copied the whole table once per action before a transaction began, to roll back by putting
the copy back: a transaction's time grew with the table, and a rollback wiped out whatever other
requests had written meanwhile. Here a transaction saves and restores only the items it touches,
and DynamoDB's writes and reads run one at a time, so that no request sees a transaction
half-done ("Isolation levels for DynamoDB transactions", DynamoDB Developer Guide).
tests/functional/test_moto_transactions.py checks the patched server; on stock moto 5.2.5 the
same run (8 writers and a canceller, 160 writes) lost 3 to 6 writes in every trial. Re-check with
each moto upgrade: drop the patch once stock moto passes that test.

moto's table streams followed every internal step of those writes: a cancelled transaction left
the records of its actions and of their rollback, an update that created an item wrote two
INSERTs, and a write that changed nothing wrote a MODIFY. DynamoDB writes one record per item a
committed write changed, none for a write that changed nothing ("Change data capture for
DynamoDB Streams", DynamoDB Developer Guide); so does this patch
(tests/functional/test_changes_stream.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table

# One lock for every table of the server: moto answers
# from one process, so this costs little, and a transaction may span tables.
_DYNAMODB = threading.RLock()
ItemKey = tuple[Table, DynamoType, DynamoType | None]


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB:
            return method(*args, **kwargs)
    return locked


def _touched(backend: DynamoDBBackend, actions: list[dict[str, Any]]
             ) -> dict[ItemKey, Item | None]:
    """A copy of each item the actions may write, as it is now (None where there is none)."""
    saved: dict[ItemKey, Item | None] = {}
    for action in actions:
        for operation in action.values():
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue  # nothing of it gets written: moto's checks answer for it
            key = operation.get("Key") or operation.get("Item") or {}
            try:
                hash_value, range_value = backend.get_keys_value(table, key)
            except (MockValidationException, KeyError, TypeError, AttributeError):
                continue
            if (table, hash_value, range_value) not in saved:
                saved[(table, hash_value, range_value)] = copy.deepcopy(
                    table.get_item(hash_value, range_value))
    return saved


def _restore(saved: dict[ItemKey, Item | None]) -> None:
    for (table, hash_value, range_value), before in saved.items():
        if before is None:
            table.delete_item(hash_value, range_value)
        elif range_value is not None:
            table.items[hash_value][range_value] = before
        else:
            table.items[hash_value] = before  # type: ignore[assignment]  # (moto's own too)


# Set while a transaction runs (in its thread): its writes' stream records wait for the commit.
_IN_TRANSACTION = threading.local()
_stock_shard_add = StreamShard.add


def _shard_add(shard: StreamShard, old: Item | None, new: Item | None) -> None:
    if getattr(_IN_TRANSACTION, "active", False):
        return
    if old is not None and new is not None and old.to_json() == new.to_json():
        return  # nothing changed: no record
    _stock_shard_add(shard, old, new)


StreamShard.add = _shard_add  # type: ignore[method-assign, assignment]


def _record_committed(saved: dict[ItemKey, Item | None]) -> None:
    """One stream record per item the committed transaction changed."""
    for (table, hash_value, range_value), before in saved.items():
        if table.stream_shard is None:
            continue
        after = table.get_item(hash_value, range_value)
        if before is not None or after is not None:
            _shard_add(table.stream_shard, before, after)


def _transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    with _DYNAMODB:  # the records follow the commit before any other write
        _IN_TRANSACTION.active = True
        try:
            saved = _transact_write_items_quietly(backend, transact_items)
        finally:
            _IN_TRANSACTION.active = False
        _record_committed(saved)


def _transact_write_items_quietly(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
                                  ) -> dict[ItemKey, Item | None]:
    """moto 5.2.5's DynamoDBBackend.transact_write_items, with the rollback above. As there,
    every action is tried so that each gets its cancellation reason."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _DYNAMODB:
        saved = _touched(backend, transact_items)
        targets: set[tuple[str, str]] = set()
        errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
        for action in transact_items:
            old: dict[str, Any] | None = None
            try:
                if len(action) > 1:  # a MockValidationException: undone and raised below
                    raise TransactWriteSingleOpException
                kind, operation = next(iter(action.items()))
                if kind not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                name = operation["TableName"]
                if kind == "Put":
                    table = backend.get_table(name)
                    key = {attribute: operation["Item"][attribute] for attribute in
                           (table.hash_key_attr, table.range_key_attr) if attribute is not None}
                else:
                    key = operation["Key"]
                target = (str(name), str(dict(sorted(key.items()))))
                if target in targets:
                    raise MultipleTransactionsException()
                targets.add(target)
                current = backend.get_item(name, key)
                condition = operation.get("ConditionExpression")
                names = operation.get("ExpressionAttributeNames")
                values = operation.get("ExpressionAttributeValues")
                if condition is not None and not get_filter_expression(
                        condition, names, values).expr(current):
                    if operation.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" \
                            and current:
                        old = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=old)
                if kind == "Put":
                    backend.put_item(name, operation["Item"], condition_expression=condition,
                                     expression_attribute_names=names,
                                     expression_attribute_values=values)
                elif kind == "Delete":
                    backend.delete_item(name, key, condition_expression=condition,
                                        expression_attribute_names=names,
                                        expression_attribute_values=values)
                elif kind == "Update":
                    backend.update_item(name, key, update_expression=operation[
                        "UpdateExpression"], condition_expression=condition,
                        expression_attribute_names=names, expression_attribute_values=values)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                _restore(saved)
                raise
            except ConditionalCheckFailed as failed:
                errors.append(("ConditionalCheckFailed", str(failed.message), old))
            except Exception as error:  # as moto: any other failure cancels, with its name
                errors.append((type(error).__name__, str(error), old))
        if any(code is not None for code, _, _ in errors):
            _restore(saved)
            raise TransactionCanceledException(errors)
    return saved


DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign, assignment]
# (moto's batch and TransactGetItems calls go through these too, an item at a time.)
for _name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan"):
    setattr(DynamoDBBackend, _name, _one_at_a_time(getattr(DynamoDBBackend, _name)))
