"""A batch's records as lanes: the messages that must run one after another, in their order.

From a standard queue a lane is one item's messages in request order (requestTimeEpoch, then
requestId), whatever order SQS delivered them in. From a FIFO queue (`.fifo`) a lane is a
message group in the order SQS delivered it. A message that is no command, or whose record is
malformed, gets a lane of its own.
"""

from __future__ import annotations

from typing import Any

from chalicelib.commands import Command, Stamp, parse_command, record_stamp
from chalicelib.errors import InvalidCommandError
from chalicelib.settings import FIFO_SUFFIX

SqsRecord = dict[str, Any]
# A message and its body as parsed (a command, or why it is not one).
Parsed = Command | Exception
Lane = list[tuple[SqsRecord, Parsed]]


def lanes(records: list[SqsRecord]) -> list[Lane]:
    """The batch's lanes, in the order their first message came."""
    found: dict[str, Lane] = {}
    for number, record in enumerate(records):
        parsed = parse(record)
        group = (record.get("attributes") or {}).get("MessageGroupId")
        if is_fifo(record) and isinstance(group, str):
            key = f"group:{group}"  # SQS's order within the group is the order to keep
        elif isinstance(parsed, Command):
            key = f"item:{parsed.id}"
        else:
            key = f"message:{number}"
        found.setdefault(key, []).append((record, parsed))
    return [lane if key.startswith("group:") else
            sorted(lane, key=lambda entry: _sort_stamp(entry[0]))
            for key, lane in found.items()]


def is_fifo(record: SqsRecord) -> bool:
    return str(record.get("eventSourceARN", "")).endswith(FIFO_SUFFIX)


def parse(record: SqsRecord) -> Parsed:
    try:
        return parse_command(record["body"])
    except (InvalidCommandError, ValueError, ArithmeticError, UnicodeError, RecursionError,
            TypeError, KeyError) as error:
        return error


def _sort_stamp(record: SqsRecord) -> Stamp:
    try:
        return record_stamp(record)
    except Exception:  # a malformed record fails on its own turn, not here
        return Stamp(0, "")
