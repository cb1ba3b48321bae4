"""What became of a request: the outcome the consumer records once and GET /requests/{id} reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    request_id: str
    status: str  # "applied" or "rejected"
    operation: str | None = None
    id: str | None = None
    reason: str | None = None
    item: dict[str, Any] | None = None
    found: bool | None = None  # reads only: whether the item existed
    # Reads only: the item exists but is too large to copy into the outcome (GET /items/{id}).
    item_too_large: bool = False
    duplicate: bool = False  # this delivery found the request already handled
    # As read back (GET /requests/{id}), epoch milliseconds: when API Gateway received the
    # request, and when the consumer recorded this outcome.
    request_time_epoch: int | None = None
    handled_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"requestId": self.request_id, "status": self.status,
                                "operation": self.operation, "id": self.id}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.operation == "read" and self.status == "applied":
            body["found"] = bool(self.found)
            if self.item_too_large:
                body["itemTooLarge"] = True  # and no "item": it was not copied
            else:
                body["item"] = self.item
        if self.request_time_epoch is not None:
            body["requestTimeEpoch"] = self.request_time_epoch
        if self.handled_at is not None:
            body["handledAt"] = self.handled_at
        return body


def outcome_from_attributes(record: dict[str, Any], duplicate: bool = False) -> Outcome:
    return Outcome(record["requestId"], record["status"], record.get("operation"),
                   record.get("id"), record.get("reason"), record.get("item"),
                   record.get("found"), bool(record.get("itemTooLarge")), duplicate,
                   _epoch_ms(record.get("requestTimeEpoch")), _epoch_ms(record.get("handledAt")))


def _epoch_ms(value: Any) -> int | None:
    return int(value) if value is not None else None


def without_item(read: Outcome) -> Outcome:
    return Outcome(read.request_id, read.status, read.operation, read.id,
                   "the item is too large to copy into this outcome: read it with GET /items/{id}",
                   found=True, item_too_large=True)
