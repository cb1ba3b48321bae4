"""The message contract: what a queued request says, and who sent it when."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib import attributes, schema
from chalicelib.errors import InvalidCommandError

COMMAND_SCHEMA = schema.load_schema()
# The message attributes the mapping template sets (infra/extension.yaml, SendMessageMethod).
REQUEST_ID = "requestId"
REQUEST_TIME_EPOCH = "requestTimeEpoch"


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
    problems = schema.errors(COMMAND_SCHEMA, document)
    if problems:
        known = document if isinstance(document, dict) else {}
        operation, item_id = known.get("operation"), known.get("id")
        raise InvalidCommandError("; ".join(problems),
                                  operation if isinstance(operation, str) else None,
                                  item_id if isinstance(item_id, str) else None)
    return Command(
        operation=document["operation"],
        id=document["id"],
        item=document.get("item", {}),
        expected_version=document.get("expectedVersion"),
    )


def record_stamp(record: dict[str, Any]) -> Stamp:
    """requestId and requestTimeEpoch set by the mapping template; for a message sent straight to
    the queue, its SQS messageId and SentTimestamp."""
    message_attributes = record.get("messageAttributes") or {}
    request_id = _attribute(message_attributes, REQUEST_ID) or record["messageId"]
    epoch = _attribute(message_attributes, REQUEST_TIME_EPOCH)
    if epoch is None or not epoch.isdigit():
        epoch = (record.get("attributes") or {}).get("SentTimestamp", "0")
    return Stamp(int(epoch), request_id)


def _attribute(message_attributes: dict[str, Any], name: str) -> str | None:
    value = message_attributes.get(name) or {}
    text = value.get("stringValue")
    return text if text else None
