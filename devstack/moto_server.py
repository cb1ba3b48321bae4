"""moto's server with one fix to SQS FIFO order; run as a script (moto and the standard library).

    python devstack/moto_server.py -H 127.0.0.1 -p 5000

moto 5.2.5 holds a message group while any of its received messages is "pending", and a pending
message stops being pending only when a receive walks past it. When two messages of a group time
out together (a batch whose first message failed, then its later ones, handed back as FIFO
requires), the walk reaches the first, still sees the second pending, skips the first, then
delivers the second: the group comes back out of order. SQS redelivers a group in order (it
returns a group's messages up to the first one still in flight: LocalStack's AWS-validated fix,
localstack#13386). Here a message whose visibility timeout has passed no longer holds its group,
so the earliest visible message of the group is delivered first; the group's later messages may
come one receive later than on SQS, never before it (tests/functional/test_fifo.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path: its modules (auth, infra, resources...)
# must not shadow anything moto imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]

from moto.server import main  # noqa: E402
from moto.sqs.models import Queue  # noqa: E402


def _held_groups(queue: Queue) -> set[str]:
    """Groups with a received message still invisible (in flight)."""
    return {message.group_id for message in queue._pending_messages
            if message.group_id is not None and not message.visible}


Queue.pending_message_groups = property(_held_groups)  # type: ignore[assignment]

if __name__ == "__main__":
    main()
