"""moto's SQS FIFO queues redeliver a message group in order, as SQS does.

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
"""

from __future__ import annotations

from moto.sqs.models import Message, Queue


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


Queue.pending_message_groups = property(_held_groups)  # type: ignore[assignment]
Queue.messages = property(_deliverable)  # type: ignore[assignment]
# ApproximateNumberOfMessages counted `messages`: it still counts every visible message.
Queue.approximate_number_of_messages = property(  # type: ignore[assignment]
    lambda queue: sum(1 for m in list(queue._messages) if m.visible and not m.delayed))
