"""moto's server with SQS fixed in order and speed; run as a script (moto and the standard library).

    python devstack/moto_server.py -H 127.0.0.1 -p 5000   (moto's own options)
    python devstack/moto_server.py --fd N                 (serve on a listening socket)

devstack.emulator binds the socket and hands it over (--fd): the port is chosen and held before
this process starts, so no other program can take it in between (devstack/ports.py).

moto 5.2.5 holds a message group while any of its received messages is "pending", and a pending
message stops being pending only when a receive walks past it. When two messages of a group time
out together (a batch whose first message failed, then its later ones, handed back as FIFO
requires), the walk reaches the first, still sees the second pending, skips the first, then
delivers the second: the group comes back out of order. SQS redelivers a group in order (it
returns a group's messages up to the first one still in flight: LocalStack's AWS-validated fix,
localstack#13386). Here a message whose visibility timeout has passed no longer holds its group,
and a receive sees a group only up to its first message in flight, so the earliest visible
message of the group is delivered first; the group's later messages may come one receive later
than on SQS, never before it (tests/functional/test_fifo.py).

moto's SQS also slowed down as a backlog grew (a receive of 10 took 2.6 s at a depth of 2,000),
and could lose a message sent while another was being deleted: the patches below keep its
calls at a few ms at any depth, as SQS's are, and its deletes safe.

moto's DynamoDB TransactWriteItems copied the whole table once per action before it began, to
roll back by putting the copy back: a transaction's time grew with the table, and a rollback
wiped out whatever other requests had written meanwhile (so the pipeline's event source ran one
batch at a time on moto). The patch at the end saves and restores only the items a transaction
touches, and runs DynamoDB's writes and reads one at a time, so that no request sees a
transaction half-done: DynamoDB's transactions are atomic and isolated ("Isolation levels for
DynamoDB transactions", DynamoDB Developer Guide). tests/functional/test_moto_transactions.py
checks the patched server; on stock moto 5.2.5 the same run (8 writers and a canceller, 160
writes) lost 3 to 6 writes in every trial. Re-check with each moto upgrade: drop the patch once
stock moto passes that test.

moto's table streams followed every internal step of those writes: a cancelled transaction left
the records of its actions and of their rollback (INSERT/REMOVE pairs of nothing), an update
that created an item wrote two INSERTs (the key alone, then the item), and a write that changed
nothing wrote a MODIFY. DynamoDB writes one record per item a committed write changed, none for
a write that changed nothing ("Change data capture for DynamoDB Streams", DynamoDB Developer
Guide). Here a transaction writes its records when it commits, one per item it changed, and no
write records a change that did not happen (tests/functional/test_changes_stream.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path: its modules (auth, infra, resources...)
# must not shadow anything moto imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import contextvars  # noqa: E402
import copy  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import wraps  # noqa: E402
from typing import Any  # noqa: E402

import jsonpath_ng.ext as jsonpath_ext  # noqa: E402
from moto import backends  # noqa: E402
from moto.core.utils import camelcase_to_underscores  # noqa: E402
from moto.dynamodb.comparisons import get_filter_expression  # noqa: E402
from moto.dynamodb.exceptions import (  # noqa: E402
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType, Item  # noqa: E402
from moto.dynamodb.models.table import StreamShard, Table  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import main  # noqa: E402
from moto.sqs.models import Message, Queue, SQSBackend  # noqa: E402


def _held_groups(queue: Queue) -> set[str]:
    """Groups with a received message still invisible (in flight)."""
    return {message.group_id for message in queue._pending_messages
            if message.group_id is not None and not message.visible}


def _deliverable(queue: Queue) -> list[Message]:
    """The messages a receive may hand out: the visible ones and, in a FIFO queue, of each group
    only those before its first message in flight (or delayed).

    A visible message stops being pending here, before the receive loop sees it: otherwise the
    loop recomputes its held groups midway, and with a stale set from before it could skip a
    group's first message, then deliver its second (seen on CI; test_fifo.py)."""
    found: list[Message] = []
    blocked: set[str] = set()
    for message in list(queue._messages):
        ready = message.visible and not message.delayed  # read once: the clock moves
        if ready:
            queue._pending_messages.discard(message)
        group = message.group_id if queue.fifo_queue else None
        if group is not None and (group in blocked or not ready):
            blocked.add(group)
        elif ready:
            found.append(message)
    return found


def _visible(message: Message) -> bool:
    return time.time() * 1000 > message.visible_at


def _delayed(message: Message) -> bool:
    return time.time() * 1000 < message.delayed_until


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    # Set from the queue's attributes by name (moto's Queue.__init__), so unknown to mypy.
    queue: Any = backend.get_queue(queue_name)
    retention = int(queue.message_retention_period)
    return time.time() < retention + (message.sent_timestamp or 0) / 1000


Queue.pending_message_groups = property(_held_groups)  # type: ignore[assignment]
Queue.messages = property(_deliverable)  # type: ignore[assignment]
# ApproximateNumberOfMessages counted `messages`: it still counts every visible message.
Queue.approximate_number_of_messages = property(  # type: ignore[assignment]
    lambda queue: sum(1 for m in list(queue._messages) if m.visible and not m.delayed))

