"""moto's SQS kept fast at any queue depth, as SQS is, and its deletes safe.

moto's SQS slowed down as a backlog grew (a receive of 10 took 2.6 s at a depth of 2,000), and
could lose a message sent while another was being deleted: these patches keep its calls at a few
ms at any depth.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from moto.core.utils import camelcase_to_underscores
from moto.sqs.models import Message, Queue, SQSBackend

# The FIFO patch sets the approximate count that this module wraps below: it must come first.
from devstack.moto_patches import sqs_fifo_order  # noqa: F401


def _visible(message: Message) -> bool:
    return time.time() * 1000 > message.visible_at


def _delayed(message: Message) -> bool:
    return time.time() * 1000 < message.delayed_until


def _within_retention(backend: SQSBackend, queue_name: str, message: Message) -> bool:
    # Set from the queue's attributes by name (moto's Queue.__init__), so unknown to mypy.
    queue: Any = backend.get_queue(queue_name)
    retention = int(queue.message_retention_period)
    return time.time() < retention + (message.sent_timestamp or 0) / 1000


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
