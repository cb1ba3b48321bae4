"""The message contract: what a queued request says, and who sent it when."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib import attributes, schema
from chalicelib.errors import InvalidCommandError

COMMAND_SCHEMA = schema.load_schema()
# The message attributes the mapping template sets (infra/extension.yaml, SendMessageMethod).
REQUEST_ID = "requestId"
REQUEST_TIME_EPOCH = "requestTimeEpoch"
# What a stamp may hold. Anything else in a message attribute (it could be sent straight to the
# queue) falls back to SQS's own messageId and SentTimestamp, for that message alone.
MAX_REQUEST_ID_CHARS = 512
_EPOCH_MS = re.compile(r"[0-9]{1,15}")  # ASCII digits only: str.isdigit() also accepts "²" or "٣"


@dataclass(frozen=True, order=True)
class Stamp:
    """When a request reached API Gateway; orders writes to one item (later wins, ties by id)."""

    request_time_epoch_ms: int
    request_id: str


@dataclass(frozen=True)
class Command:
    operation: str
    id: str
    item: dict[str, Any] = field(default_factory=dict)
    expected_version: int | None = None


def parse_command(body: str) -> Command:
    """The command in a message body, or InvalidCommandError saying what is wrong with it."""
    try:
        document = attributes.loads(body)
    except ValueError as error:
        raise InvalidCommandError(f"body is not valid JSON: {error}") from error
    except ArithmeticError as error:
        # decimal.InvalidOperation: valid JSON such as 1e9999999999999999999 has no decimal value.
        raise InvalidCommandError("body has a number too large to read (its exponent is out of "
                                  "range)") from error
    known = document if isinstance(document, dict) else {}
    operation, item_id = known.get("operation"), known.get("id")
    named = (operation if isinstance(operation, str) else None,
             item_id if isinstance(item_id, str) else None)
    # Lone surrogates only get into a str through \\uXXXX escapes: skip the walk without them.
    if "\\u" in body:
        where = attributes.lone_surrogate(document)
        if where is not None:
            raise InvalidCommandError(
                f"{where}: contains a lone UTF-16 surrogate escape (such as \\ud83d without its "
                f"pair), which is not Unicode text and cannot be stored", *named)
    problems = schema.errors(COMMAND_SCHEMA, document)
    if problems:
        raise InvalidCommandError("; ".join(problems), *named)
    return Command(
        operation=document["operation"],
        id=document["id"],
        item=document.get("item", {}),
        expected_version=document.get("expectedVersion"),
    )


def record_stamp(record: dict[str, Any]) -> Stamp:
    """requestId and requestTimeEpoch set by the mapping template; for a message sent straight to
    the queue, its SQS messageId and SentTimestamp."""
    message_attributes = record.get("messageAttributes")
    if not isinstance(message_attributes, dict):
        message_attributes = {}
    request_id = _attribute(message_attributes, REQUEST_ID)
    if request_id is None or len(request_id) > MAX_REQUEST_ID_CHARS:
        request_id = str(record["messageId"])
    epoch = _attribute(message_attributes, REQUEST_TIME_EPOCH)
    if epoch is None or not _EPOCH_MS.fullmatch(epoch):
        sent = (record.get("attributes") or {}).get("SentTimestamp")
        epoch = sent if isinstance(sent, str) and _EPOCH_MS.fullmatch(sent) else "0"
    return Stamp(int(epoch), request_id)


def _attribute(message_attributes: dict[str, Any], name: str) -> str | None:
    value = message_attributes.get(name)
    text = value.get("stringValue") if isinstance(value, dict) else None
    return text if isinstance(text, str) and text else None