# Speed, so that a backlog does not slow the queue down (SQS does not): moto checked each
# received message's retention by computing every queue attribute, each a walk of the whole
# queue, and read the clock through datetime for every message in every walk. A receive of 10
# at a depth of 500 took 0.5 s, and 2.6 s at 2,000 (docs/benchmarks.md, decisions).
Message.visible = property(_visible)  # type: ignore[assignment]
Message.delayed = property(_delayed)  # type: ignore[assignment]
SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
    _within_retention)  # type: ignore[assignment]
# Safety: moto deletes a message by rebuilding the queue's list from a copy, outside the lock
# under which a send appends. A send landing during the copy was lost, and a delete racing
# another could bring its message back. Seen at 150 requests/s through the local pipeline (7 of
# 9,000 accepted requests gone); tests/functional/test_moto_sqs_backlog.py reproduces it.
_stock_delete_message = Queue.delete_message


def _delete_message(queue: Queue, receipt_handle: str) -> None:
    with queue._messages_lock:
        _stock_delete_message(queue, receipt_handle)


Queue.delete_message = _delete_message  # type: ignore[method-assign, assignment]

# Speed at depth, deletes: moto deleted a batch a receipt handle at a time, each with two walks
# of the whole queue (DeleteMessageBatch of 10 took 23 ms at a depth of 4,000 against 4 at 0).
# One walk for the batch here, under the lock, with moto's answers: a handle of a message
# deleted before (in this batch or earlier) succeeds, one never handed out fails.


def _delete_message_batch(backend: SQSBackend, queue_name: str, receipts: list[dict[str, Any]]
                          ) -> tuple[list[str], list[dict[str, Any]]]:
    queue: Any = backend.get_queue(queue_name)
    wanted = {receipt["ReceiptHandle"] for receipt in receipts}
    with queue._messages_lock:
        kept = []
        for message in queue._messages:
            if wanted.isdisjoint(message.all_receipt_handles):
                kept.append(message)
                continue
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
        queue._messages = kept
        valid = [receipt["ReceiptHandle"] in queue.deleted_messages for receipt in receipts]
    success = [receipt["Id"] for receipt, ok in zip(receipts, valid, strict=True) if ok]
    errors = [{"Id": receipt["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
               "Message": f'The input receipt handle "{receipt["ReceiptHandle"]}" is not a valid '
                          f'receipt handle.'}
              for receipt, ok in zip(receipts, valid, strict=True) if not ok]
    return success, errors


SQSBackend.delete_message_batch = _delete_message_batch  # type: ignore[method-assign, assignment]

# Speed at depth, sends: moto's send path (send_message, _validate_message, add_message) reads
# `queue.attributes`, a property that computes every attribute, three of them counts that walk
# the whole queue (a send took 11.5 ms at a depth of 4,000 against 4 at 0). While a send runs,
# those three counts answer None instead; nothing on the send path reads them (moto 5.2.5), and
# every other attribute is moto's own (tests/functional/test_moto_sqs.py).
_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
           "ApproximateNumberOfMessagesDelayed")
_SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("sending", default=False)
_stock_send_message = SQSBackend.send_message


def _skipped_while_sending(count: property) -> property:
    return property(lambda queue: None if _SENDING.get() else count.fget(queue))  # type: ignore[misc]


for _count in _COUNTS:
    _attribute = camelcase_to_underscores(_count)
    setattr(Queue, _attribute, _skipped_while_sending(getattr(Queue, _attribute)))


def _attributes_without_counts(queue: Queue) -> dict[str, Any]:
    """Queue.attributes as a send sees it, less the three counts."""
    token = _SENDING.set(True)
    try:
        attributes: dict[str, Any] = queue.attributes
    finally:
        _SENDING.reset(token)
    return {name: value for name, value in attributes.items() if name not in _COUNTS}


def _send_message(backend: SQSBackend, *args: Any, **kwargs: Any) -> Message:
    token = _SENDING.set(True)  # per thread: moto's server answers each request on its own
    try:
        return _stock_send_message(backend, *args, **kwargs)
    finally:
        _SENDING.reset(token)


SQSBackend.send_message = _send_message  # type: ignore[method-assign, assignment]

# moto's dispatcher lists its package folder (a listdir and about 200 isdir calls) to route each
# request, under a lock that every request takes: the list, read once, does not change.
_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

# DynamoDB: see the module's docstring. One lock for every table of the server: moto answers
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

# Speed, EventBridge: moto renders every event for every target through jsonpath_ng, parsing
# the same eight paths anew each time (a yacc parser built per path: about 9 ms an event, most of
# the change path's cost at 100 writes/s). The parsed paths do not change: parse each once.
jsonpath_ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ext.parse)


def serve_on(fd: int) -> None:
    """moto.server.main's server, on a socket that is already listening."""
    from werkzeug.serving import make_server

    listening = socket.socket(fileno=fd)
    host, port = listening.getsockname()[:2]
    os.environ.setdefault("MOTO_PORT", str(port))  # what moto's generated URLs name
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto.server.main
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler,
                         fd=fd)
    for signum in (signal.SIGINT, signal.SIGTERM):  # as moto.server.main
        signal.signal(signum, lambda signum, frame: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fd":
        serve_on(int(sys.argv[2]))
    else:
        main()
