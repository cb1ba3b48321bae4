"""A DynamoDB stream record of the table as one clean change event, or nothing (bookkeeping).

An event says what a client of the read API would have seen change:

    {"id", "version", "change": "created" | "updated" | "deleted", "requestId",
     "requestTimeEpoch", "old": {...} | null, "new": {...} | null}

with `old`/`new` the item as GET /items/{id} shows it (null where it does not exist) and numbers
exact. Everything else the table's stream carries is dropped: outcome records (`request#…`),
tombstone-to-tombstone changes (a delete of a deleted item), TTL removals of tombstones, and
changes the read API cannot see (stamps only). Pure functions, no I/O.

The images are read as AWS writes them and as the emulators do: DynamoDB Local 3.3.0 writes an
empty map as `{}` where GetItem gives `{"M": {}}`; moto 5.2.5 emits a key-only INSERT before the
real one when an update creates an item, and a MODIFY for a no-op write (both: nothing a
reader can see changed, so no event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.attributes import AttributeValue, from_map
from chalicelib.dynamodb import ITEM_PREFIX
from chalicelib.reads import public_item

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
# A TTL deletion's record names DynamoDB itself ("Time to Live: How it works", DynamoDB
# Developer Guide: userIdentity type "Service", principalId "dynamodb.amazonaws.com").
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class MalformedRecordError(ValueError):
    """A stream record this code cannot read: reported as a failure, never skipped."""


@dataclass(frozen=True)
class Change:
    """One event, with where it came from (the record's sequence number, for retries)."""

    sequence_number: str
    event: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.event["change"])


def change_of(record: dict[str, Any]) -> Change | None:
    """The change a stream record (Lambda's shape: `eventName`, `dynamodb`, `userIdentity`)
    shows, or None for bookkeeping."""
    try:
        stream = record["dynamodb"]
        sequence = str(stream["SequenceNumber"])
        key = stream["Keys"]["pk"]["S"]
    except (KeyError, TypeError) as error:
        raise MalformedRecordError(f"not a stream record of this table: {error!r}") from error
    if not key.startswith(ITEM_PREFIX):
        return None  # an outcome record
    identity = record.get("userIdentity") or {}
    if record.get("eventName") == "REMOVE" and identity.get("principalId") == TTL_PRINCIPAL:
        return None  # TTL: only tombstones carry expiresAt
    try:
        old_record = _record(stream.get("OldImage"))
        new_record = _record(stream.get("NewImage"))
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedRecordError(f"record {sequence}: unreadable image: {error}") from error
    old, new = _visible(old_record), _visible(new_record)
    if old == new:
        return None  # nothing the read API shows changed
    item_id = key[len(ITEM_PREFIX):]
    if new is not None:
        version = new["version"]
    elif new_record is not None and "version" in new_record:
        version = new_record["version"]  # the tombstone's version
    else:  # removed from the table outside the API: the next version, by no request
        version = (old or {}).get("version", 0) + 1
    request_id, request_time = _written_by(old_record, new_record)
    return Change(sequence, {
        "id": item_id, "version": version,
        "change": CREATED if old is None else DELETED if new is None else UPDATED,
        "requestId": request_id, "requestTimeEpoch": request_time,
        "old": old, "new": new,
    })


def _record(image: dict[str, AttributeValue] | None) -> dict[str, Any] | None:
    return from_map(_empty_maps_fixed(image)) if image else None


def _empty_maps_fixed(image: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    return {name: _fixed(value) for name, value in image.items()}


def _fixed(value: AttributeValue) -> AttributeValue:
    """`{}` (DynamoDB Local's empty map in stream images) as `{"M": {}}`, at any depth."""
    if not value:
        return {"M": {}}
    if "M" in value:
        return {"M": _empty_maps_fixed(value["M"])}
    if "L" in value:
        return {"L": [_fixed(member) for member in value["L"]]}
    return value


def _visible(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """The item as GET /items/{id} shows it, or None where it shows nothing."""
    if record is None or record.get("deleted") or "version" not in record or "id" not in record:
        return None  # absent, a tombstone, or moto's key-only first INSERT
    return public_item(record)


def _written_by(old: dict[str, Any] | None, new: dict[str, Any] | None
                ) -> tuple[str | None, int | None]:
    """The request that wrote `new`: its recorded stamp, or for an item written before the
    stamp was recorded, the attribute stamp this write set, else the base (a create, put or
    delete sets the base). None where no request wrote it."""
    if new is None:
        return None, None
    if "lastWriteId" in new:
        return str(new["lastWriteId"]), int(new["lastWriteTime"])
    old_stamps = (old or {}).get("attrStamps") or {}
    changed = [text for name, text in (new.get("attrStamps") or {}).items()
               if old_stamps.get(name) != text]
    if changed:
        time_text, _, request_id = max(changed).partition("#")
        return request_id, int(time_text)
    if "lastRequestId" in new:
        return str(new["lastRequestId"]), int(new["lastRequestTime"])
    return None, None
