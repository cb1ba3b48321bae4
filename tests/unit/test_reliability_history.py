"""R6's accounting (bench/reliability_history.py) on made-up tables: a complete history holds,
and each way of getting it wrong is counted, so the full-size run can fail."""

from __future__ import annotations

from typing import Any

from bench.reliability_history import History, account_history
from bench.reliability_workload import Snapshot


def event(version: int, request_id: str, old: dict[str, Any] | None,
          new: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": "a", "version": version, "requestId": request_id, "old": old, "new": new}


def tables() -> tuple[Snapshot, History]:
    """Item `a`: put (v1), update (v2), delete (v3), delete of the deleted item (v4: no
    event), put again (v5)."""
    snapshot = Snapshot()
    for n, operation in enumerate(["put", "update", "delete", "delete", "put"], start=1):
        snapshot.outcomes[f"r{n}"] = {"status": "applied", "operation": operation, "id": "a"}
    snapshot.outcomes["r6"] = {"status": "rejected", "operation": "create", "id": "a"}
    snapshot.items["a"] = {"id": "a", "version": 5, "item": {"x": 2}}
    v1, v2, v5 = {"id": "a", "version": 1}, {"id": "a", "version": 2, "x": 1}, {
        "id": "a", "version": 5, "x": 2}
    history = {"a": {1: event(1, "r1", None, v1), 2: event(2, "r2", v1, v2),
                     3: event(3, "r3", v2, None), 5: event(5, "r5", None, v5)}}
    return snapshot, history


def test_a_complete_history_holds_with_the_silent_delete_counted_apart() -> None:
    result = account_history(*tables())
    assert result.holds, result.examples
    assert (result.applied_writes, result.history_entries, result.tombstone_deletes) == (5, 4, 1)


def test_a_lost_entry_is_missing() -> None:
    snapshot, history = tables()
    del history["a"][2]
    result = account_history(snapshot, history)
    assert result.missing == 1 and not result.holds


def test_a_lost_delete_before_a_re_create_is_missing_not_a_silent_delete() -> None:
    snapshot, history = tables()
    del history["a"][3]
    result = account_history(snapshot, history)
    assert result.missing == 1 and not result.holds


def test_a_request_under_two_versions_is_twice_and_a_stranger_is_unknown() -> None:
    snapshot, history = tables()
    history["a"][2]["requestId"] = "r1"
    assert account_history(snapshot, history).twice == 1
    history["a"][2]["requestId"] = "r6"  # rejected: no version of its own
    assert account_history(snapshot, history).unknown == 1


def test_images_that_do_not_chain_are_counted() -> None:
    snapshot, history = tables()
    history["a"][5]["new"] = {"id": "a", "version": 5, "x": 3}
    assert account_history(snapshot, history).chain_breaks == 1
    snapshot.items["a"]["version"] = 6
    assert account_history(snapshot, history).version_not_applied_writes == 1
