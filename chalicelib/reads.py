"""The read API's items: one item (GET /items/{id}), and pages of live items (GET /items)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.attributes import from_map
from chalicelib.dynamodb import (
    ITEM_PREFIX,
    REQUEST_PREFIX,
    call,
    error_code,
    get_record,
    table_key,
)
from chalicelib.errors import InvalidQueryError, ItemNotFoundError
from chalicelib.settings import Settings

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
MAX_SCAN_CALLS_PER_PAGE = 10
BAD_CURSOR = "cursor is not one this API returned"


class ItemReader:
    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.table = settings.table_name

    def get_item(self, item_id: str) -> dict[str, Any]:
        key = table_key(ITEM_PREFIX, item_id)
        found = get_record(self.client, self.table, key) if key else None
        if found is None:
            raise ItemNotFoundError(f"item {item_id!r} does not exist")
        if found.get("deleted"):
            raise ItemNotFoundError(f"item {item_id!r} was deleted")
        return public_item(found)

    def list_items(self, limit: str | int | None = None,
                   cursor: str | None = None) -> dict[str, Any]:
        """One page of live items; "cursor" (absent on the last page) asks for the next."""
        page_size = page_size_of(limit)
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(#pk, :prefix) AND attribute_not_exists(#deleted)",
            "ExpressionAttributeNames": {"#pk": "pk", "#deleted": "deleted"},
            "ExpressionAttributeValues": {":prefix": {"S": ITEM_PREFIX}},
        }
        if cursor:
            start = table_key("", decode_cursor(cursor))
            if start is None:
                raise InvalidQueryError(BAD_CURSOR)
            request["ExclusiveStartKey"] = {"pk": {"S": start}}
        items: list[dict[str, Any]] = []
        last_key: str | None = None
        for _ in range(MAX_SCAN_CALLS_PER_PAGE):
            try:
                response = call(self.client.scan, **request)
            except ClientError as error:
                if error_code(error) == "ValidationException" and cursor:
                    raise InvalidQueryError(BAD_CURSOR) from error
                raise
            items.extend(response.get("Items", []))
            last_evaluated = response.get("LastEvaluatedKey")
            if len(items) > page_size:  # resume right after the last item returned
                items = items[:page_size]
                last_key = items[-1]["pk"]["S"]
                break
            last_key = last_evaluated["pk"]["S"] if last_evaluated else None
            if last_key is None or len(items) == page_size:
                break
            request["ExclusiveStartKey"] = last_evaluated
        page: dict[str, Any] = {"items": [public_item(from_map(r)) for r in items]}
        if last_key is not None:
            page["cursor"] = encode_cursor(last_key)
        return page


def public_item(record: dict[str, Any]) -> dict[str, Any]:
    """An item as the API shows it: its id, version and attributes, no bookkeeping."""
    return {"id": record["id"], "version": record["version"], **record.get("item", {})}


def page_size_of(limit: str | int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(limit)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidQueryError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key.startswith((ITEM_PREFIX, REQUEST_PREFIX)):
        raise InvalidQueryError(BAD_CURSOR)
    return key
