"""Stream records of the table as change events (chalicelib/changes.py), without I/O. The images
follow the store's layout (writes.py); the functional tests check the same against both stores'
real streams (tests/functional/test_changes_stream.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib.attributes import to_map
from chalicelib.changes import MalformedRecordError, change_of


def image(item_id: str, version: int, item: dict[str, Any] | None = None, *,
          deleted: bool = False, request: tuple[int, str] | None = (5, "r5"),
          base: tuple[int, str] = (1, "r1"), stamps: dict[str, str] | None = None
          ) -> dict[str, Any]:
    """An item record as the stream shows it (the store's attributes)."""
    values: dict[str, Any] = {
        "pk": f"item#{item_id}", "id": item_id, "version": version,
        "lastRequestTime": base[0], "lastRequestId": base[1], "updatedAt": 99,
        "attrStamps": stamps or {},
    }
    if request is not None:
        values["lastWriteTime"], values["lastWriteId"] = request
    if item is not None:
        values["item"] = item
    if deleted:
        values.update(deleted=True, expiresAt=123)
    return to_map(values)


def record(name: str, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None,
           **extra: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {"Keys": {"pk": {"S": key}}, "SequenceNumber": "100",
                              "StreamViewType": "NEW_AND_OLD_IMAGES", "SizeBytes": 10,
                              "ApproximateCreationDateTime": 1.7e9}
    if old is not None:
        stream["OldImage"] = old
    if new is not None:
        stream["NewImage"] = new
    return {"eventName": name, "eventID": "e", "eventSource": "aws:dynamodb",
            "awsRegion": "us-west-2", "dynamodb": stream, **extra}


def test_a_create_is_created_with_the_item_as_get_shows_it() -> None:
    change = change_of(record("INSERT", "item#a", None, image("a", 1, {"x": 1})))
    assert change is not None and change.sequence_number == "100"
    assert change.event == {"id": "a", "version": 1, "change": "created", "requestId": "r5",
                            "requestTimeEpoch": 5, "old": None,
                            "new": {"id": "a", "version": 1, "x": 1}}


def test_an_update_and_a_put_are_updated_with_both_images() -> None:
    old, new = image("a", 1, {"x": 1}), image("a", 2, {"x": 2, "y": [1, {"z": None}]},
                                              request=(7, "r7"))
    change = change_of(record("MODIFY", "item#a", old, new))
    assert change is not None and change.kind == "updated"
    assert change.event["old"] == {"id": "a", "version": 1, "x": 1}
    assert change.event["new"] == {"id": "a", "version": 2, "x": 2, "y": [1, {"z": None}]}
    assert (change.event["requestId"], change.event["requestTimeEpoch"]) == ("r7", 7)


def test_a_delete_is_deleted_with_the_tombstones_version() -> None:
    change = change_of(record("MODIFY", "item#a", image("a", 3, {"x": 1}),
                              image("a", 4, deleted=True, request=(9, "r9"))))
    assert change is not None
    assert change.event == {"id": "a", "version": 4, "change": "deleted", "requestId": "r9",
                            "requestTimeEpoch": 9, "old": {"id": "a", "version": 3, "x": 1},
                            "new": None}


def test_a_create_over_a_tombstone_is_created() -> None:
    change = change_of(record("MODIFY", "item#a", image("a", 4, deleted=True),
                              image("a", 5, {"x": 1})))
    assert change is not None and change.kind == "created" and change.event["version"] == 5


@pytest.mark.parametrize("old, new", [
    (image("a", 4, deleted=True), image("a", 5, deleted=True)),  # a delete of a deleted item
    (image("a", 4, deleted=True), image("a", 4, {"ghost": 1}, deleted=True)),  # a late update
    (image("a", 2, {"x": 1}), image("a", 2, {"x": 1}, stamps={"x": "x"})),  # stamps only
    (image("a", 2, {"x": 1}), image("a", 2, {"x": 1})),  # moto: a no-op write's MODIFY
    (None, to_map({"pk": "item#a"})),  # moto: an update's key-only first INSERT
])
def test_bookkeeping_gives_no_event(old: dict[str, Any] | None,
                                    new: dict[str, Any] | None) -> None:
    name = "INSERT" if old is None else "MODIFY"
    assert change_of(record(name, "item#a", old, new)) is None


def test_outcome_records_and_ttl_removals_give_no_event() -> None:
    outcome = to_map({"pk": "request#r1", "status": "applied"})
    assert change_of(record("INSERT", "request#r1", None, outcome)) is None
    ttl = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert change_of(record("REMOVE", "item#a", image("a", 4, deleted=True), None,
                            userIdentity=ttl)) is None


def test_a_live_item_removed_outside_the_api_is_deleted_by_no_request() -> None:
    change = change_of(record("REMOVE", "item#a", image("a", 3, {"x": 1}), None))
    assert change is not None and change.kind == "deleted"
    assert (change.event["version"], change.event["requestId"]) == (4, None)


def test_numbers_stay_exact_and_nested() -> None:
    values = {"big": 12345678901234567890123456789, "tenth": Decimal("0.1"),
              "deep": {"a": [{"b": Decimal("-1E-130")}]}}
    change = change_of(record("INSERT", "item#n", None, image("n", 1, values)))
    assert change is not None
    new = change.event["new"]
    assert new["big"] == 12345678901234567890123456789 and isinstance(new["big"], int)
    assert str(new["tenth"]) == "0.1" and str(new["deep"]["a"][0]["b"]) == "-1E-130"


def test_dynamodb_locals_empty_map_is_an_empty_map_at_any_depth() -> None:
    new = image("a", 1, {"e": {}, "l": [{}]})
    new["attrStamps"] = {}  # DynamoDB Local 3.3.0's stream image: `{}`, not {"M": {}}
    new["item"]["M"]["e"] = {}
    new["item"]["M"]["l"] = {"L": [{}]}
    change = change_of(record("INSERT", "item#a", None, new))
    assert change is not None and change.event["new"] == {"id": "a", "version": 1, "e": {},
                                                          "l": [{}]}


def test_an_item_without_the_write_stamp_names_its_writer_from_its_other_stamps() -> None:
    old = image("a", 1, {"x": 1}, request=None, stamps={})
    updated = image("a", 2, {"x": 2}, request=None,
                    stamps={"x": "0000000000000042#r42"})
    change = change_of(record("MODIFY", "item#a", old, updated))
    assert change is not None
    assert (change.event["requestId"], change.event["requestTimeEpoch"]) == ("r42", 42)
    put = image("a", 3, {"x": 3}, request=None, base=(50, "r50"))
    change = change_of(record("MODIFY", "item#a", updated, put))
    assert change is not None and change.event["requestId"] == "r50"


def test_an_unreadable_record_is_an_error_not_a_skip() -> None:
    with pytest.raises(MalformedRecordError):
        change_of({"eventName": "INSERT", "dynamodb": {"SequenceNumber": "1"}})
    bad = image("a", 1, {"x": 1})
    bad["item"] = {"Q": "?"}
    with pytest.raises(MalformedRecordError):
        change_of(record("INSERT", "item#a", None, bad))
