"""moto's server with SQS fixed in order and speed; run as a script (moto and the standard library).

    python devstack/moto_server.py -H 127.0.0.1 -p 5000

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
and could lose a message sent while another was being deleted: the patches at the end keep its
calls at a few ms at any depth, as SQS's are (bench.queue_depth), and its deletes safe.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path: its modules (auth, infra, resources...)
# must not shadow anything moto imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

import time  # noqa: E402
from typing import Any  # noqa: E402

from moto import backends  # noqa: E402
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
# at a depth of 500 took 0.5 s, and 2.6 s at 2,000 (BENCHMARKS.md, section 6b).
Message.visible = property(_visible)  # type: ignore[assignment]
Message.delayed = property(_delayed)  # type: ignore[assignment]
SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
    _within_retention)  # type: ignore[assignment]
# Safety: moto deletes a message by rebuilding the queue's list from a copy, outside the lock
# under which a send appends. A send landing during the copy was lost, and a delete racing
# another could bring its message back. Seen at 150 requests/s through the local pipeline (7 of
# 9,000 accepted requests gone); tests/functional/test_bench_queue_depth.py reproduces it.
_stock_delete_message = Queue.delete_message


def _delete_message(queue: Queue, receipt_handle: str) -> None:
    with queue._messages_lock:
        _stock_delete_message(queue, receipt_handle)


Queue.delete_message = _delete_message  # type: ignore[method-assign, assignment]

# moto's dispatcher lists its package folder (a listdir and about 200 isdir calls) to route each
# request, under a lock that every request takes: the list, read once, does not change.
_MODULES = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

if __name__ == "__main__":
    main()
