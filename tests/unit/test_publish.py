"""The change publisher (chalicelib/publish.py) without I/O: PutEvents' limits, per-entry
failures retried, what cannot be published handed back to Lambda, large items shortened. The
EventBridge client is a scripted stand-in answering as PutEvents documents (Entries in request
order, an ErrorCode on a failed entry); tests/functional/test_history.py runs against moto's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.publish import (
    LARGE_DETAIL_BYTES,
    MAX_REQUEST_BYTES,
    ChangePublisher,
    detail_of,
    entry_size,
)
from tests.unit.test_changes import image, record


class ScriptedEvents:
    """PutEvents answering from a script: per call, the positions of entries that fail (or an
    exception for the whole call)."""

    def __init__(self, script: list[set[int] | Exception] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        assert len(Entries) <= 10 and sum(map(entry_size, Entries)) <= MAX_REQUEST_BYTES
        self.calls.append(Entries)
        failing = self.script.pop(0) if self.script else set()
        if isinstance(failing, Exception):
            raise failing
        answers = [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
                   if index in failing else {"EventId": f"e{index}"}
                   for index in range(len(Entries))]
        return {"FailedEntryCount": len(failing), "Entries": answers}


def creates(count: int, size: int = 0) -> list[dict[str, Any]]:
    records = []
    for index in range(count):
        item = {"x": index, **({"blob": "b" * size} if size else {})}
        one = record("INSERT", f"item#i{index}", None, image(f"i{index}", 1, item))
        one["dynamodb"]["SequenceNumber"] = str(1000 + index)
        records.append(one)
    return records


def published(events: ScriptedEvents) -> list[dict[str, Any]]:
    return [json.loads(entry["Detail"]) for call in events.calls for entry in call]


def test_events_go_in_calls_of_ten_with_source_and_detail_type() -> None:
    events = ScriptedEvents()
    result = ChangePublisher(events, "bus", sleep=lambda _: None).publish(creates(23))
    assert [len(call) for call in events.calls] == [10, 10, 3]
    assert result.published == 23 and result.batch_response() == {"batchItemFailures": []}
    entry = events.calls[0][0]
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "sqs-manager", "item.created", "bus")
    assert [e["id"] for e in published(events)] == [f"i{n}" for n in range(23)]


def test_calls_stay_under_256_kb() -> None:
    events = ScriptedEvents()
    ChangePublisher(events, "bus").publish(creates(5, size=100_000))
    assert [len(call) for call in events.calls] == [2, 2, 1]


def test_a_failed_entry_is_sent_again_alone() -> None:
    events = ScriptedEvents([{3, 7}, set()])
    result = ChangePublisher(events, "bus", sleep=lambda _: None).publish(creates(10))
    assert result.published == 10 and not result.failed
    assert [e["id"] for e in json_of(events.calls[1])] == ["i3", "i7"]


def json_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(entry["Detail"]) for entry in entries]


def test_what_keeps_failing_is_handed_back_from_its_first_record() -> None:
    events = ScriptedEvents([{2, 5}, {0}, {0}])
    result = ChangePublisher(events, "bus", sleep=lambda _: None).publish(creates(8))
    assert result.failed == ["1002"] and result.published == 7
    assert result.batch_response() == {"batchItemFailures": [{"itemIdentifier": "1002"}]}


def test_a_failed_call_fails_its_entries_and_is_retried() -> None:
    from botocore.exceptions import EndpointConnectionError
    down = EndpointConnectionError(endpoint_url="http://events")
    events = ScriptedEvents([down, down, down])
    result = ChangePublisher(events, "bus", sleep=lambda _: None).publish(creates(3))
    assert len(events.calls) == 3 and result.failed == ["1000", "1001", "1002"]


def test_bookkeeping_is_not_published_and_an_unreadable_record_is_a_failure() -> None:
    outcome = record("INSERT", "request#r", None, {"pk": {"S": "request#r"}})
    broken = record("INSERT", "item#b", None, {"pk": {"S": "item#b"}, "id": {"Q": "?"}})
    broken["dynamodb"]["SequenceNumber"] = "999"
    events = ScriptedEvents()
    result = ChangePublisher(events, "bus").publish([outcome, broken, *creates(1)])
    assert result.failed == ["999"] and result.published == 1


@pytest.mark.parametrize("size", [LARGE_DETAIL_BYTES - 1_000, 300_000])
def test_a_large_item_is_published_shortened_with_a_pointer(size: int) -> None:
    old = image("big/1", 1, {"blob": "o" * size})
    new = image("big/1", 2, {"blob": "n" * size})
    events = ScriptedEvents()
    ChangePublisher(events, "bus").publish([record("MODIFY", "item#big/1", old, new)])
    (entry,), = events.calls
    assert entry_size(entry) < 256 * 1024
    detail = json.loads(entry["Detail"])
    assert detail == {"id": "big/1", "version": 2, "change": "updated", "requestId": "r5",
                      "requestTimeEpoch": 5, "old": {"id": "big/1", "version": 1},
                      "new": {"id": "big/1", "version": 2}, "truncated": True,
                      "item": "/items/big%2F1"}


def test_a_small_event_is_published_whole_with_exact_numbers() -> None:
    text = detail_of({"id": "a", "version": 1, "new": {"n": 12345678901234567890123456789}})
    assert text == '{"id":"a","version":1,"new":{"n":12345678901234567890123456789}}'
